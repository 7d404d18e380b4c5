from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

import pytest

from rules.clientip import client_ip
from rules.decisions import Reason, Refused
from rules.types import IPNetwork

TRUSTED: tuple[IPNetwork, ...] = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("127.0.0.1/32"),
    IPv6Network("fd00::/8"),
)


@pytest.mark.parametrize(
    ("peer", "forwarded", "xff", "expected"),
    [
        # Untrusted peers: headers are ignored entirely, even malformed ones.
        ("203.0.113.7", [], [], "203.0.113.7"),
        ("203.0.113.7", ["for=198.51.100.1"], ["198.51.100.2"], "203.0.113.7"),
        ("203.0.113.7", ["garbage;;"], ["not an ip"], "203.0.113.7"),
        ("::ffff:203.0.113.7", [], [], "203.0.113.7"),
        ("2001:db8::7", [], ["1.2.3.4"], "2001:db8::7"),
        ("fe80::7%eth0", [], [], "fe80::7"),
        ("::ffff:10.0.0.1", [], ["198.51.100.9"], "198.51.100.9"),  # mapped peer is trusted
        # X-Forwarded-For, right to left, skipping trusted hops
        ("10.0.0.1", [], ["198.51.100.9"], "198.51.100.9"),
        ("10.0.0.1", [], ["1.1.1.1, 198.51.100.9"], "198.51.100.9"),
        ("10.0.0.1", [], ["198.51.100.9, 10.0.0.2"], "198.51.100.9"),
        ("10.0.0.1", [], ["198.51.100.9,10.0.0.2,10.0.0.3"], "198.51.100.9"),
        ("10.0.0.1", [], ["1.1.1.1", "198.51.100.9"], "198.51.100.9"),  # values in order
        ("10.0.0.1", [], ["1.1.1.1, 2.2.2.2", "10.0.0.5"], "2.2.2.2"),
        ("10.0.0.1", [], ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),  # all trusted: leftmost
        ("10.0.0.1", [], ["10.0.0.9"], "10.0.0.9"),
        ("10.0.0.1", [], ["  198.51.100.9  ,\t10.0.0.2 "], "198.51.100.9"),
        ("10.0.0.1", [], ["2001:db8::9"], "2001:db8::9"),
        ("10.0.0.1", [], ["2001:DB8::9, fd00::1"], "2001:db8::9"),
        ("10.0.0.1", [], ["::ffff:198.51.100.9"], "198.51.100.9"),
        ("10.0.0.1", [], ["::ffff:10.0.0.9, 198.51.100.9, ::ffff:10.0.0.3"], "198.51.100.9"),
        ("127.0.0.1", [], ["127.0.0.2"], "127.0.0.2"),
        ("fd00::1", [], ["198.51.100.9"], "198.51.100.9"),
        ("fd00::1%lo", [], ["198.51.100.9"], "198.51.100.9"),
        # Forwarded wins over X-Forwarded-For
        ("10.0.0.1", ["for=198.51.100.1"], ["198.51.100.2"], "198.51.100.1"),
        ("10.0.0.1", ["for=198.51.100.1"], [], "198.51.100.1"),
        ("10.0.0.1", ["For=198.51.100.1"], [], "198.51.100.1"),
        ("10.0.0.1", ["FOR=198.51.100.1"], [], "198.51.100.1"),
        ("10.0.0.1", ['for="198.51.100.1"'], [], "198.51.100.1"),
        ("10.0.0.1", ['for="198.51.100.1:4711"'], [], "198.51.100.1"),
        ("10.0.0.1", ['for="[2001:db8:cafe::17]"'], [], "2001:db8:cafe::17"),
        ("10.0.0.1", ['for="[2001:db8:cafe::17]:4711"'], [], "2001:db8:cafe::17"),
        ("10.0.0.1", ['for="[::ffff:198.51.100.1]"'], [], "198.51.100.1"),
        ("10.0.0.1", ['for="\\198.51.100.1"'], [], "198.51.100.1"),  # quoted-pair
        ("10.0.0.1", ["for=192.0.2.43, for=198.51.100.17"], [], "198.51.100.17"),
        ("10.0.0.1", ["for=192.0.2.43,for=10.0.0.17"], [], "192.0.2.43"),
        ("10.0.0.1", ["for=192.0.2.43", "for=10.0.0.17"], [], "192.0.2.43"),
        ("10.0.0.1", ["for=10.0.0.3, for=10.0.0.4"], [], "10.0.0.3"),
        (
            "10.0.0.1",
            ["for=192.0.2.60;proto=http;by=203.0.113.43"],
            [],
            "192.0.2.60",
        ),
        ("10.0.0.1", ['proto=https;for="192.0.2.60";host="example.com"'], [], "192.0.2.60"),
        ("10.0.0.1", ["for=192.0.2.60 ; proto=http , for=10.0.0.5"], [], "192.0.2.60"),
        ("10.0.0.1", ['for=192.0.2.60;by="a,b;c"'], [], "192.0.2.60"),
        ("10.0.0.1", ["for=192.0.2.60;"], [], "192.0.2.60"),
        ("10.0.0.1", ["for=192.0.2.60;;proto=http"], [], "192.0.2.60"),
    ],
)
def test_client_ip(peer: str, forwarded: list[str], xff: list[str], expected: str) -> None:
    result = client_ip(peer, forwarded=forwarded, x_forwarded_for=xff, trusted=TRUSTED)
    assert result == ip_address(expected)
    assert result.version == ip_address(expected).version


