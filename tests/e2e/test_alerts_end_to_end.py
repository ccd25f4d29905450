"""An alert, end to end from a price change on (simulated) Fragment to every kind of channel.

Simulator -> crawler -> RabbitMQ -> ingest -> events exchange -> the alerts service (its own
process, its own durable queue) -> a Telegram chat through a local stand-in of the Bot API (the
real python-telegram-bot doing the HTTP), a Standard Webhooks receiver (verified with the
``standardwebhooks`` package, not the project's signer), an Apprise ``json://`` receiver, and the
rule's Atom feed. Each channel is asserted on its own, so a failure names the channel. Then the
listing leaves Fragment while the crawl is broken: nothing fires until a complete census
delists it.
"""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from fragmenty_shared.settings import Settings
from tests.e2e.test_listing_flows_end_to_end import a_number_on_auction, crawl
from tests.integration.alerts.harness import AlertsClient, WebhookReceiver, running_receiver
from tests.support.private_servers import free_port
from tests.support.processes import ServiceProcess, running, service_environment, wait_until
from tests.support.telegram_standin import running_bot_api

pytestmark = pytest.mark.slow

SIMULATED_LISTINGS = 24
CHAT = 777001
ATOM = "{http://www.w3.org/2005/Atom}"


class AppriseJsonReceiver:
    """What Apprise's ``json://`` notifier posts: one JSON object per notification."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/notify"

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(json.loads(await request.read()))
        return web.Response(text="ok")


@pytest.fixture
async def apprise_receiver() -> AsyncIterator[AppriseJsonReceiver]:
    receiver = AppriseJsonReceiver()
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    yield receiver
    await runner.cleanup()


async def eventually(check: Callable[[], Any], what: str, timeout_s: float = 45.0) -> Any:
    """Wait until ``check`` (a plain function) returns something truthy, and return that."""
    found: list[Any] = []

    async def arrived() -> bool:
        found[:] = [check()]
        return bool(found[0])

    await wait_until(arrived, timeout_s=timeout_s, what=what)
    return found[0]


async def test_a_price_change_on_fragment_reaches_telegram_webhook_apprise_and_the_feed(
    settings: Settings, apprise_receiver: AppriseJsonReceiver, tmp_path: Path
) -> None:
    simulator_port, ingest_port, alerts_port = free_port(), free_port(), free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    alerts_url = f"http://127.0.0.1:{alerts_port}"
    async with running_bot_api() as bot_api, running_receiver(WebhookReceiver()) as webhook:
        env = service_environment(
            settings.model_copy(update={"ingest_port": ingest_port}),
            FRAGMENTY_FRAGMENT_URL=simulator_url,
            FRAGMENTY_ALERTS_PORT=str(alerts_port),
            FRAGMENTY_ALERTS_PUBLIC_URL=alerts_url,
            FRAGMENTY_ALERTS_SSRF_ALLOWLIST='["127.0.0.0/8"]',
            FRAGMENTY_ALERTS_TELEGRAM_TOKEN="123456:E2E-token",
            FRAGMENTY_ALERTS_TELEGRAM_API_URL=bot_api.base_url,
            FRAGMENTY_ALERTS_DELIVERY_POLL_S="0.2",
            FRAGMENTY_ALERTS_RULES_REFRESH_S="0.5",
        )

        def service(name: str, *args: str) -> ServiceProcess:
            return ServiceProcess(name, f"fragmenty_{name}", args, env, tmp_path)

        simulator = service(
            "simulator", "--port", str(simulator_port), "--listings", str(SIMULATED_LISTINGS)
        )
        with running(simulator, service("ingest"), alerts := service("alerts")):
            await simulator.wait_ready(f"{simulator_url}/_simulator/market")
            await alerts.wait_ready(f"{alerts_url}/readyz")
            async with httpx.AsyncClient(timeout=10) as http:
                target = await a_number_on_auction(http, simulator_url)
                slug, title = (
                    target["slug"],
                    target["title"],
                )  # "+888 0123 4567", as Fragment writes it
                first_price = Decimal(target["price_ton"])

                # The listing is known before the rules exist (its "listed" event fires nothing).
                await asyncio.to_thread(crawl, env, tmp_path)

                # A trader watches the number from Telegram ...
                bot_api.user_says(CHAT, "/start")
                await bot_api.wait_for_messages(1, CHAT, timeout_s=30)
                bot_api.user_says(CHAT, f"/watch {slug}")
                saved = await bot_api.wait_for_messages(2, CHAT, timeout_s=30)
                assert "saved" in saved[1].text, saved[1].text
                # ... another through the API, to a signed webhook and an Apprise URL.
                client = await AlertsClient.new_account(alerts_url)
                hook = await client.webhook(webhook.url)
                apprise = await client.http.post(
                    "/api/v1/alerts/channels", json={"kind": "apprise", "url": apprise_receiver.url}
                )
                assert apprise.status_code == 201, apprise.text
                rule = await client.rule(
                    name="my auction", slugs=[slug], types=["price_changed", "delisted"], cooldown=0
                )

                new_price = first_price * 2
                moved = await http.post(
                    f"{simulator_url}/_simulator/listings/number/{slug}",
                    json={"price_ton": str(new_price)},
                )
                assert moved.status_code == 200, moved.text
                await asyncio.to_thread(crawl, env, tmp_path)

                # Telegram: the chat gets the change, old -> new, with the links.
                def telegram_alert() -> str | None:
                    return next(
                        (m.text for m in bot_api.sent if m.chat_id == CHAT and title in m.text),
                        None,
                    )

                text = await eventually(telegram_alert, "the Telegram alert")
                change = re.search(r"([\d,.]+) TON (?:\(\S+\) )?-> ([\d,.]+) TON", text)
                assert change is not None, text
                old, new = (Decimal(amount.replace(",", "")) for amount in change.groups())
                assert (old, new) == (first_price, new_price), text
                assert f"https://fragment.com/number/{slug}" in text

                # Webhook: signed per Standard Webhooks, about this listing's price change.
                [delivery] = await webhook.wait_for(1, timeout_s=45)
                payload = Webhook(hook["secrets"][0]).verify(delivery.body, delivery.headers)
                assert payload["type"] == "alert.fired"
                assert payload["data"]["rule_id"] == rule["id"]
                [event] = payload["data"]["events"]
                assert (event["type"], event["slug"]) == ("price_changed", slug)
                assert Decimal(event["old"]["price_ton"]) == first_price
                assert Decimal(event["new"]["price_ton"]) == new_price

                # Apprise json://: the same alert, as Apprise posts it.
                [note] = await eventually(lambda: apprise_receiver.received, "the Apprise post")
                assert title in str(note["message"])
                assert "my auction" in str(note["title"])

                # The rule's Atom feed lists it.
                feed_url = httpx.URL(rule["feed_url"])
                feed = await client.http.get(feed_url.path, params=feed_url.params)
                assert feed.status_code == 200, feed.text
                [entry] = ET.fromstring(feed.content).findall(f"{ATOM}entry")
                assert title in (entry.findtext(f"{ATOM}title") or "")

                # The listing leaves Fragment, but the census that would see it is broken (the
                # markup changed): nothing may fire. The next complete census delists it, and
                # that fires, once.
                gone = await http.delete(f"{simulator_url}/_simulator/listings/number/{slug}")
                assert gone.status_code == 200, gone.text
                broken = await http.post(
                    f"{simulator_url}/_simulator/faults", json={"markup_change": True}
                )
                assert broken.status_code == 200, broken.text
                await asyncio.to_thread(crawl, env, tmp_path, complete=False)
                await asyncio.sleep(3)  # time enough for a wrong alert to arrive
                assert len(webhook.received) == 1, "a failed crawl fired an alert"
                fixed = await http.delete(f"{simulator_url}/_simulator/faults")
                assert fixed.status_code == 200, fixed.text
                complete_census_started = datetime.now(UTC)
                await asyncio.to_thread(crawl, env, tmp_path)
                second = (await webhook.wait_for(2, timeout_s=45))[1]
                payload = Webhook(hook["secrets"][0]).verify(second.body, second.headers)
                [event] = payload["data"]["events"]
                assert (event["type"], event["slug"]) == ("delisted", slug)
                assert datetime.fromisoformat(event["occurred_at"]) >= complete_census_started
                await asyncio.sleep(1)
                assert len(webhook.received) == 2
                await client.close()
