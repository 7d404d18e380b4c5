from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest

from rules.decisions import Reason, Refused
from rules.ip import (
    canonical,
    check_registrable,
    in_networks,
    parse_cidr,
    parse_cidrs,
    parse_ip,
    parse_peer,
    show,
)
from rules.types import IPAddress, IPNetwork

V4 = IPv4Address
V6 = IPv6Address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", V4("203.0.113.7")),
        ("0.0.0.0", V4("0.0.0.0")),  # parses; registrability is a separate check
        ("255.255.255.255", V4("255.255.255.255")),
        ("10.0.0.1", V4("10.0.0.1")),
        ("1.2.3.0", V4("1.2.3.0")),
        ("2001:db8::1", V6("2001:db8::1")),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", V6("2001:db8::1")),
        ("2001:DB8::1", V6("2001:db8::1")),
        ("2001:Db8:0:0::1", V6("2001:db8::1")),
        ("::1", V6("::1")),
        ("::", V6("::")),
        ("fe80::1", V6("fe80::1")),
        ("::ffff:203.0.113.7", V4("203.0.113.7")),
        ("::FFFF:203.0.113.7", V4("203.0.113.7")),
        ("::ffff:cb00:7107", V4("203.0.113.7")),
        ("0:0:0:0:0:ffff:203.0.113.7", V4("203.0.113.7")),
        ("64:ff9b::203.0.113.7", V6("64:ff9b::cb00:7107")),  # NAT64, not mapped
        ("::203.0.113.7", V6("::cb00:7107")),  # deprecated IPv4-compatible, not mapped
    ],
)
def test_parse_ip_accepts(text: str, expected: IPAddress) -> None:
    assert parse_ip(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        # not strings
        None,
        True,
        False,
        0,
        3405803783,
        1.5,
        ["1.2.3.4"],
        {"ip": "1.2.3.4"},
        b"1.2.3.4",
        V4("1.2.3.4"),
        # empty and whitespace
        "",
        " ",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4\n",
        "1.2.3.4\t",
        "1.2. 3.4",
        "\u00a01.2.3.4",
        " ::1",
        # leading zeros in every octet position and mapped
        "01.2.3.4",
        "1.02.3.4",
        "1.2.03.4",
        "1.2.3.04",
        "001.002.003.004",
        "010.0.0.1",
        "0.0.0.00",
        "00.0.0.0",
        "::ffff:01.2.3.4",
        "::ffff:1.2.3.004",
        # short, long, out of range, other notations
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.-1",
        "0x7f.0.0.1",
        "2130706433",
        "1.2.3.4.",
        ".1.2.3.4",
        "١.٢.٣.٤",  # Arabic-Indic digits
        "１.2.3.4",  # fullwidth digit
        # brackets, ports, zones, CIDR
        "[2001:db8::1]",
        "[::1]:443",
        "1.2.3.4:80",
        "fe80::1%eth0",
        "fe80::1%1",
        "::ffff:1.2.3.4%0",
        "1.2.3.4/32",
        "2001:db8::/32",
        "2001:db8::1/128",
        # malformed IPv6
        "2001:db8::1::1",
        "2001:db8:::1",
        "12345::1",
        "2001:db8:0:0:0:0:0:0:1",
        "g::1",
        ":1",
        "1:",
        "localhost",
        "example.com",
        "x" * 200,
    ],
)
def test_parse_ip_refuses(value: object) -> None:
    with pytest.raises(Refused) as info:
        parse_ip(value)
    assert info.value.refusal.reason is Reason.INVALID_IP
    assert show(value) in info.value.refusal.message


