"""The Telegram bot, the real python-telegram-bot against a local stand-in of the Bot API, and
events over the real RabbitMQ: /start links the chat, /watch makes a rule, the alert arrives."""

from faststream.rabbit import RabbitBroker

from fragmenty_alerts.recent_log import log_collections
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.support.telegram_standin import BotApiStandIn, running_bot_api
from tests.unit.notifier.factories import make_event

from .harness import AlertsClient, alerts_settings, running_alerts

CHAT = 424242


def bot_settings(settings: Settings, standin: BotApiStandIn) -> AlertsSettings:
    return alerts_settings(
        settings,
        alerts_telegram_token="123456:TEST-token",
        alerts_telegram_api_url=standin.base_url,
    )


async def test_watch_from_telegram_then_the_alert_arrives_in_the_chat(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    async with running_bot_api() as standin, running_alerts(bot_settings(settings, standin)):
        standin.user_says(CHAT, "/start")
        [linked] = await standin.wait_for_messages(1, CHAT)
        assert "Linked" in linked.text
        standin.user_says(CHAT, "/watch +888 0000 12*")
        saved = await standin.wait_for_messages(2, CHAT)
        assert "saved" in saved[1].text
        rule_id = saved[1].text.split()[1]

        event = make_event("88800001234", price="90", old_price="100", change_pct=-10.0)
        await broker.publish(
            event.model_dump(mode="json"),
            exchange=topology.events_exchange,
            routing_key=event.routing_key,
        )
        alert = (await standin.wait_for_messages(3, CHAT))[2]
        assert "+88800001234" in alert.text
        assert "100 TON -> 90 TON (-10.0 %)" in alert.text
        assert "https://fragment.com/number/88800001234" in alert.text

        standin.user_says(CHAT, "/rules")
        listing = (await standin.wait_for_messages(4, CHAT))[3]
        assert rule_id in listing.text
        standin.user_says(CHAT, f"/remove {rule_id}")
        assert "removed" in (await standin.wait_for_messages(5, CHAT))[4].text
        standin.user_says(CHAT, "/below cheap")
        assert "Usage" in (await standin.wait_for_messages(6, CHAT))[5].text


async def test_start_with_a_link_code_links_the_chat_to_that_account(settings: Settings) -> None:
    async with (
        running_bot_api() as standin,
        running_alerts(bot_settings(settings, standin)) as alerts,
    ):
        client = await AlertsClient.new_account(alerts.url)
        code = (await client.http.post("/api/v1/alerts/telegram/link")).json()["code"]
        standin.user_says(CHAT, f"/start {code}")
        await standin.wait_for_messages(1, CHAT)
        [channel] = (await client.http.get("/api/v1/alerts/channels")).json()
        assert channel["kind"] == "telegram"
        assert channel["chat_id"] == CHAT
        standin.user_says(CHAT + 1, f"/start {code}")  # a used code links nothing
        [refused] = await standin.wait_for_messages(1, CHAT + 1)
        assert "unknown or used" in refused.text
        await client.close()


async def test_a_429_is_retried_after_retry_after(settings: Settings) -> None:
    async with (
        running_bot_api() as standin,
        running_alerts(bot_settings(settings, standin)) as alerts,
    ):
        standin.user_says(CHAT, "/start")
        standin.user_says(CHAT, "/below 100")
        await standin.wait_for_messages(2, CHAT)
        standin.too_many_requests = 5  # more than the library's own retries
        standin.retry_after_s = 1
        assert (
            await alerts.service.processor.process(
                make_event("88800001234", price="95", old_price="120")
            )
            == 1
        )
        messages = await standin.wait_for_messages(3, CHAT, timeout_s=20)
        assert "+88800001234" in messages[2].text
        store = alerts.service.store
        log = [
            entry
            for collection in await log_collections(store.database)
            for entry in await store.database[collection.name].find({}).to_list(None)
        ]
        assert any(entry.get("response_code") == 429 for entry in log)
