"""The local authoritative DNS server: behaviours on the wire, zone files, command line."""

from __future__ import annotations

import subprocess
import sys
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from mailsift.testing.dns import DnsServer, load_zones

ZONES = {
    "example.com": {"A": ["192.0.2.1"], "TXT": ["hello"], "ttl": 42},
    "alias.example.com": {"CNAME": "example.com"},
    "a.b.example.com": {"A": ["192.0.2.2"]},
    "*.wild.example": {"AAAA": ["2001:db8::1"]},
    "fail.example": {"behaviour": "servfail"},
    "gone.example": {"behaviour": "nxdomain", "A": ["192.0.2.9"]},
    "silent.example": {"behaviour": "timeout"},
    "big.example": {"TXT": ["z" * 700], "truncate": True},
}


def ask(srv, name, rdtype, tcp=False, timeout=0.5):
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=srv.port, timeout=timeout)
    return dns.query.udp(q, "127.0.0.1", port=srv.port, timeout=timeout)


@pytest.fixture
def srv():
    with DnsServer(ZONES) as server:
        yield server


def test_answers_cname_and_wildcard(srv):
    r = ask(srv, "example.com", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert r.answer[0].ttl == 42 and r.answer[0][0].address == "192.0.2.1"
    alias = ask(srv, "alias.example.com", "A")
    assert [rr.rdtype for rr in alias.answer] == [5, 1]  # CNAME then A
    assert ask(srv, "x.wild.example", "AAAA").answer[0][0].address == "2001:db8::1"


def test_nxdomain_nodata_and_empty_non_terminal(srv):
    assert ask(srv, "nope.example.com", "A").rcode() == dns.rcode.NXDOMAIN
    nodata = ask(srv, "example.com", "MX")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    ent = ask(srv, "b.example.com", "A")
    assert ent.rcode() == dns.rcode.NOERROR and not ent.answer
    assert ask(srv, "gone.example", "A").rcode() == dns.rcode.NXDOMAIN


def test_servfail_and_timeout(srv):
    assert ask(srv, "fail.example", "A").rcode() == dns.rcode.SERVFAIL
    with pytest.raises(dns.exception.Timeout):
        ask(srv, "silent.example", "A", timeout=0.2)
    with pytest.raises(dns.exception.Timeout):
        ask(srv, "silent.example", "A", tcp=True, timeout=0.2)


def test_truncation_keeps_the_question_and_tcp_has_the_answer(srv):
    udp = ask(srv, "big.example", "TXT")
    assert udp.flags & dns.flags.TC and not udp.answer
    assert str(udp.question[0].name) == "big.example."
    tcp = ask(srv, "big.example", "TXT", tcp=True)
    assert b"".join(tcp.answer[0][0].strings) == b"z" * 700
    assert [q.protocol for q in srv.queries] == ["udp", "tcp"]


def test_set_changes_data_while_running(srv):
    srv.set("new.example", {"A": ["192.0.2.77"]})
    assert ask(srv, "new.example", "A").answer[0][0].address == "192.0.2.77"


def test_bad_zone_data_is_rejected():
    with pytest.raises(ValueError):
        DnsServer({"x.example": {"behaviour": "explode"}})
    with pytest.raises(ValueError):
        DnsServer({"x.example": {"A": "192.0.2.1"}})
    with pytest.raises(ValueError):
        DnsServer({"x.example": {"A": ["not an ip"]}})


def test_load_zones_from_toml_and_master_file(tmp_path):
    toml = tmp_path / "zones.toml"
    toml.write_text('["example.org"]\nA = ["192.0.2.5"]\nTXT = ["v=spf1 -all"]\n'
                    '["slow.example.org"]\nbehaviour = "timeout"\n')
    zones = load_zones(toml)
    assert zones["example.org"]["A"] == ["192.0.2.5"]
    assert zones["slow.example.org"]["behaviour"] == "timeout"
    master = tmp_path / "example.zone"
    master.write_text("$ORIGIN example.net.\n$TTL 300\n@ IN A 192.0.2.6\n"
                      '@ IN TXT "v=spf1 " "-all"\n@ IN MX 10 mx.example.net.\n'
                      "www IN CNAME example.net.\n")
    zones = load_zones(master)
    assert zones["example.net"]["A"] == ["192.0.2.6"]
    assert zones["example.net"]["TXT"] == ["v=spf1 -all"]
    assert zones["example.net"]["MX"] == ["10 mx.example.net"]
    assert zones["www.example.net"]["CNAME"] == "example.net"


def test_command_line_prints_its_port_and_serves(tmp_path):
    toml = tmp_path / "zones.toml"
    toml.write_text('[zones."cli.example"]\nA = ["192.0.2.8"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "mailsift.testing.dns", str(toml)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        q = dns.message.make_query("cli.example", "A")
        deadline = time.monotonic() + 5
        while True:
            try:
                r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
                break
            except dns.exception.Timeout:
                if time.monotonic() > deadline:
                    raise
        assert r.answer[0][0].address == "192.0.2.8"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
