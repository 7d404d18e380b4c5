"""Families end to end (SPEC §4, §9): up to 11 accounts trading from the parent's static IPs.

Modelled on the Kotak Neo / Upstox family rule: one static IP may serve a family of up to 11
accounts; only the parent registers or changes it; an IP change logs every member out; and
sharing the IP gives no member access to another member's orders.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway import cli

from ..harness import ADMIN_TOKEN, Harness, Login, Reply
from .conftest import KOTAK_RELIANCE, ORDER_BOOK, Kotak

WEEK = 7 * 24 * 3600 + 60


async def add_member(gw: Harness, parent: Login, user_id: str) -> Reply:
    return await gw.request(
        "POST",
        "/gateway/v1/family/members",
        ip=parent.ip,
        json={"user_id": user_id},
        headers=parent.bearer,
    )


async def family(gw: Harness, login: Login) -> Reply:
    return await gw.request("GET", "/gateway/v1/family", ip=login.ip, headers=login.bearer)


async def member_of(gw: Harness, parent: Login, ip: str = "127.0.0.2") -> Login:
    """A new account added to the parent's family, logged in from ``ip``."""
    account = await gw.account(name=f"member of {parent.user_id}")
    added = await add_member(gw, parent, account.user_id)
    assert added.status == 201, added.body
    return await gw.login(account, ip=ip)


