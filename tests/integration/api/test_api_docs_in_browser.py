"""/docs (Swagger UI) and /redoc render in headless Chromium with no network beyond the api:
every asset comes from the service, and nothing breaks its strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route

from tests.integration.api.browser import WIDTHS

pytestmark = pytest.mark.slow


async def offline_page(
    browser: Browser, site: str, width: int
) -> tuple[Page, list[str], list[str]]:
    """A page whose requests anywhere but the api fail; with its console errors and those
    requests."""
    page = await browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    elsewhere: list[str] = []

    async def only_the_api(route: Route) -> None:
        if route.request.url.startswith(site):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_the_api)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors, elsewhere


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_swagger_ui_renders_offline(
    browser: Browser, site: str, artifacts_dir: Path, device: str
) -> None:
    page, errors, elsewhere = await offline_page(browser, site, WIDTHS[device])
    response = await page.goto(f"{site}/docs")
    assert response is not None
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    await page.locator(".opblock").first.wait_for(timeout=20_000)
    paths = await page.locator(".opblock-summary-path").all_text_contents()
    assert "/api/v1/listings" in [path.replace("\u200b", "") for path in paths]
    title = await page.evaluate("document.querySelector('.info .title')?.textContent")
    assert title is not None, await page.content()
    assert "Fragmenty API" in title
    await page.screenshot(path=artifacts_dir / f"api-docs-{device}.png", full_page=False)
    assert elsewhere == []
    assert errors == []


async def test_try_it_out_calls_the_api_from_the_docs(browser: Browser, site: str) -> None:
    page, errors, elsewhere = await offline_page(browser, site, 1280)
    await page.goto(f"{site}/docs#/market/list_listings_api_v1_listings_get")
    operation = page.locator("#operations-market-list_listings_api_v1_listings_get")
    await operation.locator(".try-out__btn").click()
    await operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    await status.wait_for(timeout=20_000)
    assert (await status.text_content() or "").strip() == "200"
    assert elsewhere == []
    assert errors == []


async def test_redoc_renders_offline(browser: Browser, site: str, artifacts_dir: Path) -> None:
    page, errors, elsewhere = await offline_page(browser, site, 1280)
    response = await page.goto(f"{site}/redoc")
    assert response is not None
    assert response.status == 200
    heading = page.locator("h1", has_text="Fragmenty API")
    await heading.wait_for(timeout=30_000)
    assert await page.locator("h2", has_text="Query the market").count() == 1
    await page.screenshot(path=artifacts_dir / "api-redoc-desktop.png", full_page=False)
    assert elsewhere == []
    # ReDoc's sidebar credit has its logo's CDN address built in; the CSP blocks it and ReDoc
    # then leaves the image out. That is the only complaint allowed.
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in error for error in errors), errors


async def test_docs_assets_are_served_by_the_api(site: str) -> None:
    async with httpx.AsyncClient(base_url=site) as client:
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            response = await client.get(f"/docs-assets/{asset}")
            assert response.status_code == 200, asset
            assert len(response.content) > 100_000
        init = await client.get("/docs-assets/swagger-init.js")
        assert "SwaggerUIBundle" in init.text
        page = await client.get("/docs")
        assert "cdn" not in page.text
        assert "<script>" not in page.text  # no inline script, only <script src=...>
