"""The console in a real browser (headless Chromium) against a real gateway: the trader's
and the operator's views, every form's bad input, and a strategy that keeps trading while
the console is open from another address.  Screenshots go to ``tests/artifacts/``."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from ..harness import ADMIN_TOKEN, RELIANCE, Harness, Login
from .conftest import ARTIFACTS, LAPTOP_IP, Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEEK = 7 * 24 * 3600


async def log_in(page: Page, login: Login) -> None:
    await page.fill("#login-app [name=api_key]", login.api_key)
    await page.fill("#login-app [name=api_secret]", login.api_secret)
    await page.click("#login-app button[type=submit]")
    await expect(page.locator("#trader")).to_be_visible()
    await expect(page.locator("#who")).to_have_text(login.user_id)


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


async def registered(gw: Harness, user_id: str) -> tuple[str | None, str | None]:
    data = (await gw.admin("GET", f"/accounts/{user_id}/ip")).data["data"]
    return data["primary_ip"], data["secondary_ip"]


async def change_ips(page: Page, primary: str, secondary: str) -> None:
    await page.fill("#ip-form [name=primary_ip]", primary)
    await page.fill("#ip-form [name=secondary_ip]", secondary)
    await page.click("#ip-form button[type=submit]")
    await expect(page.locator("#ip-confirm")).to_be_visible()  # the warning comes first
    await expect(page.locator("#ip-confirm")).to_contain_text("every session and token")
    await page.click("#ip-confirm-yes")


async def test_ips_countdown_refusals_and_a_change_that_ends_every_session(stack: Stack) -> None:
    gw = stack.gw
    strategy = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    page, problems = await stack.page("ips")
    await log_in(page, strategy)

    await expect(page.locator("#ip-primary")).to_have_text("127.0.0.2")
    await expect(page.locator("#ip-secondary")).to_have_text("not set")
    await expect(page.locator("#ip-primary-at")).to_contain_text("updated 20")
    countdown = page.locator("#ip-countdown")
    await expect(countdown).to_have_text(re.compile(r"\(in (7 d 0 h 0 m 0|6 d 23 h 59 m \d+) s\)"))
    first = await countdown.text_content()
    await expect(countdown).not_to_have_text(first or "")  # it counts down, live

    # The console, open from 127.0.0.5, took no order slot: the strategy still trades.
    assert (await gw.place(strategy)).status == 200
    rows = page.locator("#sessions-rows tr")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text=LAPTOP_IP)).to_contain_text("(this console)")
    await expect(rows.filter(has_text=LAPTOP_IP)).to_contain_text("none")
    await expect(rows.filter(has_text="127.0.0.2")).to_contain_text("primary (holds it)")
    await shot(page, "trader-ips")

    # Refusals in words; nothing changes and the strategy keeps trading.
    error = page.locator("#ip-error")
    for primary, secondary, words in [
        ("127.0.0.300", "", "That is not a valid IP address"),
        ("127.0.0.2", "127.0.0.2", "The primary and secondary IP must differ"),
        ("127.0.0.2", "127.0.0.3", "The IPs were changed too recently"),
    ]:
        await change_ips(page, primary, secondary)
        await expect(error).to_contain_text(words)
        assert await registered(gw, strategy.user_id) == ("127.0.0.2", None)
    await expect(error).to_contain_text("UDAPI1185")
    await page.fill("#ip-form [name=secondary_ip]", "127.0.0.3")
    await page.click("#ip-form button[type=submit]")
    await page.click("#ip-confirm-no")  # cancelled: nothing is sent
    await expect(page.locator("#ip-confirm")).to_be_hidden()
    assert await registered(gw, strategy.user_id) == ("127.0.0.2", None)
    assert (await gw.place(strategy)).status == 200

    # A week later (every session has met its daily logout by then) the change is allowed.
    gw.clock.advance(WEEK)
    strategy = await gw.login(strategy, ip="127.0.0.2")
    await page.reload()
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("Your session has ended")
    await log_in(page, strategy)
    await expect(page.locator("#ip-next")).to_have_text("now")
    await gw.trader("127.0.0.4")
    await change_ips(page, "127.0.0.2", "127.0.0.4")
    await expect(error).to_contain_text("registered by another client (409)")
    assert await registered(gw, strategy.user_id) == ("127.0.0.2", None)

    await change_ips(page, "127.0.0.2", "127.0.0.3")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("every session and token")
    assert await registered(gw, strategy.user_id) == ("127.0.0.2", "127.0.0.3")
    ended = await gw.request("GET", "/v2/user/ip", ip="127.0.0.2", headers=strategy.bearer)
    assert ended.status == 401
    assert (await gw.place(strategy)).status == 401

    await log_in(page, strategy)
    await expect(page.locator("#ip-secondary")).to_have_text("127.0.0.3")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("(this console)")
    await shot(page, "trader-sessions")
    assert problems == [], problems


async def test_invite_a_family_member_who_accepts_then_remove_them(stack: Stack) -> None:
    gw = stack.gw
    parent = await gw.trader("127.0.1.2")
    member = await gw.account(name="Member")
    page, problems = await stack.page("family")
    await log_in(page, parent)

    await page.fill("#family-invite [name=user_id]", "   ")
    await page.click("#family-invite button[type=submit]")
    await expect(page.locator("#family-error")).to_contain_text("user_id")
    await page.fill("#family-invite [name=user_id]", member.user_id)
    await page.click("#family-invite button[type=submit]")
    await expect(page.locator("#family-role")).to_contain_text(f"Invited {member.user_id}")

    invited, member_problems = await stack.page("member")
    await log_in(invited, member)
    invitation = invited.locator("#family-invitations li")
    await expect(invitation).to_contain_text(parent.user_id)
    await invitation.get_by_role("button", name="Accept").click()
    await expect(invited.locator("#notice")).to_contain_text(f"joined {parent.user_id}")

    await page.reload()
    members = page.locator("#family-members li")
    await expect(members).to_have_count(1)
    await expect(members).to_contain_text(member.user_id)
    await shot(page, "trader-family")
    family = (await gw.admin("GET", f"/accounts/{parent.user_id}/family")).data["data"]
    assert [m["user_id"] for m in family["members"]] == [member.user_id]

    await page.get_by_role("button", name=f"Remove {member.user_id}").click()
    await expect(members).to_have_count(0)
    family = (await gw.admin("GET", f"/accounts/{parent.user_id}/family")).data["data"]
    assert family["members"] == []
    assert problems == member_problems == []


async def test_api_token_with_two_cidrs_bad_lists_and_revoke(stack: Stack) -> None:
    gw = stack.gw
    trader = await gw.trader("127.0.2.2")
    page, problems = await stack.page("tokens")
    await log_in(page, trader)

    async def create(name: str, cidrs: str) -> None:
        await page.fill("#token-form [name=name]", name)
        await page.fill("#token-form [name=allowed_cidrs]", cidrs)
        await page.click("#token-form button[type=submit]")

    async def live_tokens() -> list[dict[str, object]]:
        reply = await gw.request("GET", "/v1/account/tokens", ip=trader.ip, headers=trader.bearer)
        return list(reply.data["results"])

    await create("laptop", "10.0.0.0/8\n192.168.1.0/24")
    rows = page.locator("#tokens-rows tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("10.0.0.0/8, 192.168.1.0/24")
    created = page.locator("#token-created")
    await expect(created).to_contain_text("it is not shown again")
    (token,) = await live_tokens()
    assert token["allowed_cidrs"] == ["10.0.0.0/8", "192.168.1.0/24"]
    secret = re.search(r": (\S+) \(copy it now", await created.text_content() or "")
    assert secret is not None
    works = await gw.request(
        "GET", "/v2/user/ip", ip="127.0.2.2", headers={"Authorization": f"Bearer {secret[1]}"}
    )
    assert works.status == 403  # the shown secret is the token; 127.0.2.2 is outside its list
    assert works.data["errors"][0]["error_code"] == "UDAPI9403"

    error = page.locator("#tokens-error")
    many = "\n".join(f"10.{i}.0.0/16" for i in range(51))
    for name, cidrs, words in [
        ("too many", many, "50"),
        ("bad", "10.0.0.0/33", "10.0.0.0/33"),
        ("", "10.0.0.0/8", "name"),
    ]:
        await create(name, cidrs)
        await expect(error).to_contain_text(words)
        assert len(await live_tokens()) == 1

    await rows.get_by_role("button", name="Edit CIDRs").click()
    await page.fill("#token-cidrs [name=allowed_cidrs]", "127.0.0.0/8")
    await page.click("#token-cidrs button[type=submit]")
    await expect(rows).to_contain_text("127.0.0.0/8")
    await shot(page, "trader-tokens")

    await page.reload()  # the secret was shown once, at creation, and is gone now
    await expect(rows).to_have_count(1)
    assert secret[1] not in await page.content()

    await rows.get_by_role("button", name="Revoke").click()
    await expect(rows).to_have_count(0)
    assert await live_tokens() == []

    # The analytics token: one per account, shown once.
    await page.click("#analytics-create")
    await expect(page.locator("#analytics-created")).to_contain_text("it is not shown again")
    await page.click("#analytics-create")
    await expect(page.locator("#analytics-error")).to_contain_text("It exists already (409)")
    await page.click("#analytics-revoke")
    await expect(page.locator("#analytics-created")).to_be_hidden()
    await page.click("#analytics-revoke")
    await expect(page.locator("#analytics-error")).to_contain_text("no analytics token")

    # An API app: its key and secret shown once, and the secret really logs in.
    await page.click("#app-create")
    created = page.locator("#app-created")
    await expect(created).to_contain_text("it is not shown again")
    found = re.search(r"api_key (\S+) · api_secret (\S+) ", await created.inner_text())
    assert found is not None
    login = await gw.request(
        "POST",
        "/gateway/v1/session",
        json={"api_key": found[1], "api_secret": found[2]},
    )
    assert login.status == 200, login.body
    assert problems == [], problems


async def test_a_pasted_session_token_is_used_and_only_forgotten_on_logout(stack: Stack) -> None:
    gw = stack.gw
    strategy = await gw.trader("127.0.4.2")
    page, problems = await stack.page("token")
    await page.fill("#login-token [name=token]", "not-a-token")
    await page.click("#login-token button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("UDAPI100050")
    await page.fill("#login-token [name=token]", strategy.token)
    await page.click("#login-token button[type=submit]")
    await expect(page.locator("#who")).to_have_text(strategy.user_id)
    await expect(page.locator("#sessions-rows tr")).to_have_count(1)  # no new session
    assert strategy.token not in await page.content()

    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    still = await gw.request("GET", "/v2/user/ip", ip=strategy.ip, headers=strategy.bearer)
    assert still.status == 200  # the strategy's session was not ended by the console

    async def sessions() -> list[str]:
        reply = await gw.request(
            "GET", "/gateway/v1/sessions", ip=strategy.ip, headers=strategy.bearer
        )
        return [s["created_ip"] for s in reply.data["data"]["sessions"]]

    await log_in(page, strategy)  # a console login of its own: that one logout ends
    assert await sessions() == ["127.0.4.2", LAPTOP_IP]
    await page.click("#logout")
    await expect(page.locator("#notice")).to_have_text("Logged out.")
    assert await sessions() == ["127.0.4.2"]
    assert problems == [], problems


async def test_decisions_then_the_operator_finds_the_refused_order(stack: Stack) -> None:
    gw = stack.gw
    trader = await gw.trader("127.0.3.2")
    await gw.push_ltp({RELIANCE: "1401.5"})
    assert (await gw.place(trader)).status == 200
    assert (await gw.place(trader, ip="127.0.3.9")).status == 403
    page, problems = await stack.page("decisions")
    await log_in(page, trader)

    rows = page.locator("#decisions-rows tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("refused")
    await expect(rows.nth(0)).to_contain_text("ip_not_registered")
    await expect(rows.nth(1)).to_contain_text("admitted")
    await expect(rows.nth(1)).to_contain_text("1401.5")  # the LTP the conversion used
    await expect(rows.nth(1)).to_contain_text('"order_type":"LIMIT"')  # the rewritten order
    # the refused one explained by the gateway: the failing step and the address it saw
    await rows.nth(0).locator("button.explain").click()
    await expect(rows.nth(0).locator(".explained")).to_contain_text("registered_ip")
    await expect(rows.nth(0).locator(".explained")).to_contain_text("127.0.3.9")
    await expect(rows.nth(1).locator("button.explain")).to_have_count(0)  # admitted: no "why"
    await expect(page.locator("#rate-summary")).to_contain_text("Peak 1 orders/s")
    await expect(page.locator("#rate-summary")).to_contain_text("the limit is 10")
    await expect(page.locator("#rate-chart rect")).to_have_count(300)
    await shot(page, "trader-decisions")

    operator, operator_problems = await stack.page("operator")
    await operator.fill("#login-admin [name=token]", "not-the-token")
    await operator.click("#login-admin button[type=submit]")
    await expect(operator.locator("#login-error")).to_contain_text("INVALID_TOKEN")
    await operator.fill("#login-admin [name=token]", ADMIN_TOKEN)
    await operator.click("#login-admin button[type=submit]")
    await expect(operator.locator("#operator")).to_be_visible()
    account = operator.locator("#op-accounts-rows tr", has_text=trader.user_id)
    await expect(account).to_contain_text("127.0.3.2")
    await expect(operator.locator("#op-ready-status")).to_have_text("Store and upstreams: ready")
    await expect(operator.locator("#op-decisions-rows")).to_contain_text("ip_not_registered")

    await operator.fill("#op-audit-form [name=user_id]", trader.user_id)
    await operator.click("#op-audit-form button[type=submit]")
    found = operator.locator("#op-audit-rows tr")
    await expect(found).to_have_count(3)  # the two orders, and the trader's explain of one
    refused = found.filter(has_text="ip_not_registered").filter(has_text="refused")
    await expect(refused).to_have_count(1)
    await expect(found.filter(has_text="explain")).to_have_count(1)
    await expect(refused).to_contain_text(trader.user_id)
    await shot(operator, "operator")

    await operator.fill("#op-audit-form [name=limit]", "0")
    await operator.click("#op-audit-form button[type=submit]")
    await expect(operator.locator("#op-error")).to_contain_text("limit must be an integer")
    assert problems == [], problems
    # the wrong admin token's 401 is the only error the operator's page logged
    assert all("401" in p for p in operator_problems)
