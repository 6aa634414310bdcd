"""A local authoritative DNS server for tests and reviewers (dnslib on 127.0.0.1, UDP and TCP).

Zones are plain data: a mapping ``name -> {RDTYPE: [values], "ttl": int, "behaviour": ...}``::

    {
        "example.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"], "A": ["192.0.2.10"]},
        "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject"]},
        "www.example.com": {"CNAME": "example.com"},
        "*.wild.example": {"A": ["192.0.2.99"]},
        "broken.example": {"behaviour": "servfail"},       # servfail | timeout | refused | nxdomain
        "slow.example": {"behaviour": {"TXT": "timeout"}},  # per record type
        "big.example": {"TXT": ["..."], "truncate": True},  # UDP answers carry TC=1, TCP answers
    }

``DnsServer(zones, delay=0.005)`` answers every UDP question 5 ms late (each reply on its own
timer, so concurrent questions are answered concurrently, like a real server): for benchmarks.

Names not in the data are NXDOMAIN unless a descendant exists (empty non-terminal: NODATA,
RFC 8020). ``timeout`` means no reply at all. Truncated replies are built here because dnslib's
``truncate()`` drops the question section, which dnspython rejects. TXT strings longer than 255
bytes are split into character-strings as a real zone would.

Use as a context manager (``with DnsServer(zones) as srv: srv.port``), or from the command line:
``python -m mailsift.testing.dns zones.toml`` (TOML with the same shape, or a ``.zone`` master
file) prints the port and serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import select
import socket
import socketserver
import struct
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailsift.testing.service import Service

__all__ = ["DnsServer", "QueryLog", "load_zones", "main"]

Zones = Mapping[str, Mapping[str, Any]]
_BEHAVIOURS = frozenset({"servfail", "timeout", "refused", "nxdomain"})
_MAX_CNAME = 8


def _dnslib() -> Any:
    """dnslib, imported on first use: it is a test-only dependency (the ``[dev]`` extra), so
    importing ``mailsift.testing`` or mailsift itself never needs it."""
    try:
        return importlib.import_module("dnslib")
    except ImportError as exc:
        raise ImportError("mailsift.testing.dns needs dnslib: pip install 'mailsift[test]'",
                          name="dnslib") from exc


@dataclass(frozen=True, slots=True)
class QueryLog:
    """One question the server received."""

    name: str
    rdtype: str
    protocol: str


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def _txt_chunks(value: str) -> list[bytes]:
    raw = value.encode("utf-8")
    return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]


def _rdata(rdtype: str, value: str) -> Any:
    dl = _dnslib()
    if rdtype == "A":
        return dl.A(value)
    if rdtype == "AAAA":
        return dl.AAAA(value)
    if rdtype in ("TXT", "SPF"):
        return dl.TXT(_txt_chunks(value))
    if rdtype == "MX":
        pref, _, host = value.strip().partition(" ")
        return dl.MX(host.strip(), int(pref))
    if rdtype == "PTR":
        return dl.PTR(value)
    if rdtype == "NS":
        return dl.NS(value)
    if rdtype == "CNAME":
        return dl.CNAME(value)
    raise ValueError(f"unsupported record type {rdtype}")


def _check_zones(zones: Zones) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, data in zones.items():
        if not isinstance(data, Mapping):
            raise ValueError(f"zone entry {name!r} must be a table")
        entry = dict(data)
        behaviour = entry.get("behaviour")
        values = behaviour.values() if isinstance(behaviour, Mapping) else [behaviour]
        for b in values:
            if b is not None and str(b).lower() not in _BEHAVIOURS:
                raise ValueError(f"{name}: unknown behaviour {b!r}")
        for key, val in entry.items():
            if key in ("ttl", "behaviour", "truncate"):
                continue
            if key.upper() == "CNAME":
                _rdata("CNAME", str(val))
                continue
            if not isinstance(val, list | tuple):
                raise ValueError(f"{name}: {key} must be a list")
            for v in val:
                _rdata(key.upper(), str(v))
        out[_norm(name)] = entry
    return out


class DnsServer(Service):
    """Serves ``zones`` on 127.0.0.1 (UDP and TCP on the same port)."""

    def __init__(self, zones: Zones, host: str = "127.0.0.1", port: int = 0, *,
                 delay: float = 0.0) -> None:
        _dnslib()  # fail here, naming the extra, not in the serving thread
        self.zones = _check_zones(zones)
        self.delay = delay
        self.host = host
        self._want_port = port
        self.port = 0
        self.queries: list[QueryLog] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socketserver.ThreadingTCPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> DnsServer:
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, self._want_port))
            port = udp.getsockname()[1]
            try:
                tcp = _TcpServer((self.host, port), _TcpHandler, self)
            except OSError:
                udp.close()
                if self._want_port:
                    raise
                continue
            break
        else:  # pragma: no cover - twenty port collisions in a row
            raise OSError("could not bind UDP and TCP to the same port")
        self._udp, self._tcp, self.port = udp, tcp, port
        # A short poll interval keeps stop() fast: tests start one server each.
        for target in (self._serve_udp, lambda: tcp.serve_forever(poll_interval=0.05)):
            thread = threading.Thread(target=target, daemon=True, name=f"dns-{port}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        if self._udp is not None:
            self._udp.close()


    def wait_stopped(self, seconds: float) -> None:
        self._stop.wait(seconds)

    @property
    def address(self) -> str:
        """``HOST:PORT``, the form ``mailsift scan --dns`` takes."""
        return f"{self.host}:{self.port}"

    def set(self, name: str, data: Mapping[str, Any]) -> None:
        """Replace one name's data while running (tests that change DNS mid-way)."""
        checked = _check_zones({name: data})
        with self._lock:
            self.zones.update(checked)

    def count(self, name: str | None = None, rdtype: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for q in self.queries
                if (name is None or q.name == _norm(name))
                and (rdtype is None or q.rdtype == rdtype)
            )

    # --- answering -------------------------------------------------------------------------

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._udp], [], [], 0.05)
            if not ready:
                continue
            try:
                data, peer = self._udp.recvfrom(65535)
            except OSError:
                return
            reply = self.answer(data, "udp")
            if reply is not None and self.delay > 0:
                timer = threading.Timer(self.delay, self._send_late, (reply, peer))
                timer.daemon = True
                timer.start()
            elif reply is not None:
                self._udp.sendto(reply, peer)

    def _send_late(self, reply: bytes, peer: Any) -> None:
        if self._udp is not None and not self._stop.is_set():
            with contextlib.suppress(OSError):  # stopped meanwhile
                self._udp.sendto(reply, peer)

    def answer(self, data: bytes, protocol: str) -> bytes | None:
        """The wire reply to ``data``, or ``None`` to simulate a timeout."""
        dl = _dnslib()
        try:
            request = dl.DNSRecord.parse(data)
        except Exception:
            # Garbage on the wire gets no answer, as from a real server.
            return None
        qname = _norm(str(request.q.qname))
        qtype = dl.QTYPE.get(request.q.qtype)
        with self._lock:
            self.queries.append(QueryLog(qname, str(qtype), protocol))
            zones = dict(self.zones)
        entry = _find(zones, qname)
        behaviour = _behaviour(entry, str(qtype))
        if behaviour == "timeout":
            return None
        if protocol == "udp" and entry is not None and entry.get("truncate"):
            head = dl.DNSHeader(id=request.header.id, qr=1, aa=1, ra=0, tc=1)
            return dl.DNSRecord(head, q=request.q).pack()  # type: ignore[no-any-return]
        reply = request.reply(ra=0, aa=1)
        if behaviour == "servfail":
            reply.header.rcode = dl.RCODE.SERVFAIL
            return reply.pack()  # type: ignore[no-any-return]
        if behaviour == "refused":
            reply.header.rcode = dl.RCODE.REFUSED
            return reply.pack()  # type: ignore[no-any-return]
        if entry is None or behaviour == "nxdomain":
            if entry is None and _has_descendant(zones, qname):
                return reply.pack()  # type: ignore[no-any-return]
            reply.header.rcode = dl.RCODE.NXDOMAIN
            return reply.pack()  # type: ignore[no-any-return]
        for rr in self._records(zones, qname, entry, str(qtype)):
            reply.add_answer(rr)
        return reply.pack()  # type: ignore[no-any-return]

    def _records(
        self,
        zones: Mapping[str, Mapping[str, Any]],
        qname: str,
        entry: Mapping[str, Any],
        qtype: str,
    ) -> Iterator[Any]:
        dl = _dnslib()
        owner = qname
        for _ in range(_MAX_CNAME):
            ttl = int(entry.get("ttl", 300))
            target = _get(entry, "CNAME")
            if target is not None and qtype != "CNAME":
                yield dl.RR(owner, dl.QTYPE.CNAME, rdata=dl.CNAME(str(target)), ttl=ttl)
                owner = _norm(str(target))
                nxt = _find(zones, owner)
                if nxt is None:
                    return
                entry = nxt
                continue
            values = _get(entry, qtype)
            if values is None:
                return
            if isinstance(values, str):
                values = [values]
            for value in values:
                yield dl.RR(owner, getattr(dl.QTYPE, qtype), rdata=_rdata(qtype, str(value)),
                            ttl=ttl)
            return


