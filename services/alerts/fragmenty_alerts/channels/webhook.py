"""Standard Webhooks: signed POSTs (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

The signature is ``v1,`` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), where the key is
the base64 after ``whsec_`` in the endpoint's secret; during a rotation every current secret
signs, space-separated. Only 2xx counts as delivered; 410 means "gone, stop sending".

Every webhook goes through one aiohttp session, whose connection pool is shared by all endpoints
(connections are kept alive per host). It is aiohttp rather than httpx because of what a request
costs: profiled under benchmarks/alerts.py (220 webhooks/s), httpx's pool spent most of the
service's CPU choosing connections (every request walks every pooled connection and queued
request, asking each whether it expired), so the service could not keep up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from email.utils import parsedate_to_datetime

import aiohttp

from fragmenty_alerts.channels import Channel, Outgoing, SendResult
from fragmenty_alerts.ssrf import SsrfPolicy, UnsafeUrl

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's prefix, not a secret
USER_AGENT = "fragmenty-alerts/0.1 (Standard Webhooks)"
MAX_ANSWER_READ = 64 * 1024


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


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now."""
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
    """Signed POSTs over one shared connection pool (made on first use, in the running loop)."""

    def __init__(self, ssrf: SsrfPolicy, *, timeout_s: float, connections: int) -> None:
        self._ssrf = ssrf
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=self._timeout,
                headers={"user-agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

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
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(channel.secrets, message.webhook_id, timestamp, body),
        }
        try:
            # Redirects are not followed: one could point anywhere, the SSRF check included.
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                # Read (a little of) the answer, so that the connection can be used again.
                answer = await response.content.read(MAX_ANSWER_READ)
                if 200 <= response.status < 300:
                    return SendResult(True, response.status)
                return SendResult(
                    False,
                    response.status,
                    error=answer[:300].decode(errors="replace") or response.reason,
                    retry_after_s=retry_after_s(response.headers.get("retry-after")),
                    gone=response.status == 410,
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            return SendResult(False, error=f"{type(error).__name__}: {error}"[:300])
