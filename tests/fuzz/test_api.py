"""The gateway's own API and the admin API, fed hostile bodies, queries and headers.

Never a 5xx; a refusal is a 4xx in the route's envelope (upstox's for the routes the Upstox
SDK calls, ``{"error", "message"}`` otherwise) and changes nothing it was asked to change.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from ..harness import ADMIN_TOKEN, Harness, Login, Reply
from . import strategies as s
from .raw import raw_request

JSON = "application/json"

cidr = st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(v=4), st.integers(0, 33))
BODIES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    (
        "POST",
        "/gateway/v1/session",
        st.fixed_dictionaries({"api_key": s.odd_text, "api_secret": s.odd_text}),
    ),
    (
        "PUT",
        "/v2/user/ip",
        st.fixed_dictionaries(
            {"primary_ip": st.ip_addresses().map(str) | s.odd_text},
            optional={"secondary_ip": st.ip_addresses().map(str)},
        ),
    ),
    (
        "POST",
        "/v1/account/tokens",
        st.fixed_dictionaries(
            {
                "name": s.odd_text,
                "token_type": st.sampled_from(["jwt", "api_key"]),
                "expiry_duration": st.integers(60, 10**6),
            },
            optional={"allowed_cidrs": st.lists(cidr, max_size=2)},
        ),
    ),
    ("POST", "/gateway/v1/family/members", st.fixed_dictionaries({"user_id": s.odd_text})),
    (
        "POST",
        "/admin/v1/accounts",
        st.fixed_dictionaries({"user_id": s.odd_text, "name": s.odd_text}),
    ),
    (
        "PUT",
        "/admin/v1/accounts/{user}/ip",
        st.fixed_dictionaries(
            {"primary_ip": st.ip_addresses().map(str) | s.odd_text},
            optional={"secondary_ip": st.ip_addresses().map(str)},
        ),
    ),
    ("PUT", "/admin/v1/ltp", st.dictionaries(s.odd_text, st.sampled_from(["1.5", "100"]))),
    (
        "PUT",
        "/admin/v1/accounts/{user}/upstream-auth/upstox",
        st.fixed_dictionaries(
            {
                "headers": st.dictionaries(
                    st.sampled_from(["Authorization", "X-Api-Key", "Host"]) | s.odd_text,
                    st.sampled_from(["Bearer abc", "k"]) | s.odd_text,
                    min_size=1,
                    max_size=2,
                )
            }
        ),
    ),
]
UPSTOX_ENVELOPE = ("/v2/user/ip", "/v2/login/authorization/token")


def envelope_ok(path: str, reply: Reply) -> bool:
    data = reply.data
    if not isinstance(data, dict):
        return False
    if path.startswith(UPSTOX_ENVELOPE):
        return data.get("status") == "error" and reply.error_code is not None
    return isinstance(data.get("error"), str) and isinstance(data.get("message"), str)


def auth(path: str, login: Login) -> dict[str, str]:
    if path.startswith("/admin/"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return login.bearer


async def state(gw: Harness, login: Login) -> Any:
    """What the fuzzed routes could change: accounts, the caller's IPs, tokens and family."""
    accounts = await gw.admin("GET", "/accounts")
    ips = await gw.request("GET", "/v2/user/ip", headers=login.bearer)
    tokens = await gw.request("GET", "/v1/account/tokens", headers=login.bearer)
    family = await gw.request("GET", "/gateway/v1/family", headers=login.bearer)
    return accounts.data, ips.data, tokens.data, family.data


async def check_one(
    gw: Harness, login: Login, method: str, path: str, body: bytes, headers: dict[str, str]
) -> Reply:
    gw.clock.advance(1.1)  # first: tokens expiring with time are not the request's doing
    before = await state(gw, login)
    upstream = len(await gw.upstream_requests())
    reply = await gw.request(method, path, ip="127.0.0.1", data=body, headers=headers)
    event(f"{reply.status}")
    assert reply.status < 500, reply.body
    assert len(await gw.upstream_requests()) == upstream
    if reply.status >= 400:
        assert envelope_ok(path, reply), reply.body
        assert await state(gw, login) == before
    return reply


@pytest.fixture
async def user(gw: Harness) -> Login:
    return await gw.login(await gw.account(), ip="127.0.0.1")


@pytest.mark.parametrize(("method", "path", "valid"), BODIES, ids=[p for _, p, _ in BODIES])
@given(data=st.data())
async def test_gateway_api_bodies(
    gw: Harness, user: Login, method: str, path: str, valid: st.SearchStrategy[Any], data: Any
) -> None:
    body = data.draw(s.mutated(valid).map(s.json_body).flatmap(s.hostile_bytes))
    path = path.replace("{user}", user.user_id)
    await check_one(gw, user, method, path, body, {**auth(path, user), "Content-Type": JSON})


form_value = st.one_of(st.text(max_size=8), st.sampled_from(["%FF", "%ED%A0%80", "%", "a+b"]))


@given(
    st.lists(
        st.tuples(st.sampled_from(["client_id", "client_secret", "x"]), form_value), max_size=4
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode(errors="surrogatepass")),
)
@example(b"client_id=%ED%A0%80&client_secret=x")
async def test_upstox_token_form(gw: Harness, user: Login, body: bytes) -> None:
    await check_one(
        gw,
        user,
        "POST",
        "/v2/login/authorization/token",
        body,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )


query_value = st.one_of(
    st.text(max_size=6).map(lambda t: quote(t, errors="surrogatepass")),
    st.sampled_from(
        ["%FF", "%ED%A0%80", "%C3", "²", "%C2%B2", "1e3", "-1", "99999999999999999999"]
    ),
)


@given(st.sampled_from(["limit", "user_id", "kind", "with_invalid"]), query_value)
@example("limit", "%C2%B2")  # "²".isdigit() is True and int("²") raises
async def test_query_strings(gw: Harness, user: Login, name: str, value: str) -> None:
    for path in ("/admin/v1/audit", "/v1/account/tokens"):
        await check_one(gw, user, "GET", f"{path}?{name}={value}", b"", auth(path, user))


header_value = st.binary(min_size=1, max_size=8).filter(lambda b: b"\r" not in b and b"\n" not in b)


@given(st.sampled_from(["Authorization", "Auth", "Sid", "Accept", "X-Forwarded-For"]), header_value)
@example("Authorization", b"Bearer \xff\xfe")
async def test_header_values(gw: Harness, user: Login, name: str, value: bytes) -> None:
    for path in ("/v1/account/tokens", "/v2/user/profile"):
        before = len(await gw.upstream_requests())
        status, _ = await raw_request(
            gw.gateway, "GET", path, {name: value + b" " + user.token.encode()}
        )
        event(str(status))
        assert status < 500
        if status >= 400:
            assert len(await gw.upstream_requests()) == before
