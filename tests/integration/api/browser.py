"""Headless Chromium for the page tests: the browser, a page opened with its console watched,
and questions about what the page drew. The fixtures are in this folder's conftest."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTHS = {"desktop": 1280, "phone": 390}


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
