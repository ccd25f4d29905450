"""``fragmenty-demo-receiver``: a webhook endpoint for ``make demo`` that prints what it gets.

Point a webhook channel at ``http://127.0.0.1:8099/hook`` and every alert shows up in the demo's
log: its ``webhook-id``, type and text. Given the channel's secret (``--secret whsec_...`` or
``FRAGMENTY_DEMO_WEBHOOK_SECRET``), it also checks the signature the way a real receiver should
(Standard Webhooks: HMAC-SHA256 of ``id.timestamp.body``) and says whether it holds. It always
answers 204, so the demo's deliveries succeed; it is a demo tool, not a production receiver.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT_PORT = 8099


def signature_holds(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether one of the ``webhook-signature`` entries signs ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode()
    expected = base64.b64encode(hmac.new(key, signed + body, hashlib.sha256).digest()).decode()
    offered = [
        part.split(",", 1)[1]
        for part in headers.get("webhook-signature", "").split()
        if part.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def describe(headers: dict[str, str], body: bytes, secret: str | None) -> str:
    """One block of text per webhook, as the demo's log shows it."""
    try:
        payload = json.loads(body)
        kind = str(payload.get("type", "?"))
        text = str((payload.get("data") or {}).get("text") or payload.get("data") or "")
    except (ValueError, AttributeError):
        kind, text = "not JSON", body[:200].decode(errors="replace")
    if secret is None:
        verdict = "signature not checked (no --secret)"
    else:
        verdict = "signature OK" if signature_holds(secret, headers, body) else "BAD SIGNATURE"
    first = f"webhook {headers.get('webhook-id', '(no webhook-id)')} {kind}: {verdict}"
    return "\n".join([first, *(f"  {line}" for line in text.splitlines())])


def build_app(secret: str | None, out: Callable[[str], None]) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        out(describe({k.lower(): v for k, v in request.headers.items()}, body, secret))
        return Response(status_code=204)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fragmenty-demo-receiver", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("FRAGMENTY_DEMO_RECEIVER_PORT", DEFAULT_PORT)),
    )
    parser.add_argument("--secret", default=os.environ.get("FRAGMENTY_DEMO_WEBHOOK_SECRET"))
    args = parser.parse_args(argv)
    print(f"demo receiver: POST webhooks to http://127.0.0.1:{args.port}/hook", file=sys.stderr)
    app = build_app(args.secret, lambda text: print(text, flush=True))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
