"""Families end to end (SPEC §4, §9): up to 11 accounts trading from the parent's static IPs.

Modelled on the Kotak Neo / Upstox family rule: one static IP may serve a family of up to 11
accounts; only the parent registers or changes it; an IP change logs every member out; and
sharing the IP gives no member access to another member's orders.  Nobody joins without
consenting (the parent invites, the invitee accepts), and a family never skips the weekly
limit nor frees an address early (issue 17, findings 1-3).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway import cli

from ..conftest import GatewayFactory
from ..harness import ADMIN_TOKEN, Harness, Login, Reply
from .conftest import KOTAK_RELIANCE, ORDER_BOOK, Kotak

WEEK = 7 * 24 * 3600 + 60


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def either(
    request: pytest.FixtureRequest, redis_store_url: str, make_gateway: GatewayFactory
) -> Harness:
    """A gateway on each store: the family flow must hold on both."""
    if request.param == "redis":
        return await make_gateway(store_url=redis_store_url)
    return await make_gateway()


async def invite(gw: Harness, parent: Login, user_id: Any) -> Reply:
    return await gw.request(
        "POST",
        "/gateway/v1/family/members",
        ip=parent.ip,
        json={"user_id": user_id},
        headers=parent.bearer,
    )


async def answer(gw: Harness, invitee: Login, parent_id: str, what: str = "accept") -> Reply:
    return await gw.request(
        "POST",
        f"/gateway/v1/family/invitations/{parent_id}/{what}",
        ip=invitee.ip,
        headers=invitee.bearer,
    )


async def invitations(gw: Harness, login: Login) -> list[dict[str, Any]]:
    reply = await gw.request(
        "GET", "/gateway/v1/family/invitations", ip=login.ip, headers=login.bearer
    )
    assert reply.status == 200, reply.body
    listed: list[dict[str, Any]] = reply.data["data"]["invitations"]
    return listed


async def add_member(gw: Harness, parent: Login, account: Login) -> Reply:
    """Invited by the parent and accepted from the account's own login session."""
    invited = await invite(gw, parent, account.user_id)
    assert invited.status == 202, invited.body
    invitee = await gw.login(account, ip="127.0.0.9")
    return await answer(gw, invitee, parent.user_id)


async def leave(gw: Harness, member: Login) -> Reply:
    return await gw.request(
        "DELETE",
        f"/gateway/v1/family/members/{member.user_id}",
        ip=member.ip,
        headers=member.bearer,
    )


async def family(gw: Harness, login: Login) -> Reply:
    return await gw.request("GET", "/gateway/v1/family", ip=login.ip, headers=login.bearer)


async def member_of(gw: Harness, parent: Login, ip: str = "127.0.0.2") -> Login:
    """A new account added to the parent's family, logged in from ``ip``."""
    account = await gw.account(name=f"member of {parent.user_id}")
    added = await add_member(gw, parent, account)
    assert added.status == 200, added.body
    return await gw.login(account, ip=ip)


