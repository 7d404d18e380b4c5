"""API apps from the gateway API (SPEC §9): any account, a family parent or a member, creates
its own apps with its login session and logs in with them; a token creates none."""

from __future__ import annotations

from typing import Any

import pytest

from ..harness import Harness, Login, Reply

APPS = "/gateway/v1/apps"


async def create(gw: Harness, login: Login, **kwargs: Any) -> Reply:
    return await gw.request("POST", APPS, ip=login.ip, headers=login.bearer, **kwargs)


async def login_with(gw: Harness, reply: Reply, ip: str) -> Reply:
    data = reply.data
    return await gw.request(
        "POST",
        "/gateway/v1/session",
        ip=ip,
        json={"api_key": data["api_key"], "api_secret": data["api_secret"]},
    )


async def join(gw: Harness, parent: Login, account: Login) -> Login:
    """``account`` invited into ``parent``'s family and accepted from its own session."""
    invited = await gw.request(
        "POST",
        "/gateway/v1/family/members",
        ip=parent.ip,
        json={"user_id": account.user_id},
        headers=parent.bearer,
    )
    assert invited.status == 202, invited.body
    invitee = await gw.login(account, ip="127.0.0.9")
    accepted = await gw.request(
        "POST",
        f"/gateway/v1/family/invitations/{parent.user_id}/accept",
        ip=invitee.ip,
        headers=invitee.bearer,
    )
    assert accepted.status == 200, accepted.body
    return await gw.login(account, ip=parent.ip)  # accepting ended its sessions


async def test_a_family_member_creates_an_app_and_trades_with_it(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    member = await join(gw, parent, await gw.account(name="member"))

    created = await create(gw, member)
    session = await login_with(gw, created, ip="127.0.0.2")  # the parent's registered IP
    token = session.data["data"]["access_token"]
    order = await gw.place(
        Login(member.user_id, "", "", token, ip="127.0.0.2"), order_type="LIMIT", price=1400
    )

    assert created.status == 201, created.body
    assert set(created.data) == {"api_key", "api_secret", "user_id"}
    assert created.data["user_id"] == member.user_id
    assert created.data["api_key"] != member.api_key
    assert session.status == 200, session.body
    assert session.data["data"]["user_id"] == member.user_id
    assert session.data["data"]["order_capable"] is True
    assert order.status == 200, order.body
    [placed] = await gw.upstream_orders()
    assert placed["headers"]["x-gateway-user-id"] == member.user_id


async def test_a_parent_creates_apps_of_its_own_each_with_its_own_secret(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    first = await create(gw, trader)
    second = await create(gw, trader, json={})

    assert first.status == second.status == 201
    assert first.data["api_key"] != second.data["api_key"]
    assert first.data["api_secret"] != second.data["api_secret"]
    for app in (first, second):
        session = await login_with(gw, app, ip="127.0.0.5")
        assert session.status == 200 and session.data["data"]["user_id"] == trader.user_id
    swapped = {"api_key": first.data["api_key"], "api_secret": second.data["api_secret"]}
    wrong = await gw.request("POST", "/gateway/v1/session", json=swapped)
    assert wrong.status == 401


async def test_tokens_create_no_app(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    analytics = await gw.request("POST", "/gateway/v1/analytics-token", headers=trader.bearer)
    api = await gw.request("POST", "/v1/account/tokens", json={}, headers=trader.bearer)
    assert analytics.status == 200 and api.status == 200, (analytics.body, api.body)

    tokens = {
        "READ_ONLY_TOKEN": analytics.data["data"]["access_token"],  # a POST is not a read
        "FORBIDDEN": api.data["token"],
    }
    for error, token in tokens.items():
        reply = await gw.request("POST", APPS, headers={"Authorization": f"Bearer {token}"})
        assert reply.status == 403, reply.body
        assert reply.data["error"] == error
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, None, 401, "INVALID_TOKEN"),
        ({"Authorization": "Bearer nope"}, None, 401, "INVALID_TOKEN"),
        (None, b'{"user_id": "SOMEONE"}', 400, "BAD_REQUEST"),
        (None, b"[]", 400, "BAD_REQUEST"),
        (None, b"{", 400, "BAD_REQUEST"),
    ],
)
async def test_refusals(
    gw: Harness, headers: dict[str, str] | None, body: bytes | None, status: int, error: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    sent = trader.bearer if headers is None else headers

    reply = await gw.request(
        "POST", APPS, data=body, headers={**sent, "Content-Type": "application/json"}
    )

    assert reply.status == status, reply.body
    assert reply.data["error"] == error
