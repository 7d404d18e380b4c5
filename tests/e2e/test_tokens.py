"""API tokens with CIDR allowlists (SPEC §9) against a real gateway and paper broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ..harness import Harness, Login, Reply

TOKENS = "/v1/account/tokens"
READ = "/v1/account/summary"  # a paradex read: forwarded with authentication only
UPSTOX_READ = "/v2/user/profile"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ns(when: datetime) -> int:
    return int((when - EPOCH).total_seconds()) * 10**9


async def create(
    gw: Harness, login: Login, *, cidrs: Any = None, expiry: int = 3600, kind: str = "api_key"
) -> Reply:
    body: dict[str, Any] = {"name": "bot", "token_type": kind, "expiry_duration": expiry}
    if cidrs is not None:
        body["allowed_cidrs"] = cidrs
    return await gw.request("POST", TOKENS, ip=login.ip, json=body, headers=login.bearer)


async def token_for(gw: Harness, login: Login, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    reply = await create(gw, login, **kwargs)
    assert reply.status == 200, reply.body
    return str(reply.data["token"]), dict(reply.data["api_token"])


async def listed(gw: Harness, login: Login, query: str = "") -> list[dict[str, Any]]:
    reply = await gw.request("GET", TOKENS + query, ip=login.ip, headers=login.bearer)
    assert reply.status == 200, reply.body
    return list(reply.data["results"])


async def put_cidrs(gw: Harness, login: Login, lookup_id: str, cidrs: Any) -> Reply:
    return await gw.request(
        "PUT",
        f"{TOKENS}/{lookup_id}/allowed-cidrs",
        ip=login.ip,
        json={"allowed_cidrs": cidrs},
        headers=login.bearer,
    )


async def read(gw: Harness, token: str, ip: str, path: str = READ) -> Reply:
    return await gw.request("GET", path, ip=ip, headers=bearer(token))


async def test_the_created_token_has_paradex_fields_in_nanoseconds(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    reply = await create(gw, login, cidrs=["127.0.0.2/32"], expiry=86400, kind="jwt")

    assert reply.status == 200, reply.body
    token = reply.data["api_token"]
    assert set(token) == {
        "allowed_cidrs",
        "created_at",
        "expiry_at",
        "last_updated_at",
        "revoked_at",
        "kind",
        "lookup_id",
        "name",
        "token_id",
    }
    now = ns(gw.clock.now())
    assert token["created_at"] == token["last_updated_at"] == now
    assert token["expiry_at"] == now + 86400 * 10**9
    assert token["revoked_at"] == 0
    assert token["allowed_cidrs"] == ["127.0.0.2/32"]
    assert (token["kind"], token["name"]) == ("jwt", "bot")
    assert len(reply.data["token"]) >= 43  # 256 random bits, shown once
    assert await listed(gw, login) == [token]
    assert reply.data["token"] not in str(await listed(gw, login))


async def test_allowlist_create_replace_clear_and_revoke(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token, meta = await token_for(gw, login, cidrs=["127.0.0.2/32"])
    lookup = meta["lookup_id"]

    ok = await read(gw, token, "127.0.0.2")
    assert ok.status == 200, ok.body
    [seen] = await gw.upstream_requests()
    assert seen["path"] == READ
    assert seen["headers"]["x-gateway-user-id"] == login.user_id
    assert "authorization" not in seen["headers"]

    refused = await read(gw, token, "127.0.0.3")
    assert refused.status == 403
    assert refused.data["error"] == "CIDR_NOT_ALLOWED"
    assert "127.0.0.3" in refused.data["message"]
    upstox_refused = await read(gw, token, "127.0.0.3", UPSTOX_READ)
    assert upstox_refused.status == 403
    assert upstox_refused.error_code == "UDAPI9403"
    assert len(await gw.upstream_requests()) == 1

    cleared = await put_cidrs(gw, login, lookup, [])
    assert cleared.status == 200, cleared.body
    assert cleared.data["allowed_cidrs"] == []
    assert (await read(gw, token, "127.0.0.3")).status == 200
    assert (await read(gw, token, "127.0.0.3", UPSTOX_READ)).status == 200

    gw.clock.advance(5)
    narrowed = await put_cidrs(gw, login, lookup, ["127.0.0.3/32", "::1/128"])
    assert narrowed.status == 200, narrowed.body
    assert narrowed.data["allowed_cidrs"] == ["127.0.0.3/32", "::1/128"]
    assert narrowed.data["last_updated_at"] == ns(gw.clock.now())
    assert (await read(gw, token, "127.0.0.2")).status == 403
    assert (await read(gw, token, "127.0.0.3")).status == 200

    revoked = await gw.request("DELETE", f"{TOKENS}/{lookup}", ip=login.ip, headers=login.bearer)
    assert revoked.status == 200, revoked.body
    assert revoked.data["revoked_at"] == ns(gw.clock.now())
    before = len(await gw.upstream_requests())
    gone = await read(gw, token, "127.0.0.3")
    assert gone.status == 401
    assert gone.data["error"] == "INVALID_TOKEN"
    assert len(await gw.upstream_requests()) == before
    assert await listed(gw, login) == []
    [kept] = await listed(gw, login, "?with_invalid=true")
    assert kept["revoked_at"] == ns(gw.clock.now())


async def test_only_a_login_session_manages_tokens(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token, meta = await token_for(gw, login)
    lookup = meta["lookup_id"]
    as_token = bearer(token)

    minted = await gw.request(
        "POST",
        TOKENS,
        json={"name": "x", "token_type": "api_key", "expiry_duration": 3600},
        headers=as_token,
    )
    widened = await gw.request(
        "PUT", f"{TOKENS}/{lookup}/allowed-cidrs", json={"allowed_cidrs": []}, headers=as_token
    )
    revoked = await gw.request("DELETE", f"{TOKENS}/{lookup}", headers=as_token)

    for reply in (minted, widened, revoked):
        assert reply.status == 403, reply.body
        assert reply.data["error"] == "FORBIDDEN"
    assert await listed(gw, login) == [meta]
    assert (await gw.request("GET", TOKENS, headers=as_token)).status == 200
    assert await gw.upstream_requests() == []


BAD_CIDRS: list[tuple[Any, str]] = [
    (["127.0.0.1/24"], "127.0.0.1/24"),
    (["10.0.0.0/255.255.255.0"], "10.0.0.0/255.255.255.0"),
    (["010.0.0.0/8"], "010.0.0.0/8"),
    (["fe80::/10%eth0"], "fe80::/10%eth0"),
    ([f"10.{i}.0.0/16" for i in range(51)], "51 entries"),
    ([42], "entry 42"),
    ([None], "entry null"),
    (None, "got null"),
    (42, "got 42"),
]


@pytest.mark.parametrize(("cidrs", "named"), BAD_CIDRS)
async def test_malformed_cidrs_at_creation_create_nothing(
    gw: Harness, cidrs: Any, named: str
) -> None:
    login = await gw.trader("127.0.0.2")
    body = {"name": "bot", "token_type": "api_key", "expiry_duration": 3600, "allowed_cidrs": cidrs}

    reply = await gw.request("POST", TOKENS, json=body, headers=login.bearer)

    assert reply.status == 400, reply.body
    assert reply.data["error"] == "BAD_REQUEST"
    assert named in reply.data["message"]
    assert await listed(gw, login, "?with_invalid=true") == []


@pytest.mark.parametrize(("cidrs", "named"), BAD_CIDRS)
async def test_malformed_cidrs_on_replace_change_nothing(
    gw: Harness, cidrs: Any, named: str
) -> None:
    login = await gw.trader("127.0.0.2")
    token, meta = await token_for(gw, login, cidrs=["127.0.0.2/32"])

    reply = await put_cidrs(gw, login, meta["lookup_id"], cidrs)

    assert reply.status == 400, reply.body
    assert named in reply.data["message"]
    assert await listed(gw, login) == [meta]
    assert (await read(gw, token, "127.0.0.3")).status == 403


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "bot", "token_type": "api_key", "expiry_duration": 59}, "expiry_duration"),
        ({"name": "bot", "token_type": "api_key", "expiry_duration": 31536001}, "got 31536001"),
        ({"name": "bot", "token_type": "session", "expiry_duration": 60}, "token_type"),
        ({"name": None, "token_type": "jwt", "expiry_duration": 60}, "name"),
        ([], "the body must be"),
    ],
)
async def test_bad_creation_requests(gw: Harness, body: Any, named: str) -> None:
    login = await gw.trader("127.0.0.2")
    reply = await gw.request("POST", TOKENS, json=body, headers=login.bearer)
    assert reply.status == 400, reply.body
    assert named in reply.data["message"]
    assert await listed(gw, login, "?with_invalid=true") == []


async def test_absent_creation_fields_take_the_defaults(gw: Harness) -> None:
    # Paradex marks name, token_type and expiry_duration optional (SPEC §9, README)
    login = await gw.trader("127.0.0.2")
    reply = await gw.request("POST", TOKENS, json={}, headers=login.bearer)
    assert reply.status == 200, reply.body
    meta = reply.data["api_token"]
    assert (meta["name"], meta["kind"], meta["allowed_cidrs"]) == ("API token", "jwt", [])
    assert meta["expiry_at"] - meta["created_at"] == 30 * 24 * 3600 * 10**9


async def test_expired_tokens_are_refused_and_cannot_be_changed(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token, meta = await token_for(gw, login, expiry=60)
    assert (await read(gw, token, "127.0.0.2")).status == 200

    gw.clock.advance(60)

    expired = await read(gw, token, "127.0.0.2")
    assert expired.status == 401
    assert expired.data["error"] == "INVALID_TOKEN"
    assert await listed(gw, login) == []
    assert (await put_cidrs(gw, login, meta["lookup_id"], [])).status == 409


async def test_listing_filters_by_kind(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    _, jwt = await token_for(gw, login, kind="jwt")
    _, key = await token_for(gw, login, kind="api_key")

    assert await listed(gw, login) == [jwt, key]
    assert await listed(gw, login, "?kind=jwt") == [jwt]
    assert await listed(gw, login, "?kind=api_key") == [key]
    bad = await gw.request("GET", TOKENS + "?kind=session", headers=login.bearer)
    assert bad.status == 400


async def test_unknown_lookup_ids_and_other_accounts_tokens(gw: Harness) -> None:
    alice = await gw.trader("127.0.0.2")
    bob = await gw.trader("127.0.0.3")
    _, meta = await token_for(gw, alice)

    for reply in (
        await gw.request("DELETE", f"{TOKENS}/{meta['lookup_id']}", ip=bob.ip, headers=bob.bearer),
        await put_cidrs(gw, bob, meta["lookup_id"], []),
        await gw.request("DELETE", f"{TOKENS}/nope", ip=alice.ip, headers=alice.bearer),
    ):
        assert reply.status == 404, reply.body
    assert await listed(gw, alice) == [meta]
    assert await listed(gw, bob) == []
    nothing = await gw.request("PATCH", TOKENS, headers=alice.bearer)
    assert nothing.status == 404
    assert await gw.upstream_requests() == []


async def test_an_ip_change_invalidates_api_tokens(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token, _ = await token_for(gw, login)
    gw.clock.advance(8 * 24 * 3600)
    login = await gw.login(login, ip="127.0.0.2")

    assert (await gw.set_ips(login, "127.0.0.2", "127.0.0.3")).status == 200

    assert (await read(gw, token, "127.0.0.2")).status == 401
    login = await gw.login(login, ip="127.0.0.2")
    [gone] = await listed(gw, login, "?with_invalid=true")
    assert gone["revoked_at"] == ns(gw.clock.now())


async def test_api_tokens_do_not_authenticate_on_kotak_routes(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token, meta = await token_for(gw, login)

    reply = await gw.request(
        "GET", "/quick/user/orders", headers={"Auth": token, "Sid": meta["token_id"]}
    )

    assert reply.status == 401, reply.body
    assert await gw.upstream_requests() == []
