"""The scaffolded chat page (``hero-fast new``) on the generated client, in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _browser_support import LiveServer

from hero_fast.cli import scaffold

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def wait(page: Any, predicate: str) -> None:
    await page.wait_for_function(predicate, polling=25)  # polling: background tabs get no frames


def log_has(text: str) -> str:
    return f"() => document.getElementById('log').textContent.includes({text!r})"


async def test_the_scaffolded_chat_page_chats_and_survives_a_restart(browser, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    scaffold(project)
    server = LiveServer(project)
    await server.start()
    context = await browser.new_context()
    errors: list[str] = []
    try:
        pages = []
        for _ in range(2):
            page = await context.new_page()
            page.set_default_timeout(8000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(server.url("/"))
            pages.append(page)
        one, two = pages
        for page in pages:
            await wait(page, "() => document.getElementById('state').textContent === 'connected'")
            await wait(page, log_has("joined defaultRoom"))
        assert "Hello! Welcome to demo" in await one.text_content("#log")

        await one.bring_to_front()
        await one.fill("#message", "hello from the page")
        await one.press("#message", "Enter")
        await wait(one, "() => document.querySelector('#log p.me')?.textContent.includes('hello from')")
        await wait(two, log_has("hello from the page"))

        await one.click("#random")
        await wait(one, "() => /randomNumber: 0\\.\\d+/.test(document.getElementById('log').textContent)")
        await one.click("#members")
        await wait(one, log_has("2 connected to defaultRoom"))
        await one.click("#status")
        await wait(one, "() => !document.getElementById('output').hidden")
        assert '"serverName": "demo"' in await one.text_content("#output")

        await server.restart()
        await wait(one, log_has("reconnected; back in defaultRoom"))
        await wait(two, "() => document.getElementById('state').textContent === 'connected'")
        await one.fill("#message", "after the restart")
        await one.press("#message", "Enter")
        await wait(two, log_has("after the restart"))
        assert not errors, errors
    finally:
        await context.close()
        await server.stop()
