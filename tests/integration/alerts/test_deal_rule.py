"""An alert rule with ``min_discount_pct`` fires for an event priced far under its fair value,
on the real RabbitMQ and database; events over their value, or without one, stay quiet."""

from decimal import Decimal

from faststream.rabbit import RabbitBroker
from standardwebhooks.webhooks import Webhook

from fragmenty_shared.contracts import EventValuation, PriceEvent
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .harness import AlertsClient, alerts_settings, running_alerts, running_receiver
from .test_webhook_alerts import publish


def valued(slug: str, price: str, discount_pct: float) -> PriceEvent:
    event = make_event(slug, price=price, old_price="1000", change_pct=-50.0)
    valuation = EventValuation(
        fair_value_ton=Decimal(1000),
        low_ton=Decimal(800),
        high_ton=Decimal(1300),
        discount_pct=discount_pct,
        confidence=0.6,
    )
    return event.model_copy(update={"valuation": valuation})


async def test_a_deal_rule_fires_only_for_listings_far_under_fair_value(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        channel = await client.webhook(receiver.url)
        rule = await client.rule(name="deals", assets=["number"], min_discount_pct=40)
        assert rule["spec"]["min_discount_pct"] == 40
        await publish(broker, topology, valued("88800001111", "1200", -20.0))  # over its value
        await publish(broker, topology, make_event("88800002222", price="10"))  # not valued
        deal = valued("88800003333", "300", 70.0)
        await publish(broker, topology, deal)
        [delivery] = await receiver.wait_for(1)
        payload = Webhook(channel["secrets"][0]).verify(delivery.body, delivery.headers)
        assert payload["data"]["rule_id"] == rule["id"]
        assert [e["event_id"] for e in payload["data"]["events"]] == [deal.event_id]
        assert payload["data"]["events"][0]["valuation"]["discount_pct"] == 70.0
        # The deal was published last: the two before it were judged and dropped already.
        assert len(receiver.received) == 1
        await client.close()