async def test_parent_adds_up_to_ten_members(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    accounts = [await gw.account(f"M{i:02d}", name=f"Member {i}") for i in range(11)]

    added = [await add_member(gw, parent, a.user_id) for a in accounts[:10]]
    eleventh = await add_member(gw, parent, accounts[10].user_id)
    listed = await family(gw, parent)

    assert [r.status for r in added] == [201] * 10
    assert eleventh.status == 409
    assert eleventh.data["error"] == "CONFLICT"
    assert "at most 10 members" in eleventh.data["message"]
    assert listed.data["data"] == {
        "user_id": parent.user_id,
        "role": "parent",
        "parent_id": None,
        "members": [{"user_id": f"M{i:02d}", "name": f"Member {i}"} for i in range(10)],
        "max_members": 10,
    }


async def test_removing_a_member_frees_its_place_and_ends_its_sessions(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    member = await member_of(gw, parent)

    removed = await gw.request(
        "DELETE",
        f"/gateway/v1/family/members/{member.user_id}",
        ip=parent.ip,
        headers=parent.bearer,
    )
    again = await gw.request(
        "DELETE",
        f"/gateway/v1/family/members/{member.user_id}",
        ip=parent.ip,
        headers=parent.bearer,
    )
    stale = await family(gw, member)

    assert removed.status == 200, removed.body
    assert removed.data["data"]["members"] == []
    assert again.status == 404
    assert stale.status == 401  # its session was bound to the family's IPs
    rejoined = await gw.login(member)
    assert (await family(gw, rejoined)).data["data"]["role"] == "none"


async def test_a_member_cannot_manage_the_family(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    member = await member_of(gw, parent)
    other = await member_of(gw, parent)
    outsider = await gw.account()

    adds = await add_member(gw, member, outsider.user_id)
    removes = await gw.request(
        "DELETE",
        f"/gateway/v1/family/members/{other.user_id}",
        ip=member.ip,
        headers=member.bearer,
    )
    view = await family(gw, member)

    assert (adds.status, adds.data["error"]) == (403, "FORBIDDEN")
    assert "only the parent" in adds.data["message"]
    assert removes.status == 403
    assert view.data["data"] == {
        "user_id": member.user_id,
        "role": "member",
        "parent_id": parent.user_id,
    }
    assert len((await family(gw, parent)).data["data"]["members"]) == 2


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("member-of-another", 409),
        ("parent-of-another", 409),
        ("itself", 400),
        ("unknown", 404),
        ("not-a-string", 400),
    ],
)
async def test_an_account_is_in_at_most_one_family(gw: Harness, case: str, status: int) -> None:
    first = await gw.trader("127.0.0.2")
    second = await gw.trader("127.0.0.3")
    member = await member_of(gw, first)
    target: Any = {
        "member-of-another": member.user_id,
        "parent-of-another": first.user_id,
        "itself": second.user_id,
        "unknown": "NOBODY",
        "not-a-string": 42,
    }[case]

    reply = await add_member(gw, second, target)

    assert reply.status == status, reply.body
    assert reply.data["message"]


async def test_admin_routes_and_cli(
    gw: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = await gw.account()
    members = [await gw.account() for _ in range(2)]
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)

    added = await gw.admin(
        "POST", f"/accounts/{parent.user_id}/family/members", {"user_id": members[0].user_id}
    )
    code = await asyncio.to_thread(
        cli.main, ["family", "add", parent.user_id, members[1].user_id, "--url", gw.url]
    )
    printed = json.loads(capsys.readouterr().out)
    shown = await gw.admin("GET", f"/accounts/{parent.user_id}/family")
    removed = await gw.admin(
        "DELETE", f"/accounts/{parent.user_id}/family/members/{members[0].user_id}"
    )
    missing = await gw.admin("DELETE", f"/accounts/{parent.user_id}/family/members/NOBODY")
    unknown = await gw.admin("POST", "/accounts/NOBODY/family/members", {"user_id": "X"})

    assert added.status == 201, added.body
    assert code == 0
    assert [m["user_id"] for m in printed["data"]["members"]] == sorted(m.user_id for m in members)
    assert [m["user_id"] for m in shown.data["data"]["members"]] == sorted(
        m.user_id for m in members
    )
    assert removed.status == 200
    assert [m["user_id"] for m in removed.data["data"]["members"]] == [members[1].user_id]
    assert missing.status == 404
    assert unknown.status == 404


async def test_members_trade_from_the_parents_ips_under_their_own_user_id(
    gw: Harness, kotak: Kotak
) -> None:
    parent = await gw.trader("127.0.0.2", "127.0.0.3")
    first = await member_of(gw, parent, ip="127.0.0.2")
    second = await member_of(gw, parent, ip="127.0.0.3")
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})

    replies = [await kotak.place(m) for m in (first, second, parent)]
    book = await kotak.orders(first)
    stranger = await gw.login(first, ip="127.0.0.4")
    refused = await kotak.place(stranger)

    assert [r.status for r in replies] == [200, 200, 200]
    users = [o["headers"]["x-gateway-user-id"] for o in await kotak.upstream_kotak_orders()]
    assert users == [first.user_id, second.user_id, parent.user_id]
    assert book.data["data"] == {"path": ORDER_BOOK, "user_id": first.user_id}
    assert refused.body == b'{"stCode":100008,"errMsg":"unauthorized","stat":"Not_Ok"}'


async def test_a_member_cannot_change_the_ips(gw: Harness, kotak: Kotak) -> None:
    parent = await gw.trader("127.0.0.2", "127.0.0.3")
    member = await member_of(gw, parent)

    refused = await gw.set_ips(member, "127.0.0.8")
    seen_by_member = await gw.request("GET", "/v2/user/ip", headers=member.bearer)
    seen_by_parent = await gw.request("GET", "/v2/user/ip", headers=parent.bearer)

    assert refused.status == 403
    assert refused.error_code == "UDAPI1179"
    assert "only the family's parent" in refused.message
    assert seen_by_member.data["data"]["user_id"] == member.user_id
    assert seen_by_member.data["data"]["primary_ip"] == "127.0.0.2"
    assert seen_by_member.data["data"]["secondary_ip"] == "127.0.0.3"
    assert "primary_ip_family_members" not in seen_by_member.data["data"]
    listed = [{"user_id": member.user_id, "name": f"member of {parent.user_id}"}]
    assert seen_by_parent.data["data"]["primary_ip_family_members"] == listed
    assert seen_by_parent.data["data"]["secondary_ip_family_members"] == listed
    # Nothing changed: the member's session still trades.
    assert (await kotak.place(member, pt="L", pr="1400")).status == 200


