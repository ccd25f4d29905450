"""Headless Chromium for the page tests: the browser (fixtures; conftests import them), a page
opened with its console watched, and questions about what the page drew."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_page(browser: Browser, url: str, width: int) -> tuple[Page, list[str]]:
    """The page, loaded, with its chart drawn; and a list that collects its console errors."""
    page = await browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = await page.goto(url)
    assert response is not None
    assert response.status == 200
    await page.wait_for_selector("[data-ready='1']", timeout=20_000)
    return page, errors


async def points_in(page: Page, chart_id: str, trace: int | None = None) -> int:
    """Data points in one trace of a chart, or in all of them."""
    count: int = await page.evaluate(
        """([id, trace]) => {
            const data = document.getElementById(id).data;
            const traces = trace === null ? data : [data[trace]];
            return traces.reduce((sum, t) => sum + t.x.length, 0);
        }""",
        [chart_id, trace],
    )
    return count


async def wait_for_live_events(page: Page, chart_id: str, count: int) -> None:
    """Polls from here: Playwright's wait_for_function evaluates strings, which the CSP forbids."""
    for _ in range(100):
        seen = await page.evaluate(
            "(id) => document.getElementById(id).dataset.liveEvents || '0'", chart_id
        )
        if seen == str(count):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{chart_id} did not apply {count} live event(s)")


async def fits_the_viewport(page: Page) -> bool:
    """Nothing makes the page scroll sideways (tables scroll inside their own box)."""
    fits: bool = await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
    )
    return fits
