"""Addresses and networks as the registry, the allowlists and the proxy trust see them.

Rules encoded (SPEC §3, §4, §9):

- A registered static IP is one IPv4 or IPv6 address in standard notation: no CIDR, no zone
  id, no port or brackets, no whitespace, no leading zeros in an IPv4 octet (``010.0.0.1`` is
  octal to ``inet_aton`` and decimal to others, so it is ambiguous; Python refuses it since
  bpo-36384).  IPv6 may use any RFC 4291 §2.2 text form.
- Comparison and uniqueness use one canonical form: an IPv4-mapped IPv6 address
  (``::ffff:a.b.c.d``, RFC 4291 §2.5.5.2) *is* the IPv4 address.
- Unspecified, multicast and the IPv4 limited broadcast address are never registrable;
  loopback and private ranges are unless ``rules.public_ips_only``.
- An allowlist entry (Paradex ``allowed_cidrs``) is ``address/prefixlen`` with no host bits set,
  at most 50 per token.
"""

from __future__ import annotations

import functools
import ipaddress

from rules.decisions import Reason, Refused
from rules.types import IPAddress, IPNetwork

__all__ = [
    "canonical",
    "check_registrable",
    "in_networks",
    "parse_cidr",
    "parse_cidrs",
    "parse_ip",
    "parse_peer",
    "show",
]

_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_FORBIDDEN_CHARS = frozenset("%/[]")


def show(value: object, limit: int = 64) -> str:
    """``repr`` of an untrusted value, cut short so a hostile body cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def canonical(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _strict_address(value: object) -> IPAddress | None:
    if not isinstance(value, str) or not value.isascii():
        return None
    # ipaddress accepts a "%zone" suffix since 3.9; a zone only means something on one host.
    if any(c.isspace() or c in _FORBIDDEN_CHARS for c in value):
        return None
    try:
        # Leading zeros in IPv4 octets (also inside ::ffff:a.b.c.d) raise here (bpo-36384).
        return canonical(ipaddress.ip_address(value))
    except ValueError:
        return None


def parse_ip(value: object) -> IPAddress:
    addr = _strict_address(value)
    if addr is None:
        raise Refused(
            Reason.INVALID_IP,
            f"{show(value)} is not a valid IPv4 or IPv6 address in standard notation "
            "(one address, no CIDR, port, zone id or leading zeros)",
        )
    return addr


def parse_peer(value: str | None) -> IPAddress | None:
    """The socket's peer address, or None when it cannot be read (the caller fails closed)."""
    if not isinstance(value, str):
        return None
    return _parse_peer(value)


@functools.lru_cache(maxsize=4096)  # every request of a connection repeats its peer
def _parse_peer(value: str) -> IPAddress | None:
    # A link-local peer arrives as "fe80::1%lo"; the zone names our interface, not the client.
    host = value.split("%", 1)[0]
    try:
        return canonical(ipaddress.ip_address(host))
    except ValueError:
        return None


def check_registrable(addr: IPAddress, *, public_only: bool) -> None:
    addr = canonical(addr)
    if addr.is_unspecified or addr.is_multicast or addr == _BROADCAST:
        raise Refused(
            Reason.INVALID_IP,
            f"{addr} is an unspecified, multicast or broadcast address and cannot be registered",
        )
    if public_only and not addr.is_global:
        raise Refused(
            Reason.INVALID_IP,
            f"{addr} is not a public address; this gateway only registers public static IPs",
        )


def _bad_cidr(value: object, why: str) -> Refused:
    return Refused(Reason.BAD_REQUEST, f"allowed_cidrs entry {show(value)} is invalid: {why}")


def parse_cidr(value: object) -> IPNetwork:
    if not isinstance(value, str):
        raise _bad_cidr(value, "expected a string like '203.0.113.0/24'")
    address, slash, prefix = value.partition("/")
    if not slash:
        raise _bad_cidr(value, "expected address/prefix length, e.g. '203.0.113.7/32'")
    # A decimal prefix length only: ipaddress would also take a netmask or hostmask here.
    if not (prefix.isascii() and prefix.isdigit()) or (len(prefix) > 1 and prefix[0] == "0"):
        raise _bad_cidr(value, "the prefix length must be a decimal number")
    if _strict_address(address) is None:
        raise _bad_cidr(value, "the address is not in standard notation")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise _bad_cidr(value, str(exc)) from exc
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        raise _bad_cidr(value, "write IPv4-mapped ranges as IPv4 CIDRs")
    return net


def parse_cidrs(values: object, *, limit: int = 50) -> tuple[IPNetwork, ...]:
    if not isinstance(values, list):
        raise Refused(Reason.BAD_REQUEST, "allowed_cidrs must be a list of CIDR strings")
    if len(values) > limit:
        raise Refused(
            Reason.BAD_REQUEST,
            f"allowed_cidrs has {len(values)} entries; at most {limit} are allowed",
        )
    return tuple(dict.fromkeys(parse_cidr(v) for v in values))


def in_networks(addr: IPAddress, nets: tuple[IPNetwork, ...]) -> bool:
    addr = canonical(addr)
    return any(addr.version == net.version and addr in net for net in nets)
