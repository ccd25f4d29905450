"""``alert_heads`` holds the (rule, listing) pairs whose state still matters, not every pair
that ever fired; forgetting a pair never lets a rule fire twice (real database).

Events are dated by the test: pairs fire "four days ago", then the service's pruning runs, so
no waiting is needed for a state to become old.
"""

import asyncio
from datetime import UTC, datetime, timedelta

from fragmenty_alerts.gates import ChainState, _reset_document
from fragmenty_shared.contracts import EventType, PriceEvent
from fragmenty_shared.settings import Settings
from tests.unit.notifier.factories import make_event

from .harness import AlertsClient, alerts_settings, running_alerts, running_receiver

NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=4)  # past FORGET_AFTER (three days)


def move(slug: str, price: str, at: datetime, old: str = "120") -> PriceEvent:
    return make_event(slug, price=price, old_price=old, occurred_at=at)


def delisted(slug: str, at: datetime) -> PriceEvent:
    return make_event(slug, type=EventType.DELISTED, price=None, old_price="90", occurred_at=at)


async def test_heads_keep_only_the_pairs_that_still_matter(settings: Settings) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(pattern="888*", cooldown="10m", daily_cap=None)
        sold_out, still_below = "77700000001", "77700000002"
        threshold = await client.rule(
            slugs=[sold_out, still_below], below_price_ton="100", cooldown=0
        )
        process = alerts.service.processor.process
        heads = alerts.service.store.heads
        assert await process(move(sold_out, "90", LONG_AGO)) == 1
        assert await process(move(still_below, "90", LONG_AGO)) == 1
        assert await process(delisted(sold_out, LONG_AGO + timedelta(minutes=1))) == 0
        for round_number in range(3):
            # Every round, pairs that never fired before: without forgetting, heads grow by
            # ten a round; with it, they stay at the one pair whose state still matters.
            for n in range(10):
                slug = f"8880{round_number:03d}{n:04d}"
                assert await process(move(slug, "110", LONG_AGO)) == 1
            assert await heads.count_documents({}) >= 10
            await alerts.service.prune()
            kept = [head["_id"] for head in await heads.find({}).to_list(None)]
            # Only the threshold that has not re-armed.
            assert kept == [f"{threshold['id']}|number:{still_below}"]
        # What was forgotten behaves as new; what was kept still holds.
        assert await process(move("88800000001", "130", NOW, old="110")) == 1
        assert await process(move("88800000001", "140", NOW + timedelta(minutes=1))) == 0
        assert await process(move(sold_out, "80", NOW)) == 1  # listed again, below: fires
        assert await process(move(still_below, "80", NOW)) == 0  # never re-armed: silent
        await receiver.wait_for(2 + 30 + 2)
        await client.close()


async def test_an_instance_that_knew_a_forgotten_pair_agrees_with_one_that_did_not(
    settings: Settings,
) -> None:
    """The first instance still remembers the pair's old state when the second forgets it;
    concurrent events on both fire exactly once, and so does a redelivery after a restart."""
    slug = "88800001234"
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as first:
        client = await AlertsClient.new_account(first.url)
        await client.webhook(receiver.url)
        await client.rule(slugs=[slug], cooldown="10m")
        assert await first.service.processor.process(move(slug, "110", LONG_AGO)) == 1
        async with running_alerts(alerts_settings(settings)) as second:
            await second.service.prune()
            assert await second.service.store.heads.count_documents({}) == 0
            events = [move(slug, "130", NOW), move(slug, "131", NOW + timedelta(seconds=1))]
            results = await asyncio.gather(
                first.service.processor.process(events[0]),
                second.service.processor.process(events[1]),
            )
            assert sorted(results) == [0, 1]
            winner = events[results.index(1)]
        await receiver.wait_for(2)
    async with running_receiver(receiver), running_alerts(alerts_settings(settings)) as restarted:
        processor = restarted.service.processor
        # The winner's event again (a redelivery after a crash) finds its link of the new
        # chain: it fires nothing new (at most a resend with the same webhook-id).
        await processor.process(winner, redelivered=True)
        assert await processor.process(move(slug, "140", NOW + timedelta(minutes=2))) == 0
        await asyncio.sleep(0.5)
        assert len({item.headers["webhook-id"] for item in receiver.received}) == 2
        await client.close()


async def test_a_pruner_that_stopped_after_the_reset_leaves_no_head_behind(
    settings: Settings,
) -> None:
    slug = "88800004321"
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(slugs=[slug], cooldown="10m")
        assert await alerts.service.processor.process(move(slug, "110", LONG_AGO)) == 1
        store = alerts.service.store
        [head] = await store.heads.find({}).to_list(None)
        # What a pruner stopped between its two writes leaves: the reset, and the head.
        state = ChainState(seq=head["seq"], event_id=head["event_id"])
        await store.links.insert_one(_reset_document(head["_id"], head["rule_id"], state, NOW))
        await alerts.service.prune()
        assert await store.heads.count_documents({}) == 0
        assert await alerts.service.processor.process(move(slug, "130", NOW)) == 1
        await client.close()