@pytest.mark.parametrize("peer", [None, "", "garbage", "1.2.3.4:80", "[::1]"])
def test_unparseable_peer_fails_closed(peer: str | None) -> None:
    with pytest.raises(Refused) as info:
        client_ip(peer, forwarded=[], x_forwarded_for=[], trusted=TRUSTED)
    assert info.value.refusal.reason is Reason.BAD_REQUEST
    assert info.value.refusal.message == "client address cannot be determined"


def test_trusted_peer_without_headers() -> None:
    with pytest.raises(Refused) as info:
        client_ip("10.0.0.1", forwarded=[], x_forwarded_for=[], trusted=TRUSTED)
    assert info.value.refusal.reason is Reason.BAD_FORWARDED
    assert "10.0.0.1" in info.value.refusal.message


@pytest.mark.parametrize(
    ("forwarded", "xff"),
    [
        # X-Forwarded-For
        ([], [""]),
        ([], [" "]),
        ([], ["198.51.100.9,"]),
        ([], [",198.51.100.9"]),
        ([], ["198.51.100.9,,10.0.0.2"]),
        ([], ["198.51.100.9", ""]),
        ([], ["198.51.100.9:443"]),
        ([], ["[2001:db8::9]"]),
        ([], ["[2001:db8::9]:443"]),
        ([], ["fe80::9%eth0"]),
        ([], ["unknown"]),
        ([], ["_hidden"]),
        ([], ["198.051.100.9"]),
        ([], ["198.51.100.9 10.0.0.2"]),
        ([], ["198.51.100.9;10.0.0.2"]),
        ([], ["example.com"]),
        # Forwarded
        ([""], []),
        ([" "], []),
        (["for"], []),
        (["for="], []),
        (["for=;proto=http"], []),
        (["proto=http"], []),  # no for=
        (["for=192.0.2.1, proto=http"], []),
        (["for=192.0.2.1,"], []),
        ([",for=192.0.2.1"], []),
        (["for=192.0.2.1,,for=192.0.2.2"], []),
        (["for=192.0.2.1;for=192.0.2.2"], []),
        (["for=unknown"], []),
        (['for="unknown"'], []),
        (["for=_hidden"], []),
        (["for=_SEVKISEK"], []),
        (['for="_gazonk"'], []),
        (["for=192.0.2.1:_port"], []),
        (['for="192.0.2.1:"'], []),
        (['for="192.0.2.1:123456"'], []),
        (['for="192.0.2.1:８０"'], []),
        (["for=198.51.100.1:4711"], []),  # ":" is not a tchar: a port must be quoted
        (["for=2001:db8::1"], []),  # IPv6 must be bracketed (and so quoted)
        (['for="2001:db8::1"'], []),
        (['for="[2001:db8::1"'], []),
        (['for="[2001:db8::1]x"'], []),
        (['for="[2001:db8::1]:"'], []),
        (['for="[192.0.2.1]"'], []),
        (['for="[fe80::1%25eth0]"'], []),
        (['for="192.0.2.1'], []),  # unterminated
        (['for="192.0.2.1\\'], []),
        (["for=192.0.2.1 proto=http"], []),
        (["for=192.0.2.1=x"], []),
        (["for=192.0.2.01"], []),
        (["for=example.com"], []),
        (["=192.0.2.1"], []),
        (["for = 192.0.2.1"], []),
    ],
)
def test_malformed_headers_from_trusted_peer(forwarded: list[str], xff: list[str]) -> None:
    with pytest.raises(Refused) as info:
        client_ip("10.0.0.1", forwarded=forwarded, x_forwarded_for=xff, trusted=TRUSTED)
    assert info.value.refusal.reason is Reason.BAD_FORWARDED
    header = "Forwarded" if forwarded else "X-Forwarded-For"
    assert f"malformed {header} header" in info.value.refusal.message


def test_no_trusted_proxies_ignores_everything() -> None:
    assert client_ip(
        "127.0.0.1", forwarded=["for=1.2.3.4"], x_forwarded_for=["5.6.7.8"], trusted=()
    ) == ip_address("127.0.0.1")
