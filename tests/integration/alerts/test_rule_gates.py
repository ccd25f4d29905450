"""Thresholds re-arm as specified; cooldown, daily cap and digest hold (real database).

Events go straight to the service's processor (the broker path is covered elsewhere), with
observation times chosen by the test, so cooldowns and re-arm times need no waiting.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_alerts.store import AlertsStore
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.settings import Settings
from tests.unit.notifier.factories import make_event

from .harness import (
    AlertsClient,
    WebhookReceiver,
    alerts_settings,
    running_alerts,
    running_receiver,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def price_move(old: str, new: str, minutes: float, slug: str = "88800001234") -> PriceEvent:
    return make_event(slug, price=new, old_price=old, occurred_at=at(minutes))


async def fired_prices(receiver: WebhookReceiver, count: int) -> list[str]:
    await receiver.wait_for(count)
    await asyncio.sleep(0.3)
    return [
        json.loads(item.body)["data"]["events"][0]["new"]["price_ton"] for item in receiver.received
    ]


async def test_a_below_threshold_fires_once_and_re_arms_only_past_the_margin(
    settings: Settings,
) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(
            slugs=["88800001234"], below_price_ton="100", rearm_margin_pct=5, cooldown=0
        )
        process = alerts.service.processor.process
        assert await process(price_move("120", "99", 0)) == 1  # crosses: fires
        assert await process(price_move("99", "101", 1)) == 0  # back above, within the margin
        assert await process(price_move("101", "98", 2)) == 0  # wobble: not re-armed, silent
        assert await process(price_move("98", "106", 3)) == 0  # past the margin: re-arms
        assert await process(price_move("106", "97", 4)) == 1  # crosses again: fires
        assert await fired_prices(receiver, 2) == ["99", "97"]
        await client.close()


async def test_a_threshold_also_re_arms_after_its_re_arm_time(settings: Settings) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(
            slugs=["88800001234"], below_price_ton="100", rearm_after="1h", cooldown=0
        )
        process = alerts.service.processor.process
        assert await process(price_move("120", "99", 0)) == 1
        assert await process(price_move("99", "98", 30)) == 0
        assert await process(price_move("98", "97", 61)) == 1
        await client.close()


async def test_cooldown_per_rule_and_listing(settings: Settings) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(pattern="888*", cooldown="10m")
        process = alerts.service.processor.process
        assert await process(price_move("100", "110", 0)) == 1
        assert await process(price_move("110", "120", 5)) == 0  # same listing, in the cooldown
        assert await process(price_move("100", "110", 5, slug="88800005555")) == 1  # other listing
        assert await process(price_move("120", "130", 10)) == 1  # cooldown over
        await client.close()


async def test_a_second_instance_sees_the_first_ones_cooldown(settings: Settings) -> None:
    """Competing consumers: the state is in the database, not in one instance's memory."""
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as first:
        client = await AlertsClient.new_account(first.url)
        await client.webhook(receiver.url)
        await client.rule(slugs=["88800001234"], cooldown="10m")
        async with running_alerts(alerts_settings(settings)) as second:
            assert await first.service.processor.process(price_move("100", "110", 0)) == 1
            assert await second.service.processor.process(price_move("110", "120", 1)) == 0
            # Both at once on the same listing: exactly one fires.
            results = await asyncio.gather(
                first.service.processor.process(price_move("120", "130", 20)),
                second.service.processor.process(price_move("120", "131", 20.001)),
            )
            assert sorted(results) == [0, 1]
        await client.close()


async def test_the_daily_cap_holds_across_listings(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(pattern="888*", cooldown=0, daily_cap=3)
        process = alerts.service.processor.process
        fired = [
            await process(price_move("100", "110", n, slug=f"8880000{n:04d}")) for n in range(5)
        ]
        assert fired == [1, 1, 1, 0, 0]
        next_day = make_event("88800000009", price="5", old_price="6", occurred_at=at(24 * 60))
        assert await process(next_day) == 1
        await receiver.wait_for(4)
        assert await AlertsStore(mongo_db).slots.count_documents({"_id": {"$regex": "^cap"}}) == 4
        await client.close()


async def test_a_digest_sends_one_message_with_everything_of_its_period(settings: Settings) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        rule = await client.rule(pattern="888*", cooldown=0, mode="digest", digest_every="1m")
        for n in range(3):
            await alerts.service.processor.process(
                price_move("100", "110", n, slug=f"8880000{n:04d}")
            )
        assert receiver.received == []
        # Close the period now instead of waiting for the minute to end.
        await alerts.service.store.digest_items.update_many(
            {}, {"$set": {"period_end": datetime.now(UTC)}}
        )
        [digest] = await receiver.wait_for(1)
        body = json.loads(digest.body)
        assert body["type"] == "alert.digest"
        assert body["data"]["rule_id"] == rule["id"]
        assert len(body["data"]["events"]) == 3
        await asyncio.sleep(1.0)
        assert len(receiver.received) == 1
        await client.close()
