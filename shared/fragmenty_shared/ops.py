"""Operational endpoints every service serves: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers while the process runs; ``/readyz`` runs the service's readiness checks
(its broker and database connections) and answers 503 with the failing checks otherwise.
The api and notifier mount these routes in their own apps; the crawler and ingest serve them
on a small app of their own (:func:`serve_ops`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fragmenty_shared.http_server import EmbeddedServer, server_config
from fragmenty_shared.metrics import METRICS_CONTENT_TYPE, render
from fragmenty_shared.settings import Settings

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (or times out) when a dependency is not usable."""

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_S = 2.0


async def run_readiness_checks(checks: Mapping[str, ReadinessCheck]) -> dict[str, str]:
    """Each check's outcome: ``"ok"`` or a short reason. Checks run concurrently."""

    async def one(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT_S)
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # readiness reports any failure, it never raises
            return f"{type(exc).__name__}: {exc}"[:200]
        return "ok"

    names = list(checks)
    results = await asyncio.gather(*(one(checks[name]) for name in names))
    return dict(zip(names, results, strict=True))


def ops_routes(registry: CollectorRegistry, checks: Mapping[str, ReadinessCheck]) -> list[Route]:
    """The three routes, ready to add to any Starlette or FastAPI app."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        results = await run_readiness_checks(checks)
        ready = all(outcome == "ok" for outcome in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(render(registry), media_type=METRICS_CONTENT_TYPE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


async def serve_ops(
    registry: CollectorRegistry,
    checks: Mapping[str, ReadinessCheck],
    *,
    settings: Settings,
    port: int,
) -> None:
    """Serve the ops routes on ``settings.host:port`` until cancelled (for services that are not
    web apps themselves), with the shared HTTP server's limits."""
    app = Starlette(routes=ops_routes(registry, checks))
    config = server_config(app, settings, port=port, log_level="warning", lifespan="off")
    await EmbeddedServer(config).serve()
