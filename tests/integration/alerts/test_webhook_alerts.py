"""End to end on the real RabbitMQ and database: a price event published on fragmenty.events
reaches a rule's webhook, signed as Standard Webhooks says, verified with ``standardwebhooks``."""

import asyncio

from faststream.rabbit import RabbitBroker
from standardwebhooks.webhooks import Webhook

from fragmenty_alerts.store import AlertsStore
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .harness import AlertsClient, alerts_settings, running_alerts, running_receiver


async def publish(broker: RabbitBroker, topology: Topology, event: PriceEvent) -> None:
    await broker.publish(
        event.model_dump(mode="json"),
        exchange=topology.events_exchange,
        routing_key=event.routing_key,
        persist=True,
    )


async def test_a_matching_event_arrives_signed_and_other_rules_stay_quiet(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db
) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        channel = await client.webhook(receiver.url)
        watched = await client.rule(name="my number", slugs=["88800001234"])
        await client.rule(slugs=["88800009999"])
        event = make_event("88800001234", price="90", old_price="100", change_pct=-10.0)
        await publish(broker, topology, event)
        await publish(broker, topology, make_event("88800005555"))
        [delivery] = await receiver.wait_for(1)
        payload = Webhook(channel["secrets"][0]).verify(delivery.body, delivery.headers)
        assert payload["type"] == "alert.fired"
        assert payload["data"]["rule_id"] == watched["id"]
        assert payload["data"]["events"][0]["event_id"] == event.event_id
        assert "+88800001234" in payload["data"]["text"]
        assert "90 TON" in payload["data"]["text"]
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 1

        log = (await client.http.get("/api/v1/alerts/deliveries")).json()
        assert [item["status"] for item in log["items"]] == ["sent"]
        assert log["items"][0]["webhook_id"] == delivery.headers["webhook-id"]
        store = AlertsStore(mongo_db)
        assert await store.outbox.count_documents({}) == 0
        await client.close()


async def test_a_failing_endpoint_is_retried_with_the_same_webhook_id(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        receiver.status = 503
        client = await AlertsClient.new_account(alerts.url)
        channel = await client.webhook(receiver.url)
        await client.rule(slugs=["88800001234"], cooldown=0)
        await publish(broker, topology, make_event("88800001234"))
        await receiver.wait_for(2)
        receiver.status = 204
        received = await receiver.wait_for(3)
        ids = {item.headers["webhook-id"] for item in received}
        assert len(ids) == 1
        Webhook(channel["secrets"][0]).verify(received[-1].body, received[-1].headers)
        await asyncio.sleep(0.5)
        statuses = [
            item["status"]
            for item in (await client.http.get("/api/v1/alerts/deliveries")).json()["items"]
        ]
        assert statuses.count("sent") == 1
        assert statuses.count("failed") >= 2
        await client.close()


async def test_410_disables_the_endpoint_and_nothing_more_is_sent(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        receiver.status = 410
        client = await AlertsClient.new_account(alerts.url)
        channel = await client.webhook(receiver.url)
        await client.rule(slugs=["88800001234"], cooldown=0)
        await publish(broker, topology, make_event("88800001234"))
        await receiver.wait_for(1)
        await asyncio.sleep(0.5)
        state = (await client.http.get(f"/api/v1/alerts/channels/{channel['id']}")).json()
        assert state["enabled"] is False
        assert "410" in state["disabled_reason"]
        await publish(broker, topology, make_event("88800001234", price="1", old_price="150"))
        await asyncio.sleep(1.0)
        assert len(receiver.received) == 1
        log = (await client.http.get("/api/v1/alerts/deliveries")).json()["items"]
        assert [(item["status"], item["response_code"]) for item in log] == [("failed", 410)]
        await client.close()
