"""Field types shared by the settings sections: lists of networks and of IP addresses.

A section declares ``internal_networks: Networks = Field(...)`` instead of writing its own
validator, so every list of networks in the configuration accepts and refuses the same entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["Nameservers", "Networks", "each_parses", "ip_nameservers", "networks"]


def each_parses(value: tuple[str, ...], parse: Callable[[str], object],
                error: str) -> tuple[str, ...]:
    """``value`` unchanged when ``parse`` accepts every entry; else a ValueError ``error``
    formatted with the first bad entry (``{!r}`` in ``error`` shows it)."""
    for entry in value:
        try:
            parse(entry)
        except ValueError as exc:
            raise ValueError(error.format(entry)) from exc
    return value


def networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses or networks (``192.0.2.0/24``, ``::1``), surrounding spaces removed."""
    return each_parses(tuple(v.strip() for v in value),
                       lambda entry: ipaddress.ip_network(entry, strict=False),
                       "bad network {!r}")


def ip_nameservers(value: tuple[str, ...]) -> tuple[str, ...]:
    """Nameservers are addresses: a name would need a resolver to find the resolver."""
    return each_parses(value, ipaddress.ip_address, "nameserver must be an IP address: {!r}")


Networks = Annotated[tuple[str, ...], AfterValidator(networks)]
"""A list of addresses or networks."""

Nameservers = Annotated[tuple[str, ...], AfterValidator(ip_nameservers)]
"""A list of nameserver IP addresses (never names)."""
