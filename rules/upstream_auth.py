"""A stored upstream credential (SPEC §10): headers that replace the gateway's identity headers.

For a real broker behind a static-IP host the upstream must see the account's own broker
credential, not ``X-Gateway-User-Id``.  An operator stores it per account and dialect as a few
headers; they are sent verbatim, so they are checked here once, when stored:

- 1 to 8 headers, names unique ignoring case;
- a name is an RFC 9110 §5.6.2 ``token`` (no spaces, colons, CR, LF), at most 256 characters;
- a value is RFC 9110 §5.5 ``field-content``: visible ASCII, obs-text (0x80-0xFF), spaces and
  tabs inside, never CR, LF, NUL or another control character, no leading or trailing
  whitespace, 1 to 4096 characters;
- names the gateway owns or that frame the message are refused: ``Host``, ``Content-Length``,
  ``Content-Type``, ``Content-Encoding``, ``Transfer-Encoding``, ``Expect``, hop-by-hop headers
  (RFC 9110 §7.6.1), proxy and method-override headers, and ``X-Gateway-*``/``X-Algo-*``.
"""

from __future__ import annotations

from rules.decisions import Reason, Refused

MAX_HEADERS = 8
MAX_NAME = 256
MAX_VALUE = 4096

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "expect",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "forwarded",
        "via",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    }
)
_FORBIDDEN_PREFIXES = ("x-gateway-", "x-algo-", "x-forwarded-")


def _field_char(char: str) -> bool:
    code = ord(char)
    return code == 0x09 or 0x20 <= code <= 0x7E or 0x80 <= code <= 0xFF


def check_header(name: object, value: object) -> tuple[str, str]:
    """One stored header, or Refused(BAD_REQUEST) naming what is wrong with it."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not set(name) <= _TCHAR:
        raise Refused(
            Reason.BAD_REQUEST,
            f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~,"
            f" at most {MAX_NAME} characters)",
        )
    lowered = name.lower()
    if lowered in _FORBIDDEN or lowered.startswith(_FORBIDDEN_PREFIXES):
        raise Refused(
            Reason.BAD_REQUEST, f"header {name} is the gateway's own and cannot be stored"
        )
    if not isinstance(value, str) or not 0 < len(value) <= MAX_VALUE:
        raise Refused(
            Reason.BAD_REQUEST, f"header {name} must be a string of 1 to {MAX_VALUE} characters"
        )
    if not all(_field_char(c) for c in value) or value != value.strip(" \t"):
        raise Refused(
            Reason.BAD_REQUEST,
            f"header {name} has a control character (CR, LF, NUL, …), a character outside"
            " Latin-1, or leading or trailing whitespace",
        )
    return name, value


def parse_upstream_auth(body: object) -> dict[str, str]:
    """The decoded JSON body ``{"headers": {"<name>": "<value>", …}}`` of a stored credential."""
    if not isinstance(body, dict) or set(body) != {"headers"}:
        raise Refused(Reason.BAD_REQUEST, 'the body must be {"headers": {"<name>": "<value>"}}')
    headers = body["headers"]
    if not isinstance(headers, dict) or not 0 < len(headers) <= MAX_HEADERS:
        raise Refused(
            Reason.BAD_REQUEST, f"headers must be an object of 1 to {MAX_HEADERS} headers"
        )
    checked: dict[str, str] = {}
    seen: set[str] = set()
    for raw_name, raw_value in headers.items():
        name, value = check_header(raw_name, raw_value)
        if name.lower() in seen:
            raise Refused(Reason.BAD_REQUEST, f"header {name} is given twice (names ignore case)")
        seen.add(name.lower())
        checked[name] = value
    return checked


def parse_header_line(line: str) -> tuple[str, str]:
    """``"Name: value"`` as an operator types it (the CLI), checked like a stored header."""
    name, colon, value = line.partition(":")
    if not colon:  # the line is not echoed: it may be a pasted secret
        raise Refused(Reason.BAD_REQUEST, "a header must be given as 'Name: value'")
    return check_header(name, value.strip(" \t"))
