"""Crash tests against an oracle of the alerts that must arrive.

The alerts service runs as a process of its own (as ``make up`` runs it). Every test publishes
events whose alerts are known in advance (one watched slug per rule, no cooldown), breaks
something while deliveries are in flight, and then checks the receiver: every expected
``webhook-id`` arrived with a 2xx, nothing else arrived (a duplicate is only ever a retry with the
same id), and nothing was sent to a disabled endpoint.
"""

import asyncio
import json
import signal
from pathlib import Path

import httpx
from aiohttp import web
from faststream.rabbit import RabbitBroker

from fragmenty_alerts.alert import webhook_id
from fragmenty_shared.broker import make_broker
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.support.broker_cleanup import delete_namespace_queues
from tests.support.private_servers import free_port, private_rabbitmq
from tests.support.processes import ServiceProcess, service_environment, wait_until
from tests.unit.notifier.factories import make_event

from .harness import AlertsClient, WebhookReceiver, running_receiver

RULES = 12


def alerts_process(
    settings: Settings, port: int, log_dir: Path, rabbitmq_url: str | None = None
) -> ServiceProcess:
    environment = service_environment(
        settings,
        FRAGMENTY_ALERTS_PORT=str(port),
        FRAGMENTY_ALERTS_SSRF_ALLOWLIST='["127.0.0.0/8"]',
        FRAGMENTY_ALERTS_DELIVERY_LEASE_S="2",
        FRAGMENTY_ALERTS_DELIVERY_POLL_S="0.2",
        FRAGMENTY_ALERTS_RETRY_BASE_S="0.3",
        FRAGMENTY_ALERTS_RETRY_MAX_S="2",
        FRAGMENTY_ALERTS_RULES_REFRESH_S="0.5",
    )
    if rabbitmq_url is not None:
        environment["FRAGMENTY_RABBITMQ_URL"] = rabbitmq_url
    return ServiceProcess("alerts", "fragmenty_alerts", (), environment, log_dir)


async def ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{url}/readyz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def watch_rules(client: AlertsClient, receiver: WebhookReceiver) -> dict[str, str]:
    """One webhook, RULES rules each watching one number; returns slug -> rule id."""
    await client.webhook(receiver.url)
    rules = {}
    for number in range(RULES):
        slug = f"8880000{number:04d}"
        rules[slug] = (await client.rule(slugs=[slug], cooldown=0))["id"]
    return rules


async def publish_round(
    broker: RabbitBroker, topology: Topology, rules: dict[str, str], price: str
) -> set[str]:
    """One event per watched slug; returns the webhook-ids that must arrive."""
    expected = set()
    for slug, rule_id in rules.items():
        event = make_event(slug, price=price, old_price="100")
        await broker.publish(
            event.model_dump(mode="json"),
            exchange=topology.events_exchange,
            routing_key=event.routing_key,
            persist=True,
        )
        expected.add(webhook_id(rule_id, event.event_id))
    return expected


def delivered(receiver: WebhookReceiver, ok_since: int = 0) -> set[str]:
    return {item.headers["webhook-id"] for item in receiver.received[ok_since:]}


