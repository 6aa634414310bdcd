"""Client addresses as SMTP writes them, and whether one is in a list of networks."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["IpAddress", "IpNetwork", "client_address", "in_networks"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(text: str | None) -> IpAddress | None:
    """The address in ``192.0.2.1``, ``[192.0.2.1]`` or ``IPv6:2001:db8::1`` (how SMTP and
    XFORWARD write it); None when ``text`` is empty or no address."""
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return None


def in_networks(text: str | None, networks: Iterable[IpNetwork]) -> bool:
    """``text`` is an address (see :func:`client_address`) inside one of ``networks``."""
    addr = client_address(text)
    return addr is not None and any(addr in net for net in networks)