def test_show_truncates_long_values() -> None:
    shown = show("x" * 200)
    assert len(shown) == 64
    assert shown.endswith("...")
    assert show("1.2.3.4") == "'1.2.3.4'"


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (V6("::ffff:1.2.3.4"), V4("1.2.3.4")),
        (V6("::ffff:0:0"), V4("0.0.0.0")),
        (V6("2001:db8::1"), V6("2001:db8::1")),
        (V6("::1.2.3.4"), V6("::1.2.3.4")),
        (V4("1.2.3.4"), V4("1.2.3.4")),
    ],
)
def test_canonical(addr: IPAddress, expected: IPAddress) -> None:
    assert canonical(addr) == expected
    assert type(canonical(addr)) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", V4("127.0.0.1")),
        ("::ffff:127.0.0.2", V4("127.0.0.2")),
        ("::1", V6("::1")),
        ("fe80::1%lo", V6("fe80::1")),
        ("fe80::1%eth0", V6("fe80::1")),
        ("fe80::1%2", V6("fe80::1")),
        ("2001:DB8::1", V6("2001:db8::1")),
        ("", None),
        ("%lo", None),
        ("garbage", None),
        ("1.2.3.4:80", None),
        ("[::1]", None),
        (None, None),
    ],
)
def test_parse_peer(value: str | None, expected: IPAddress | None) -> None:
    assert parse_peer(value) == expected


def test_parse_peer_non_string_is_none() -> None:
    assert parse_peer(b"1.2.3.4") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("addr", "public_only", "ok"),
    [
        # never
        ("0.0.0.0", False, False),
        ("::", False, False),
        ("::ffff:0.0.0.0", False, False),
        ("224.0.0.1", False, False),
        ("239.255.255.250", False, False),
        ("ff02::1", False, False),
        ("ff05::1:3", False, False),
        ("255.255.255.255", False, False),
        ("::ffff:255.255.255.255", False, False),
        ("::ffff:224.0.0.1", False, False),
        # local ranges: only without public_only
        ("127.0.0.1", False, True),
        ("127.0.0.1", True, False),
        ("::1", False, True),
        ("::1", True, False),
        ("10.1.2.3", False, True),
        ("10.1.2.3", True, False),
        ("192.168.1.10", False, True),
        ("192.168.1.10", True, False),
        ("172.16.0.1", True, False),
        ("169.254.1.1", False, True),
        ("169.254.1.1", True, False),
        ("fe80::1", False, True),
        ("fe80::1", True, False),
        ("fd00::1", False, True),
        ("fd00::1", True, False),
        ("100.64.0.1", True, False),  # carrier-grade NAT
        ("240.0.0.1", True, False),  # reserved
        ("192.0.2.1", True, False),  # documentation
        ("2001:db8::1", True, False),  # documentation
        ("::ffff:10.0.0.1", True, False),
        # public
        ("8.8.8.8", True, True),
        ("8.8.8.8", False, True),
        ("::ffff:8.8.8.8", True, True),
        ("2606:4700:4700::1111", True, True),
        ("192.168.1.255", False, True),  # a subnet broadcast is just an address to us
    ],
)
def test_check_registrable(addr: str, public_only: bool, ok: bool) -> None:
    ip = ip_address(addr)
    if ok:
        check_registrable(ip, public_only=public_only)
        return
    with pytest.raises(Refused) as info:
        check_registrable(ip, public_only=public_only)
    assert info.value.refusal.reason is Reason.INVALID_IP
    assert str(canonical(ip)) in info.value.refusal.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.0/24", IPv4Network("203.0.113.0/24")),
        ("203.0.113.7/32", IPv4Network("203.0.113.7/32")),
        ("0.0.0.0/0", IPv4Network("0.0.0.0/0")),
        ("10.0.0.0/8", IPv4Network("10.0.0.0/8")),
        ("2001:db8::/32", IPv6Network("2001:db8::/32")),
        ("2001:DB8::/32", IPv6Network("2001:db8::/32")),
        ("2001:0db8:0000::/48", IPv6Network("2001:db8::/48")),
        ("::/0", IPv6Network("::/0")),
        ("::1/128", IPv6Network("::1/128")),
        ("fe80::/10", IPv6Network("fe80::/10")),
    ],
)
def test_parse_cidr_accepts(text: str, expected: IPNetwork) -> None:
    assert parse_cidr(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        24,
        ["10.0.0.0/8"],
        IPv4Network("10.0.0.0/8"),
        "",
        "10.0.0.0",  # no prefix
        "2001:db8::1",
        "10.0.0.0/",
        "/8",
        "10.0.0.0/8/8",
        "10.0.0.0/255.0.0.0",  # netmask notation
        "10.0.0.0/0.255.255.255",  # hostmask notation
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/-8",
        "10.0.0.0/8.0",
        "10.0.0.0/٨",  # Arabic-Indic digit
        "10.0.0.0/33",
        "2001:db8::/129",
        "127.0.0.1/24",  # host bits set
        "2001:db8::1/32",
        "010.0.0.0/8",
        "10.000.0.0/16",
        "fe80::/10%eth0",
        "fe80::%eth0/10",
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0.0 /8",
        "10.0.0.0/ 8",
        "[2001:db8::]/32",
        "::ffff:0:0/96",  # IPv4-mapped ranges are ambiguous
        "::ffff:10.0.0.0/104",
        "::ffff:1.2.3.4/128",
        "example.com/24",
    ],
)
def test_parse_cidr_refuses(value: object) -> None:
    with pytest.raises(Refused) as info:
        parse_cidr(value)
    assert info.value.refusal.reason is Reason.BAD_REQUEST
    assert show(value) in info.value.refusal.message