async def test_parent_ip_change_logs_every_member_out_at_once(gw: Harness, kotak: Kotak) -> None:
    parent = await gw.trader("127.0.0.2")
    gw.clock.advance(WEEK)  # past the cooldown the first registration started
    parent = await gw.login(parent)
    members = [await member_of(gw, parent) for _ in range(3)]
    assert [(await kotak.place(m, pt="L", pr="1400")).status for m in members] == [200] * 3

    changed = await gw.set_ips(parent, "127.0.0.6")
    after = [await kotak.place(m, pt="L", pr="1400") for m in members]
    moved = [await kotak.place(m, ip="127.0.0.6", pt="L", pr="1400") for m in members]

    assert changed.status == 200, changed.body
    assert changed.data["data"]["access_tokens_invalidated"] is True
    assert {(r.status, r.data["stCode"]) for r in after + moved} == {(401, 900901)}
    assert len(await kotak.upstream_kotak_orders()) == 3
    relogged = await gw.login(members[0], ip="127.0.0.6")
    assert (await kotak.place(relogged, pt="L", pr="1400")).status == 200


async def test_a_member_never_touches_another_members_order(gw: Harness, kotak: Kotak) -> None:
    parent = await gw.trader("127.0.0.2")
    owner, other = await member_of(gw, parent), await member_of(gw, parent)
    placed = await kotak.place(owner, pt="L", pr="1400")
    order_id = placed.data["nOrdNo"]

    refused = [
        await kotak.cancel(other, order_id),
        await kotak.modify(other, order_id, pt="L", pr="1399"),
        await kotak.modify(other, order_id),
        await kotak.cancel(parent, order_id),
    ]

    assert [(r.status, r.data["stCode"]) for r in refused] == [(403, 94033)] * 4
    assert all(order_id in r.data["errMsg"] for r in refused)
    [only] = await kotak.upstream_kotak_orders()
    assert only["headers"]["x-gateway-user-id"] == owner.user_id
    assert (await kotak.cancel(owner, order_id)).status == 200


async def test_a_family_may_share_an_ip_and_outsiders_may_not(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    member = await gw.account()
    assert (await add_member(gw, parent, member.user_id)).status == 201
    outsider = await gw.login(await gw.account(), ip="127.0.0.5")

    taken = await gw.set_ips(outsider, "127.0.0.2")

    assert taken.status == 409
    assert "belongs to one client or one family" in taken.message
    member_session = await gw.login(member, ip="127.0.0.2")
    assert (await gw.request("GET", "/v2/user/ip", headers=member_session.bearer)).data["data"][
        "primary_ip"
    ] == "127.0.0.2"


async def test_joining_releases_the_members_own_ips_and_leaving_needs_new_ones(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    joiner = await gw.trader("127.0.0.7")  # had its own static IP before it joined
    assert (await add_member(gw, parent, joiner.user_id)).status == 201

    # 127.0.0.7 is no longer held: an outsider may register it, and when the member leaves
    # it does not take it back with it (one address, one client or family).
    outsider = await gw.login(await gw.account(), ip="127.0.0.5")
    assert (await gw.set_ips(outsider, "127.0.0.7")).status == 200

    member = await gw.login(joiner, ip="127.0.0.2")
    left = await gw.request(
        "DELETE", f"/gateway/v1/family/members/{joiner.user_id}", headers=member.bearer
    )
    assert left.status == 200, left.body
    assert left.data["data"]["parent_id"] is None
    again = await gw.login(joiner, ip="127.0.0.2")
    ips = await gw.request("GET", "/v2/user/ip", headers=again.bearer)
    assert ips.data["data"]["primary_ip"] is None
    assert (await gw.place(again, order_type="LIMIT", price=1400)).status == 403
    assert (await gw.set_ips(again, "127.0.0.8")).status == 200
