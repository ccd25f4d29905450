"""The demo's webhook receiver: it prints each alert and checks signatures made by the
``standardwebhooks`` package (not by the project's own signer)."""

import base64
import json
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient

from fragmenty_alerts.demo_receiver import build_app, describe

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps(
    {"type": "alert.fired", "data": {"text": "+888 0123 4567: price changed\n248 TON -> 496 TON"}}
).encode()


def signed_headers(body: bytes, message_id: str = "msg_rule1_ev1") -> dict[str, str]:
    timestamp = datetime.now(UTC)
    signature = Webhook(SECRET).sign(message_id, timestamp, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def test_a_signed_alert_is_printed_with_its_text_and_a_good_signature() -> None:
    text = describe(signed_headers(BODY), BODY, SECRET)
    assert text.splitlines()[0] == "webhook msg_rule1_ev1 alert.fired: signature OK"
    assert "  248 TON -> 496 TON" in text.splitlines()


def test_a_tampered_body_or_another_secret_is_called_a_bad_signature() -> None:
    headers = signed_headers(BODY)
    assert "BAD SIGNATURE" in describe(headers, BODY.replace(b"496", b"996"), SECRET)
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    assert "BAD SIGNATURE" in describe(headers, BODY, other)
    assert "not checked" in describe(headers, BODY, None)


def test_the_endpoint_answers_204_and_prints_each_webhook() -> None:
    printed: list[str] = []
    with TestClient(build_app(SECRET, printed.append)) as client:
        response = client.post("/hook", content=BODY, headers=signed_headers(BODY))
        assert response.status_code == 204
        assert client.post("/hook", content=b"<html>", headers={}).status_code == 204
    assert printed[0].startswith("webhook msg_rule1_ev1 alert.fired: signature OK")
    assert printed[1].startswith("webhook (no webhook-id) not JSON: BAD SIGNATURE")