async def test_parent_adds_up_to_ten_members(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    accounts = [await gw.account(f"M{i:02d}", name=f"Member {i}") for i in range(11)]
    late = await gw.login(accounts[10], ip="127.0.0.9")
    early = await invite(gw, parent, late.user_id)  # invited while there was room

    added = [await add_member(gw, parent, a) for a in accounts[:10]]
    eleventh = await invite(gw, parent, accounts[10].user_id)
    full_by_then = await answer(gw, late, parent.user_id)
    listed = await family(gw, parent)

    assert early.status == 202
    assert [r.status for r in added] == [200] * 10
    assert added[0].data["data"] == {
        "user_id": "M00",
        "role": "member",
        "parent_id": parent.user_id,
    }
    for refused in (eleventh, full_by_then):
        assert refused.status == 409
        assert refused.data["error"] == "CONFLICT"
        assert "at most 10 members" in refused.data["message"]
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

    adds = await invite(gw, member, outsider.user_id)
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


@pytest.mark.parametrize(("case", "status"), [("itself", 400), ("not-a-string", 400)])
async def test_an_invitation_is_refused_only_for_the_callers_reasons(
    gw: Harness, case: str, status: int
) -> None:
    parent = await gw.trader("127.0.0.2")
    target: Any = {"itself": parent.user_id, "not-a-string": 42}[case]

    reply = await invite(gw, parent, target)

    assert reply.status == status, reply.body
    assert reply.data["message"]


async def test_an_invitation_answers_the_same_whoever_is_invited(gw: Harness) -> None:
    # SPEC §9: it reveals nothing about the user id: whether it exists, is free or is taken.
    first = await gw.trader("127.0.0.2")
    second = await gw.trader("127.0.0.3")
    member = await member_of(gw, first)
    free = await gw.account()

    replies = [
        await invite(gw, second, user_id)
        for user_id in (member.user_id, first.user_id, "NOBODY", free.user_id)
    ]

    assert {r.status for r in replies} == {202}
    shapes = [{k: v for k, v in r.data["data"].items() if k != "user_id"} for r in replies]
    assert all(shape == shapes[0] for shape in shapes)
    assert [r.data["data"]["user_id"] for r in replies][2] == "NOBODY"


@pytest.mark.parametrize("case", ["member-of-another", "parent-of-another"])
async def test_an_account_is_in_at_most_one_family(gw: Harness, case: str) -> None:
    first = await gw.trader("127.0.0.2")
    second = await gw.trader("127.0.0.3")
    member = await member_of(gw, first)
    target = {"member-of-another": member, "parent-of-another": first}[case]
    assert (await invite(gw, second, target.user_id)).status == 202

    reply = await answer(gw, await gw.login(target, ip="127.0.0.2"), second.user_id)

    assert reply.status == 409, reply.body
    assert reply.data["error"] == "CONFLICT"
    assert reply.data["message"]
    assert (await family(gw, second)).data["data"]["members"] == []


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
    audit = await gw.admin("GET", f"/audit?user_id={members[0].user_id}&limit=5")
    [record] = [r for r in audit.data["data"] if r["decision"] == "admin_family_add"]
    assert (record["user_id"], record["parent_user_id"]) == (members[0].user_id, parent.user_id)


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
    assert (await add_member(gw, parent, member)).status == 200
    outsider = await gw.login(await gw.account(), ip="127.0.0.5")

    taken = await gw.set_ips(outsider, "127.0.0.2")

    assert taken.status == 409
    assert "belongs to one client or one family" in taken.message
    member_session = await gw.login(member, ip="127.0.0.2")
    assert (await gw.request("GET", "/v2/user/ip", headers=member_session.bearer)).data["data"][
        "primary_ip"
    ] == "127.0.0.2"


# consent (issue 17) --------------------------------------------------------------------------


async def test_an_invitation_is_listed_accepted_declined_and_lasts_seven_days(
    gw: Harness,
) -> None:
    first = await gw.trader("127.0.0.2")
    second = await gw.trader("127.0.0.3")
    invitee = await gw.login(await gw.account(), ip="127.0.0.9")
    await invite(gw, first, invitee.user_id)
    gw.clock.advance(3600)
    await invite(gw, second, invitee.user_id)

    listed = await invitations(gw, invitee)
    declined = await answer(gw, invitee, first.user_id, "decline")
    again = await answer(gw, invitee, first.user_id, "decline")
    accept_declined = await answer(gw, invitee, first.user_id)
    after_decline = await invitations(gw, invitee)
    gw.clock.advance(7 * 24 * 3600)
    invitee = await gw.login(invitee, ip="127.0.0.9")
    expired = await answer(gw, invitee, second.user_id)

    assert [(i["parent_user_id"], i["name"]) for i in listed] == [
        (first.user_id, "Test"),
        (second.user_id, "Test"),
    ]
    assert listed[0]["invited_at"] < listed[1]["invited_at"]
    assert declined.status == 200, declined.body
    assert (again.status, accept_declined.status) == (404, 404)
    assert [i["parent_user_id"] for i in after_decline] == [second.user_id]
    assert expired.status == 404
    assert await invitations(gw, invitee) == []
    assert (await family(gw, invitee)).data["data"]["role"] == "none"


async def test_an_invitation_is_accepted_only_from_a_login_session(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    invitee = await gw.login(await gw.account(), ip="127.0.0.9")
    await invite(gw, parent, invitee.user_id)
    token = await gw.request(
        "POST",
        "/v1/account/tokens",
        ip=invitee.ip,
        json={"name": "bot", "token_type": "api_key", "expiry_duration": 3600},
        headers=invitee.bearer,
    )
    assert token.status == 200, token.body
    bearer = Login(invitee.user_id, "", "", token.data["token"], ip=invitee.ip)

    refused = await answer(gw, bearer, parent.user_id)

    assert refused.status == 403
    assert "login session" in refused.data["message"]
    assert (await family(gw, parent)).data["data"]["members"] == []


async def test_an_outsider_cannot_lock_a_victim_out(gw: Harness) -> None:
    # Finding 1: "adding" an account used to end its sessions and clear its registration.
    victim = await gw.trader("127.0.0.7")
    outsider = await gw.trader("127.0.0.5")

    invited = await invite(gw, outsider, victim.user_id)
    ips = await gw.request("GET", "/v2/user/ip", ip=victim.ip, headers=victim.bearer)

    assert invited.status == 202
    assert ips.status == 200  # its session lives on
    assert ips.data["data"]["primary_ip"] == "127.0.0.7"
    assert (await family(gw, victim)).data["data"]["role"] == "none"
    assert (await family(gw, outsider)).data["data"]["members"] == []


async def test_an_outsider_cannot_take_a_victims_ip_by_adding_and_removing_it(
    gw: Harness,
) -> None:
    # Finding 2: joining used to release the member's addresses to anyone.
    victim = await gw.trader("127.0.0.7")
    thief = await gw.trader("127.0.0.5")
    accomplice = await gw.login(await gw.account(), ip="127.0.0.6")

    await invite(gw, thief, victim.user_id)
    removed = await gw.request(
        "DELETE",
        f"/gateway/v1/family/members/{victim.user_id}",
        ip=thief.ip,
        headers=thief.bearer,
    )
    stolen = await gw.set_ips(accomplice, "127.0.0.7")

    assert removed.status == 404  # it never joined
    assert stolen.status == 409
    assert "belongs to one client or one family" in stolen.message


async def test_a_members_addresses_stay_reserved_to_it_until_it_leaves(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    joiner = await gw.trader("127.0.0.7")
    assert (await add_member(gw, parent, joiner)).status == 200
    outsider = await gw.login(await gw.account(), ip="127.0.0.5")

    while_in = await gw.set_ips(outsider, "127.0.0.7")
    member = await gw.login(joiner, ip="127.0.0.2")
    assert (await leave(gw, member)).status == 200
    after = await gw.set_ips(outsider, "127.0.0.7")

    assert while_in.status == 409
    assert after.status == 200, after.body


async def test_the_parent_may_register_its_members_former_address(gw: Harness) -> None:
    parent = await gw.trader("127.0.0.2")
    gw.clock.advance(WEEK)
    parent = await gw.login(parent)
    joiner = await gw.trader("127.0.0.7")
    assert (await add_member(gw, parent, joiner)).status == 200

    changed = await gw.set_ips(parent, "127.0.0.2", "127.0.0.7")

    assert changed.status == 200, changed.body


async def test_joining_and_leaving_does_not_skip_the_weekly_limit(gw: Harness) -> None:
    # Finding 3: joining used to delete the member's registration, and with it its period.
    parent = await gw.trader("127.0.0.2")
    joiner = await gw.trader("127.0.0.7")
    assert (await add_member(gw, parent, joiner)).status == 200
    member = await gw.login(joiner, ip="127.0.0.2")
    assert (await leave(gw, member)).status == 200
    alone = await gw.login(joiner, ip="127.0.0.8")

    too_soon = await gw.set_ips(alone, "127.0.0.8")
    gw.clock.advance(WEEK)
    allowed = await gw.set_ips(await gw.login(alone, ip="127.0.0.8"), "127.0.0.8")

    assert too_soon.status == 400
    assert too_soon.error_code == "UDAPI1185"
    assert allowed.status == 200, allowed.body


async def test_the_family_flow_end_to_end(either: Harness) -> None:
    gw, kotak = either, Kotak(either)
    parent = await gw.trader("127.0.0.2")
    joiner = await gw.trader("127.0.0.7")  # an account with its own static IP
    await gw.push_ltp({KOTAK_RELIANCE: "1401.5"})

    # Invited: nothing changes until it accepts.
    assert (await invite(gw, parent, joiner.user_id)).status == 202
    assert (await kotak.place(joiner, pt="L", pr="1400")).status == 200
    [listed] = await invitations(gw, joiner)
    assert listed["parent_user_id"] == parent.user_id

    accepted = await answer(gw, joiner, parent.user_id)
    assert accepted.status == 200, accepted.body
    assert (await kotak.place(joiner, pt="L", pr="1400")).status == 401  # its sessions ended

    # It trades from the parent's IP, as itself.
    member = await gw.login(joiner, ip="127.0.0.2")
    assert (await kotak.place(member, pt="L", pr="1400")).status == 200
    users = [o["headers"]["x-gateway-user-id"] for o in await kotak.upstream_kotak_orders()]
    assert users == [joiner.user_id, joiner.user_id]

    # It leaves; its own registration waits for its period.
    assert (await leave(gw, member)).status == 200
    alone = await gw.login(joiner, ip="127.0.0.8")
    assert (await gw.set_ips(alone, "127.0.0.8")).error_code == "UDAPI1185"
    gw.clock.advance(WEEK)
    alone = await gw.login(alone, ip="127.0.0.8")
    assert (await gw.set_ips(alone, "127.0.0.8")).status == 200
    trader = await gw.login(joiner, ip="127.0.0.8")
    assert (await kotak.place(trader, pt="L", pr="1400")).status == 200
