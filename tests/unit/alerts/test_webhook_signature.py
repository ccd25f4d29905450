"""Webhook signatures verify with the standardwebhooks package (not with our own code)."""

import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from fragmenty_alerts.channels.webhook import new_secret, secret_key, sign
from fragmenty_alerts.ssrf import SsrfPolicy, UnsafeUrl


def test_signature_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    body = json.dumps({"type": "alert.fired", "data": {"x": 1}}).encode()
    import time

    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign((secret,), "msg_abc", timestamp, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "alert.fired", "data": {"x": 1}}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_during_a_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    import time

    timestamp = int(time.time())
    body = b'{"a":1}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign((old, new), "msg_1", timestamp, body),
    }
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_malformed_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        secret_key("abc")
    with pytest.raises(ValueError, match="24 to 64"):
        secret_key("whsec_AAAA")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.64.0.1/",
        "http://localhost:8080/",
    ],
)
async def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="refused"):
        await SsrfPolicy.of([]).check(url)


async def test_the_allowlist_lets_named_hosts_and_networks_through() -> None:
    await SsrfPolicy.of(["127.0.0.0/8"]).check("http://127.0.0.1:9/hook")
    await SsrfPolicy.of(["localhost"]).check("http://localhost:8080/")
    await SsrfPolicy.of([]).check("http://93.184.216.34/")