def test_parse_cidrs() -> None:
    assert parse_cidrs([]) == ()
    assert parse_cidrs(["10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8", "1.2.3.4/32"]) == (
        IPv4Network("10.0.0.0/8"),
        IPv6Network("2001:db8::/32"),
        IPv4Network("1.2.3.4/32"),
    )
    fifty = [f"10.0.{i}.0/24" for i in range(50)]
    assert len(parse_cidrs(fifty)) == 50
    assert len(parse_cidrs(["10.0.0.0/8"] * 50)) == 1


@pytest.mark.parametrize(
    ("values", "limit", "fragment"),
    [
        ("10.0.0.0/8", 50, "must be a list"),
        (("10.0.0.0/8",), 50, "must be a list"),
        (None, 50, "must be a list"),
        ({"cidr": "10.0.0.0/8"}, 50, "must be a list"),
        ([f"10.0.{i}.0/24" for i in range(51)], 50, "at most 50"),
        (["10.0.0.0/8", "10.0.0.0/8"], 1, "at most 1"),
        (["10.0.0.0/8", "bad"], 50, "'bad'"),
        (["10.0.0.0/8", 7], 50, "7"),
    ],
)
def test_parse_cidrs_refuses(values: object, limit: int, fragment: str) -> None:
    with pytest.raises(Refused) as info:
        parse_cidrs(values, limit=limit)
    assert info.value.refusal.reason is Reason.BAD_REQUEST
    assert fragment in info.value.refusal.message


NETS: tuple[IPNetwork, ...] = (IPv4Network("10.0.0.0/8"), IPv6Network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("addr", "nets", "expected"),
    [
        (V4("10.1.2.3"), NETS, True),
        (V4("11.1.2.3"), NETS, False),
        (V6("::ffff:10.1.2.3"), NETS, True),
        (V6("2001:db8::5"), NETS, True),
        (V6("2001:db9::5"), NETS, False),
        (V4("10.1.2.3"), (), False),
        # An IPv4 address whose integer falls inside an IPv6 range is still not inside it.
        (V4("0.0.0.1"), (IPv6Network("::/96"),), False),
        (V6("::1"), (IPv4Network("0.0.0.0/0"),), False),
        (V4("1.2.3.4"), (IPv4Network("0.0.0.0/0"),), True),
    ],
)
def test_in_networks(addr: IPAddress, nets: tuple[IPNetwork, ...], expected: bool) -> None:
    assert in_networks(addr, nets) is expected