async def test_killed_mid_delivery_and_endpoint_down_then_back(
    settings: Settings, topology: Topology, broker: RabbitBroker, tmp_path: Path
) -> None:
    slow = WebhookReceiver()
    answered: set[str] = set()

    async def slow_handle(request: web.Request) -> web.Response:
        response = await WebhookReceiver.handle(slow, request)
        if slow.status < 300:
            await asyncio.sleep(0.3)  # deliveries are surely in flight when the service dies
            answered.add(request.headers["webhook-id"])
        return response

    slow.handle = slow_handle  # type: ignore[method-assign]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with running_receiver(slow) as receiver:
        service = alerts_process(settings, port, tmp_path)
        service.start()
        try:
            await wait_until(lambda: ready(url), timeout_s=60, what="alerts ready")
            client = await AlertsClient.new_account(url)
            rules = await watch_rules(client, receiver)
            expected = await publish_round(broker, topology, rules, "90")
            await receiver.wait_for(2)
            assert service.process is not None
            service.process.send_signal(signal.SIGKILL)
            service.process.wait(10)
            # While it is down: more events, and the endpoint starts failing.
            expected |= await publish_round(broker, topology, rules, "80")
            receiver.status = 503
            service.start()
            await wait_until(lambda: ready(url), timeout_s=60, what="alerts ready again")
            await receiver.wait_for(len(receiver.received) + 3, timeout_s=30)  # failing attempts
            receiver.status = 200
            await wait_until(
                lambda: _true(expected <= answered),
                timeout_s=60,
                what="every alert answered 2xx",
                every_s=0.3,
            )
            assert delivered(receiver) <= expected, (
                "only expected webhook-ids, duplicates are retries"
            )
            log = (
                await client.http.get("/api/v1/alerts/deliveries", params={"limit": 200})
            ).json()["items"]
            assert {item["status"] for item in log} <= {"sent", "failed", "lost", "sending"}
            await client.close()
        finally:
            service.stop()


async def _true(value: bool) -> bool:
    return value


async def test_nothing_is_sent_to_an_endpoint_once_it_is_disabled(
    settings: Settings, topology: Topology, broker: RabbitBroker, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gone = WebhookReceiver(status=410)
    async with running_receiver() as good, running_receiver(gone):
        service = alerts_process(settings, port, tmp_path)
        service.start()
        try:
            await wait_until(lambda: ready(url), timeout_s=60, what="alerts ready")
            client = await AlertsClient.new_account(url)
            await client.webhook(gone.url)
            rules = await watch_rules(client, good)
            expected = await publish_round(broker, topology, rules, "90")
            await wait_until(
                lambda: _true(expected <= delivered(good)),
                timeout_s=30,
                what="good endpoint served",
            )
            calls_when_disabled = len(gone.received)
            assert calls_when_disabled >= 1
            expected |= await publish_round(broker, topology, rules, "70")
            await wait_until(
                lambda: _true(expected <= delivered(good)), timeout_s=30, what="second round"
            )
            await asyncio.sleep(1.0)
            assert len(gone.received) <= RULES  # only attempts already under way when the 410 came
            late = len(gone.received)
            third = await publish_round(broker, topology, rules, "60")
            await wait_until(
                lambda: _true(third <= delivered(good)), timeout_s=30, what="third round"
            )
            await asyncio.sleep(0.5)
            assert len(gone.received) == late
            notice = [
                json.loads(item.body)
                for item in good.received
                if json.loads(item.body)["type"] == "endpoint.disabled"
            ]
            assert len(notice) == 1, "the owner is told once, on the other channel"
            await client.close()
        finally:
            service.stop()


async def test_rabbitmq_restarted_loses_no_alert(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    topology = Topology(settings.namespace)
    with private_rabbitmq() as rabbit:
        async with running_receiver() as receiver:
            service = alerts_process(settings, port, tmp_path, rabbitmq_url=rabbit.url)
            service.start()
            private = make_broker(settings.model_copy(update={"rabbitmq_url": rabbit.url}))
            try:
                await wait_until(lambda: ready(url), timeout_s=60, what="alerts ready")
                client = await AlertsClient.new_account(url)
                rules = await watch_rules(client, receiver)
                await private.connect()
                expected = await publish_round(private, topology, rules, "90")
                await private.stop()
                await asyncio.to_thread(rabbit.restart, 1.0)
                await wait_until(lambda: ready(url), timeout_s=90, what="alerts consuming again")
                private = make_broker(settings.model_copy(update={"rabbitmq_url": rabbit.url}))
                await private.connect()
                expected |= await publish_round(private, topology, rules, "80")
                await wait_until(
                    lambda: _true(expected <= delivered(receiver)), timeout_s=60, what="every alert"
                )
                assert delivered(receiver) <= expected
                await client.close()
            finally:
                service.stop()
                await delete_namespace_queues(private, topology)
                await private.stop()
