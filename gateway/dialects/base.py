"""What a broker dialect is: routes, credentials, order bodies, envelopes, quotes.

The pipeline is dialect-agnostic: it asks the dialect to decode a request into
:class:`OrderDoc` values (a rules-level :class:`OrderIntent` plus the fields to re-encode),
applies the rules, asks the dialect to write conversions back into the fields, and to render
refusals in its own envelope.  Adding a broker is one module plus its route table.

The route table is the only dispatch: each order route names the body shape it carries and
the dialect maps shapes to decoders (:attr:`Dialect.decoders`), checked when it is built, so a
route added to the table is decoded or the gateway does not start; no decoder looks at paths.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDictProxy

from rules.decisions import Reason, Refuse, Refused
from rules.orders import Conversion, OrderIntent
from rules.routes import Match, Route, RouteTable, order_target
from rules.types import CredentialKind, Instrument

from ..codec import decode_json, encode_json
from ..config import RulesConfig


@dataclass(slots=True)
class OrderDoc:
    """One order of a request: what the rules see, and the fields the upstream will get."""

    intent: OrderIntent
    fields: dict[str, Any]
    conversion: Conversion | None = None


@dataclass(slots=True)
class Decoded:
    """A decoded order-route request."""

    docs: list[OrderDoc] = field(default_factory=list)
    many: bool = False  # the body was a list of orders
    body: Any = None  # a non-order body (e.g. positions exit filters), re-encoded as is
    order_id: str | None = None  # the order a cancel names in the query string
    target: str = ""  # the upstream path and rebuilt query string (SPEC §10)

    def field_names(self) -> frozenset[str]:
        """Every top-level field the body gives, for the order-id-in-two-places check."""
        names = {name for doc in self.docs for name in doc.fields}
        if isinstance(self.body, dict):
            names.update(self.body)
        return frozenset(names)


Decoder = Callable[[Route, bytes, Mapping[str, str]], Decoded]


@dataclass(frozen=True, slots=True)
class Token:
    """The credential a request presents; ``session_id`` is checked when the dialect sends one."""

    value: str
    session_id: str | None = None


def single_header(headers: CIMultiDictProxy[str], name: str) -> str | None:
    values = headers.getall(name, [])
    if len(values) > 1:
        raise Refused(Reason.BAD_REQUEST, f"the {name} header is sent more than once")
    return values[0] if values else None


def bearer(headers: CIMultiDictProxy[str]) -> Token:
    value = single_header(headers, "Authorization")
    if value is None:
        raise Refused(Reason.INVALID_TOKEN, "missing Authorization: Bearer <access_token>")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Refused(
            Reason.INVALID_TOKEN, "the Authorization header must be 'Bearer <access_token>'"
        )
    return Token(token)


REGISTRY: dict[str, type[Dialect]] = {}


class Dialect(abc.ABC):
    name: ClassVar[str]
    prefixes: ClassVar[tuple[str, ...]]  # path prefixes this dialect owns
    forwarded_headers: ClassVar[frozenset[str]] = frozenset({"accept", "accept-language"})
    # Headers whose presence means the client sent a gateway credential (checked even on
    # public routes), and client headers a public route passes on (kotak's consumer key).
    credential_headers: ClassVar[frozenset[str]] = frozenset({"authorization"})
    public_headers: ClassVar[frozenset[str]] = frozenset()
    # Which credentials authenticate on this dialect's routes (SPEC §9): sessions everywhere,
    # API tokens and the analytics token only where a dialect opts in.
    credential_kinds: ClassVar[frozenset[CredentialKind]] = frozenset({CredentialKind.LOGIN})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a dialect registers by the name it declares
            if REGISTRY.get(cls.name, cls) is not cls:
                raise ValueError(f"two dialects are named {cls.name!r}")
            REGISTRY[cls.name] = cls

    def __init__(self, routes: RouteTable) -> None:
        self.routes = routes
        self.decoders: dict[str, Decoder] = {
            "none": decode_none,
            "json_object": decode_json_object,
            **self.body_decoders(),
        }
        for route in routes.routes:
            if route.body not in self.decoders:
                raise ValueError(
                    f"{self.name} route {route.method} {route.template}: no decoder for the"
                    f" body shape {route.body!r} (known: {', '.join(sorted(self.decoders))})"
                )

    def owns(self, path: str) -> bool:
        return path.startswith(self.prefixes)

    def match(self, method: str, path: str) -> Match | None:
        return self.routes.match(method, path)

    def presents_credential(self, headers: CIMultiDictProxy[str]) -> bool:
        return any(name in headers for name in self.credential_headers)

    def is_order_path(self, path: str) -> bool:
        return self.routes.is_order_path(path)

    @abc.abstractmethod
    def token(self, headers: CIMultiDictProxy[str]) -> Token:
        """The presented credential; Refused(INVALID_TOKEN) when absent or malformed."""

    @abc.abstractmethod
    def body_decoders(self) -> Mapping[str, Decoder]:
        """This dialect's body shapes (``<dialect>.<shape>``) and their decoders."""

    def decode(self, route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
        """Parse an order-route request strictly; Refused(BAD_REQUEST) naming what is wrong.

        ``query`` holds the query string's parameters and the route's ``{name}`` path segments.
        """
        return self.decoders[route.body](route, body, query)

    def decode_request(self, match: Match, body: bytes, raw_target: str) -> Decoded:
        """Decode an order route's body and rebuild its upstream target (SPEC §10).

        ``raw_target`` is the request target as sent (path and query).  The query string is
        checked against the parameters the route takes once the body is known, so an order id
        given both in the body and in the query is refused too.
        """
        raw_query = raw_target.partition("?")[2]
        query = {**dict(parse_qsl(raw_query, keep_blank_values=True)), **match.params}
        decoded = self.decode(match.route, body, query)
        decoded.target, _ = order_target(match, raw_query, body_fields=decoded.field_names())
        return decoded

    @abc.abstractmethod
    def apply(self, doc: OrderDoc, conversion: Conversion) -> None:
        """Write a conversion into the doc's fields (order type and limit price)."""

    @abc.abstractmethod
    def encode(self, decoded: Decoded) -> tuple[bytes, str]:
        """The body for the upstream and its content type."""

    @abc.abstractmethod
    def envelope(self, refuse: Refuse) -> dict[str, Any]:
        """The dialect's error body for a refusal."""

    @abc.abstractmethod
    def order_ids(self, route: Route, body: bytes) -> list[str]:
        """Order ids in a successful upstream answer, in request order."""

    @abc.abstractmethod
    def ltp_path(self, instrument: Instrument) -> str:
        """The upstream quote path (with query), percent-encoded, for one instrument's LTP."""

    @abc.abstractmethod
    def parse_ltp(self, instrument: Instrument, body: bytes) -> Decimal | None: ...

    def reencode_other(self, body: bytes, content_type: str) -> tuple[bytes | None, str]:
        """A non-order request body, parsed and re-encoded (JSON by default)."""
        if not body.strip():
            return None, ""
        return encode_json(decode_json(body)), "application/json"

    def applies_grid(self, rules: RulesConfig, *, known_instrument: bool) -> bool:
        """Whether MARKET/SL-M orders of this dialect are priced by the protection grid."""
        return True

    def algo_headers(self, algo_id: str, algo_name: str) -> dict[str, str]:
        return {"X-Algo-Id": algo_id}

    def refusal(self, refuse: Refuse, extra: Mapping[str, Any] | None = None) -> web.Response:
        return refusal_response(self.envelope(refuse), refuse, extra)


def decode_none(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    """A route that takes no body; the Upstox SDK sends ``{}`` on its cancels, so an empty
    JSON object counts as none (SPEC §2).  Nothing is forwarded as the body."""
    if body.strip() and decode_json(body) != {}:
        raise Refused(
            Reason.BAD_REQUEST,
            f"{route.method} {route.template} takes no request body (or an empty JSON object)",
        )
    return Decoded()


def decode_json_object(route: Route, body: bytes, query: Mapping[str, str]) -> Decoded:
    """An optional JSON object, checked as JSON and re-encoded as parsed."""
    payload = decode_json(body) if body.strip() else None
    if payload is not None and not isinstance(payload, dict):
        raise Refused(Reason.BAD_REQUEST, f"{route.method} {route.template} takes a JSON object")
    return Decoded(body=payload)


def refusal_response(
    body: dict[str, Any], refuse: Refuse, extra: Mapping[str, Any] | None = None
) -> web.Response:
    """A refusal in an envelope, with ``Retry-After`` (whole seconds) when it has one."""
    if extra:
        body.update(extra)
    headers = {"Content-Type": "application/json"}
    if refuse.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(refuse.retry_after)))
    return web.Response(status=refuse.status, body=encode_json(body), headers=headers)
