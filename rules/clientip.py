"""Which address a request comes from (SPEC §3).

- The client IP is the TCP peer.  ``Forwarded`` (RFC 7239) and ``X-Forwarded-For`` are read only
  when the peer is inside ``server.trusted_proxies``; from anyone else they are ignored, because
  any client can write them.
- Behind a trusted peer the hops are walked right to left, skipping trusted proxies: the client
  is the first untrusted address from the right, the leftmost only when every hop is trusted
  (the same walk as aiohttp-remotes ``XForwardedStrict`` and RFC 7239 §7.4's advice that
  only the hops appended by known proxies can be believed).
- A trusted peer with no forwarded header, or a malformed one, is refused: a proxy we trust
  that loses the client address must not make every order look like it came from the proxy.
- ``Forwarded`` wins over ``X-Forwarded-For`` when both are present.  Every ``Forwarded``
  element must carry one ``for=`` node that is an IP address (RFC 7239 §6: an optional
  port; IPv6 in brackets and therefore quoted); ``unknown`` and obfuscated ``_id`` nodes
  name no address and are malformed here.
- Every address is compared in canonical form: ``::ffff:a.b.c.d`` is ``a.b.c.d``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.decisions import Reason, Refused
from rules.ip import in_networks, parse_ip, parse_peer, show
from rules.types import IPAddress, IPNetwork

__all__ = ["client_ip", "parse_forwarded", "parse_x_forwarded_for"]

# RFC 7230 §3.2.6 tchar
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS = " \t"


def _malformed(header: str, detail: str) -> Refused:
    return Refused(
        Reason.BAD_FORWARDED,
        f"malformed {header} header from a trusted proxy: {detail}",
    )


def client_ip(
    peer: str | None,
    *,
    forwarded: Sequence[str],
    x_forwarded_for: Sequence[str],
    trusted: tuple[IPNetwork, ...],
) -> IPAddress:
    addr = parse_peer(peer)
    if addr is None:
        raise Refused(Reason.BAD_REQUEST, "client address cannot be determined")
    if not in_networks(addr, trusted):
        return addr
    if forwarded:
        hops = parse_forwarded(forwarded)
    elif x_forwarded_for:
        hops = parse_x_forwarded_for(x_forwarded_for)
    else:
        raise Refused(
            Reason.BAD_FORWARDED,
            f"request came through trusted proxy {addr} without a Forwarded or "
            "X-Forwarded-For header; the client address cannot be determined",
        )
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            return hop
    return hops[0]


def parse_x_forwarded_for(values: Sequence[str]) -> tuple[IPAddress, ...]:
    """All addresses of all header values, left to right; raises BAD_FORWARDED."""
    hops: list[IPAddress] = []
    for entry in ",".join(values).split(","):
        text = entry.strip(_OWS)
        try:
            hops.append(parse_ip(text))
        except Refused:
            raise _malformed("X-Forwarded-For", f"{show(text)} is not an IP address") from None
    return tuple(hops)


def parse_forwarded(values: Sequence[str]) -> tuple[IPAddress, ...]:
    """The ``for=`` address of every element of every header value; raises BAD_FORWARDED."""
    return tuple(_node(value) for value in _for_values(",".join(values)))


def _for_values(text: str) -> list[str]:
    """RFC 7239 §4: ``1#forwarded-element``, each ``[pair] *(";" [pair])``, pair ``token=value``."""
    result: list[str] = []
    pos, end = 0, len(text)
    while True:
        found: str | None = None
        while True:
            pos = _skip_ows(text, pos)
            start = pos
            while pos < end and text[pos] in _TCHAR:
                pos += 1
            name = text[start:pos].lower()
            if name:
                if pos >= end or text[pos] != "=":
                    raise _malformed("Forwarded", f"parameter {name!r} has no value")
                value, pos = _value(text, pos + 1)
                if name == "for":
                    if found is not None:
                        raise _malformed("Forwarded", "an element has more than one for=")
                    found = value
                pos = _skip_ows(text, pos)
            if pos < end and text[pos] == ";":
                pos += 1
                continue
            break
        if found is None:
            raise _malformed("Forwarded", "every element needs a for= parameter")
        result.append(found)
        if pos >= end:
            return result
        if text[pos] != ",":
            raise _malformed("Forwarded", f"unexpected {text[pos]!r} at position {pos}")
        pos += 1


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _OWS:
        pos += 1
    return pos


def _value(text: str, pos: int) -> tuple[str, int]:
    """A token or an RFC 7230 quoted-string starting at ``pos``; returns (value, next pos)."""
    end = len(text)
    if pos < end and text[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < end:
            char = text[pos]
            if char == '"':
                return "".join(chars), pos + 1
            if char == "\\":
                pos += 1
                if pos >= end:
                    break
                char = text[pos]
            chars.append(char)
            pos += 1
        raise _malformed("Forwarded", "unterminated quoted string")
    start = pos
    while pos < end and text[pos] in _TCHAR:
        pos += 1
    if pos == start:
        raise _malformed("Forwarded", f"empty value at position {start}")
    return text[start:pos], pos


def _node(value: str) -> IPAddress:
    """RFC 7239 §6: ``nodename [":" node-port]``; IPv6 nodenames are bracketed."""
    if value.startswith("["):
        host, bracket, tail = value[1:].partition("]")
        if not bracket or ":" not in host:
            raise _malformed("Forwarded", f"for={show(value)} is not a bracketed IPv6 address")
        has_port, port = tail != "", tail[1:]
        if has_port and tail[0] != ":":
            raise _malformed("Forwarded", f"for={show(value)} has text after the address")
    else:
        host, colon, port = value.partition(":")
        has_port = colon != ""
    # node-port = 5DIGIT; an obfuscated "_port" names nothing we can use.
    if has_port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise _malformed("Forwarded", f"for={show(value)} has a malformed port")
    try:
        return parse_ip(host)
    except Refused:
        raise _malformed("Forwarded", f"for={show(value)} is not an IP address") from None
