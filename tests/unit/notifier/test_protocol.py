"""Client frames are parsed strictly; server frames are compact JSON."""

import json

import pytest

from fragmenty_notifier.envelope import Envelope, published_at_from_headers
from fragmenty_notifier.protocol import (
    Ping,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    error_frame,
    parse_command,
)
from fragmenty_shared.contracts import PriceEvent

from .factories import make_event


def test_the_three_actions_parse() -> None:
    subscribe = parse_command('{"action":"subscribe","id":"s1","filter":{"assets":["number"]}}')
    assert isinstance(subscribe, Subscribe)
    assert subscribe.id == "s1"
    assert isinstance(parse_command('{"action":"unsubscribe","id":"s1"}'), Unsubscribe)
    assert isinstance(parse_command('{"action":"ping"}'), Ping)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"action": "dance"}', "action"),
        ('{"action": "subscribe"}', "id"),
        ('{"action": "subscribe", "id": "s1", "filter": {"assets": "number"}}', "assets"),
        ('{"action": "ping", "extra": 1}', "extra"),
        ('{"action": "subscribe", "id": "s1", "batch_ms": 5}', "batch_ms is 0"),
        ('{"action": "subscribe", "id": "s1", "batch_ms": 60000}', "batch_ms"),
    ],
)
def test_malformed_frames_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        parse_command(text)


def test_an_error_about_a_subscription_names_it() -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_command('{"action": "subscribe", "id": "s9", "filter": {"types": ["x"]}}')
    assert raised.value.subscription_id == "s9"
    assert json.loads(error_frame("bad", "s9")) == {"type": "error", "message": "bad", "id": "s9"}


def test_an_event_frame_carries_the_event_exactly() -> None:
    event = make_event(price="123.000000001", change_pct=23.000000001)
    frame = json.loads(Envelope.wrap(event).frame_for('s"1').text)
    assert frame["type"] == "event"
    assert frame["subscription"] == 's"1'
    assert PriceEvent.model_validate(frame["event"]) == event
    assert frame["event"]["new"]["price_ton"] == "123.000000001"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"x-fragmenty-published-at": "1764000000.25"}, 1764000000.25),
        ({"x-fragmenty-published-at": 1764000000.5}, 1764000000.5),
        ({"x-fragmenty-published-at": b"1764000000"}, 1764000000.0),
        ({"x-fragmenty-published-at": "soon"}, None),
        ({"x-fragmenty-published-at": True}, None),
        ({"x-fragmenty-published-at": -5}, None),
    ],
)
def test_the_publish_time_header_is_read_leniently(headers, expected) -> None:
    assert published_at_from_headers(headers) == expected
