"""examples/auth-chat's page (public/index.html on the generated client) in Chromium: two
browsers log in as two users, chat, poke each other, and a refused join shows its error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _browser_support import LiveServer, wait_for
from _examples import copy_example

pytestmark = pytest.mark.asyncio(loop_scope="module")

OVERRIDES = {
    # the demo users are hashed at first boot: the production rounds would take seconds here
    "authChat": {"passwordIterations": 1000},
    # LiveServer's own starting rooms replace the project's: name the example's again
    "general": {"startingChatRooms": {"lobby": {}, "staff": {}}},
}


def log_has(*texts: str) -> str:
    """A JS predicate: one line of the page's log holds every one of ``texts``."""
    checks = " && ".join(f"p.textContent.includes({t!r})" for t in texts)
    return f"() => [...document.querySelectorAll('#log p')].some((p) => {checks})"


class Page:
    """One browser (a context of its own: its own fingerprint cookie) on the app's page."""

    def __init__(self, page: Any) -> None:
        self.page = page

    async def wait(self, predicate: str) -> None:
        await self.page.wait_for_function(predicate, polling=25)  # polling: background tabs get no frames

    async def text(self, selector: str) -> str:
        return str(await self.page.text_content(selector))

    async def shows(self, selector: str) -> None:
        await self.page.wait_for_selector(selector, state="visible")

    async def log_in(self, name: str, password: str) -> None:
        await self.shows("#login-panel")
        await self.page.fill("#name", name)
        await self.page.fill("#password", password)
        await self.page.click("#login button")


async def test_two_users_chat_poke_and_see_a_refused_join(browser: Any, tmp_path: Path) -> None:
    server = LiveServer(copy_example("auth-chat", tmp_path), OVERRIDES)
    await server.start()
    contexts = [await browser.new_context() for _ in range(2)]
    errors: list[str] = []
    try:
        pages = []
        for context in contexts:
            page = await context.new_page()
            page.set_default_timeout(8000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(server.url("/"))
            pages.append(Page(page))
        alice, bob = pages

        await bob.log_in("bob", "wrong")
        await bob.wait("() => document.getElementById('login-error').textContent === 'wrong name or password'")
        await alice.log_in("alice", "alice-pw")
        await bob.log_in("bob", "bob-pw")
        for page, name in ((alice, "alice"), (bob, "bob")):
            await page.shows("#chat-panel")
            assert await page.text("#me") == name
            await page.wait(log_has("joined lobby"))

        await alice.page.bring_to_front()
        await alice.page.fill("#message", "hello bob")
        await alice.page.press("#message", "Enter")
        await bob.wait(log_has("[lobby] alice", "hello bob"))  # the name stamped by the chat middleware

        await bob.page.bring_to_front()
        await bob.page.fill("#poke-to", "alice")
        await bob.page.click("#poke button")
        await bob.wait(log_has("poked alice (1 connection)"))
        await alice.wait(log_has("bob poked you"))

        await bob.page.click("#join-staff")  # bob is a member, not staff
        await bob.wait(log_has("staff: Error: the staff room is for staff only"))
        assert await bob.page.eval_on_selector_all("#room option", "options => options.map(o => o.value)") == ["lobby"]

        # a server restart: both browsers reconnect as new connections, logged in again by
        # their cookie (the join middleware lets them back into lobby), and chat on
        await server.restart()
        await wait_for(lambda: len(server.api.chat_room.rooms["lobby"].members) == 2, what="both back in lobby")
        await alice.page.fill("#message", "after the restart")
        await alice.page.press("#message", "Enter")
        await bob.wait(log_has("[lobby] alice", "after the restart"))

        # the login is remembered by the browser's fingerprint cookie: a reload is still alice
        await alice.page.reload()
        await alice.shows("#chat-panel")
        await alice.wait(log_has("joined lobby"))
        assert await alice.text("#me") == "alice"
        await alice.page.click("#logout")
        await alice.shows("#login-panel")
        assert await alice.page.is_hidden("#chat-panel")
        assert not errors, errors
    finally:
        for context in contexts:
            await context.close()
        await server.stop()
