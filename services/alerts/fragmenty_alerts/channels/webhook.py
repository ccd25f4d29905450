"""Standard Webhooks: signed POSTs (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

The signature is ``v1,`` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), where the key is
the base64 after ``whsec_`` in the endpoint's secret; during a rotation every current secret
signs, space-separated. Only 2xx counts as delivered; 410 means "gone, stop sending".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from email.utils import parsedate_to_datetime

import httpx

from fragmenty_alerts.channels import Channel, Outgoing, SendResult
from fragmenty_alerts.ssrf import SsrfPolicy, UnsafeUrl

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's prefix, not a secret
USER_AGENT = "fragmenty-alerts/0.1 (Standard Webhooks)"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; raises ``ValueError`` for a malformed one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return key


def sign(secrets_in_use: tuple[str, ...], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()
        for secret in secrets_in_use
    )


def retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient, ssrf: SsrfPolicy) -> None:
        self._client = client
        self._ssrf = ssrf

    async def send(self, channel: Channel, message: Outgoing) -> SendResult:
        url = str(channel.url)
        try:
            await self._ssrf.check(url)
        except UnsafeUrl as error:
            return SendResult(False, error=str(error))
        timestamp = int(time.time())
        body = json.dumps(
            {
                "type": message.type,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
                "data": message.data,
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(channel.secrets, message.webhook_id, timestamp, body),
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return SendResult(False, error=f"{type(error).__name__}: {error}"[:300])
        if 200 <= response.status_code < 300:
            return SendResult(True, response.status_code)
        return SendResult(
            False,
            response.status_code,
            error=response.text[:300] or response.reason_phrase,
            retry_after_s=retry_after_s(response),
            gone=response.status_code == 410,
        )
