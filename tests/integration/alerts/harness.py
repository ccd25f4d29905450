"""The alerts service in the test's event loop on a free port, and a local webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from aiohttp import web

from fragmenty_alerts.main import AlertsService, build_alerts
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_shared.settings import Settings
from tests.support.private_servers import free_port


def alerts_settings(settings: Settings, **overrides: Any) -> AlertsSettings:
    values: dict[str, Any] = {
        "namespace": settings.namespace,
        "mongodb_database": settings.mongodb_database,
        "rabbitmq_url": settings.rabbitmq_url,
        "mongodb_url": settings.mongodb_url,
        "alerts_port": free_port(),
        "alerts_ssrf_allowlist": ["127.0.0.0/8"],
        "alerts_rules_refresh_s": 0.3,
        "alerts_delivery_poll_s": 0.2,
        "alerts_retry_base_s": 0.2,
        **overrides,
    }
    return AlertsSettings(**values)


@dataclass
class RunningAlerts:
    service: AlertsService
    server: uvicorn.Server
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def running_alerts(settings: AlertsSettings) -> AsyncIterator[RunningAlerts]:
    service = build_alerts(settings)
    config = uvicorn.Config(
        service.app, host="127.0.0.1", port=settings.alerts_port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not (server.started and service.consuming.is_set() and service.directory.loaded):
        if serving.done():
            serving.result()
            raise RuntimeError("alerts stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("alerts did not start")
        await asyncio.sleep(0.05)
    try:
        yield RunningAlerts(service, server, settings.alerts_port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 20)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class WebhookReceiver:
    """Records every POST; answers ``status`` (settable) to each."""

    port: int = field(default_factory=free_port)
    status: int = 200
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    retry_after: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body, time.time()))
        self.arrived.set()
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        return web.Response(
            status=self.status, text="ok" if self.status < 300 else "no", headers=headers
        )

    async def wait_for(self, count: int, timeout_s: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} webhooks did not arrive in {timeout_s} s ({len(self.received)} did)"
                )
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.2)
        return self.received


@contextlib.asynccontextmanager
async def running_receiver(
    receiver: WebhookReceiver | None = None,
) -> AsyncIterator[WebhookReceiver]:
    receiver = receiver or WebhookReceiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


class AlertsClient:
    """The REST API as one account uses it."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {key}"} if key else {}
        )

    @classmethod
    async def new_account(cls, base_url: str) -> AlertsClient:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            response = await http.post("/api/v1/accounts", json={"name": "test"})
            assert response.status_code == 201, response.text
            return cls(base_url, response.json()["api_key"])

    async def webhook(self, url: str) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/alerts/channels", json={"kind": "webhook", "url": url}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def rule(self, **spec: Any) -> dict[str, Any]:
        response = await self.http.post("/api/v1/alerts/rules", json=spec)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def close(self) -> None:
        await self.http.aclose()