def _get(entry: Mapping[str, Any], rdtype: str) -> Any:
    for key, val in entry.items():
        if key.upper() == rdtype:
            return val
    return None


def _find(zones: Mapping[str, Mapping[str, Any]], qname: str) -> Mapping[str, Any] | None:
    if qname in zones:
        return zones[qname]
    labels = qname.split(".")
    # RFC 4592: the wildcard at the closest encloser; an existing name below blocks it.
    for i in range(1, len(labels)):
        encloser = ".".join(labels[i:])
        wild = zones.get("*." + encloser)
        if wild is not None:
            return wild
        if encloser in zones or _has_descendant(zones, encloser):
            return None
    return None


def _has_descendant(zones: Mapping[str, object], qname: str) -> bool:
    suffix = "." + qname
    return any(name.endswith(suffix) for name in zones)


def _behaviour(entry: Mapping[str, Any] | None, qtype: str) -> str | None:
    if entry is None:
        return None
    behaviour = entry.get("behaviour")
    if isinstance(behaviour, Mapping):
        behaviour = behaviour.get(qtype) or behaviour.get(qtype.lower())
    return str(behaviour).lower() if behaviour else None


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type, dns_server: DnsServer) -> None:
        self.dns_server = dns_server
        super().__init__(addr, handler)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _TcpServer = self.server  # type: ignore[assignment]
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            while True:
                head = _recv_exact(sock, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                data = _recv_exact(sock, length)
                if data is None:
                    return
                reply = server.dns_server.answer(data, "tcp")
                if reply is None:
                    # A timeout keeps the connection open and silent until the client gives up.
                    server.dns_server.wait_stopped(10.0)
                    return
                sock.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def load_zones(path: str | Path) -> dict[str, dict[str, Any]]:
    """Zones from a TOML file (the mapping shape above) or a master-file ``.zone`` text."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        data = tomllib.loads(text)
        return dict(_check_zones(data.get("zones", data)))
    dl = _dnslib()
    out: dict[str, dict[str, Any]] = {}
    for rr in dl.RR.fromZone(text):
        name = _norm(str(rr.rname))
        rdtype = dl.QTYPE.get(rr.rtype)
        entry = out.setdefault(name, {"ttl": rr.ttl})
        if rdtype == "TXT":
            value = b"".join(rr.rdata.data).decode("utf-8")
        elif rdtype == "MX":
            value = f"{rr.rdata.preference} {_norm(str(rr.rdata.label))}"
        elif rdtype in ("CNAME", "PTR", "NS"):
            value = _norm(str(rr.rdata.label))
        else:
            value = str(rr.rdata)
        if rdtype == "CNAME":
            entry["CNAME"] = value
        else:
            entry.setdefault(str(rdtype), []).append(value)
    return dict(_check_zones(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mailsift.testing.dns", description="Serve test zones on 127.0.0.1."
    )
    parser.add_argument("zones", help="zones file (.toml or master-file text)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="answer every UDP question this many seconds late")
    args = parser.parse_args(argv)
    server = DnsServer(load_zones(args.zones), port=args.port, delay=args.delay).start()
    print(server.port, flush=True)
    print(f"serving {len(server.zones)} names on {server.address} (udp+tcp)", file=sys.stderr)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
