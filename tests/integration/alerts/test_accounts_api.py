"""Accounts, owner isolation, per-account limits, SSRF refusal; Apprise and Atom deliveries."""

import asyncio
import json
import xml.etree.ElementTree as ET

from aiohttp import web

from fragmenty_shared.settings import Settings
from tests.support.private_servers import free_port
from tests.unit.notifier.factories import make_event

from .harness import AlertsClient, alerts_settings, running_alerts, running_receiver

ATOM = "{http://www.w3.org/2005/Atom}"


async def test_another_key_gets_404_not_the_data(settings: Settings) -> None:
    async with running_receiver() as receiver, running_alerts(alerts_settings(settings)) as alerts:
        alice = await AlertsClient.new_account(alerts.url)
        mallory = await AlertsClient.new_account(alerts.url)
        channel = await alice.webhook(receiver.url)
        rule = await alice.rule(slugs=["88800001234"], cooldown=0)
        await alerts.service.processor.process(make_event("88800001234"))
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
        [entry] = (await alice.http.get("/api/v1/alerts/deliveries")).json()["items"]

        for path in (
            f"/api/v1/alerts/rules/{rule['id']}",
            f"/api/v1/alerts/channels/{channel['id']}",
        ):
            assert (await mallory.http.get(path)).status_code == 404
            assert (await mallory.http.delete(path)).status_code == 404
        assert (
            await mallory.http.patch(f"/api/v1/alerts/rules/{rule['id']}", json={"paused": True})
        ).status_code == 404
        assert (
            await mallory.http.post(f"/api/v1/alerts/deliveries/{entry['id']}/retry")
        ).status_code == 404
        assert (await mallory.http.get("/api/v1/alerts/rules")).json() == []
        assert (await mallory.http.get("/api/v1/alerts/deliveries")).json()["items"] == []
        # A rule may not name another account's channel.
        response = await mallory.http.post(
            "/api/v1/alerts/rules", json={"channels": [channel["id"]]}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "channels"]
        # Alice still has everything.
        assert (await alice.http.get(f"/api/v1/alerts/rules/{rule['id']}")).status_code == 200
        anonymous = AlertsClient(alerts.url)
        assert (await anonymous.http.get("/api/v1/alerts/rules")).status_code == 401
        assert (
            await AlertsClient(alerts.url, "fgy_wrong").http.get("/api/v1/alerts/rules")
        ).status_code == 401
        # The owner can replay a delivery; it arrives again with the same webhook-id.
        replay = await alice.http.post(f"/api/v1/alerts/deliveries/{entry['id']}/retry")
        assert replay.status_code == 202
        received = await receiver.wait_for(2)
        assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
        for client in (alice, mallory, anonymous):
            await client.close()


async def test_limits_per_account_answer_with_the_field(settings: Settings) -> None:
    limited = alerts_settings(
        settings, alerts_max_rules_per_account=2, alerts_max_channels_per_account=1
    )
    async with running_receiver() as receiver, running_alerts(limited) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        second = await client.http.post(
            "/api/v1/alerts/channels", json={"kind": "webhook", "url": receiver.url}
        )
        assert second.status_code == 409
        assert second.json()["detail"]["field"] == "channels"
        await client.rule(pattern="888*")
        await client.rule(pattern="777*")
        third = await client.http.post("/api/v1/alerts/rules", json={"pattern": "999*"})
        assert third.status_code == 409
        assert "at most 2 rules" in third.json()["detail"]["msg"]
        bad = await client.http.post("/api/v1/alerts/rules", json={"below_price_ton": "cheap"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "below_price_ton"]
        await client.close()


async def test_deliveries_per_minute_beyond_the_limit_wait_for_the_next_minute(
    settings: Settings,
) -> None:
    async with (
        running_receiver() as receiver,
        running_alerts(alerts_settings(settings, alerts_max_deliveries_per_minute=2)) as alerts,
    ):
        client = await AlertsClient.new_account(alerts.url)
        await client.webhook(receiver.url)
        await client.rule(pattern="888*", cooldown=0)
        for n in range(4):
            await alerts.service.processor.process(make_event(f"8880000{n:04d}"))
        await receiver.wait_for(2)
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 2
        waiting = await alerts.service.store.outbox.find({}).to_list(None)
        assert len(waiting) == 2
        assert all(item["not_before"].second == 0 for item in waiting)
        await client.close()


async def test_internal_urls_are_refused_unless_allowlisted(settings: Settings) -> None:
    async with running_alerts(alerts_settings(settings, alerts_ssrf_allowlist=[])) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        for url in (
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/hook",
            "http://localhost:8080/",
        ):
            response = await client.http.post(
                "/api/v1/alerts/channels", json={"kind": "webhook", "url": url}
            )
            assert response.status_code == 422, url
            assert response.json()["detail"][0]["loc"] == ["body", "url"]
            assert "refused" in response.json()["detail"][0]["msg"]
        apprise = await client.http.post(
            "/api/v1/alerts/channels", json={"kind": "apprise", "url": "json://127.0.0.1:9/x"}
        )
        assert apprise.status_code == 422
        assert (await client.http.get("/api/v1/alerts/channels")).json() == []
        await client.close()


async def test_an_apprise_json_url_gets_the_alert_and_the_feed_lists_it(settings: Settings) -> None:
    got: list[dict[str, object]] = []
    arrived = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        got.append(json.loads(await request.read()))
        arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/notify", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with running_alerts(alerts_settings(settings)) as alerts:
            client = await AlertsClient.new_account(alerts.url)
            response = await client.http.post(
                "/api/v1/alerts/channels",
                json={"kind": "apprise", "url": f"json://127.0.0.1:{port}/notify"},
            )
            assert response.status_code == 201, response.text
            rule = await client.rule(name="cheap numbers", below_price_ton="100", cooldown=0)
            event = make_event("88800001234", price="90", old_price="120", change_pct=-25.0)
            assert await alerts.service.processor.process(event) == 1
            await asyncio.wait_for(arrived.wait(), 15)
            assert "+88800001234" in str(got[0]["message"])
            assert "cheap numbers" in str(got[0]["title"])

            feed = await client.http.get(
                rule["feed_url"].replace(f"http://127.0.0.1:{alerts.port}", "")
            )
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("application/atom+xml")
            root = ET.fromstring(feed.content)
            [entry] = root.findall(f"{ATOM}entry")
            assert "+88800001234" in (entry.findtext(f"{ATOM}title") or "")
            wrong = await client.http.get(
                f"/api/v1/alerts/rules/{rule['id']}/feed.atom", params={"token": "nope"}
            )
            assert wrong.status_code == 404
            await client.close()
    finally:
        await runner.cleanup()
