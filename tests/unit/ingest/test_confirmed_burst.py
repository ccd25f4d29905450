"""The frames of a burst, and the aiormq members a burst relies on (see confirmed_burst)."""

from __future__ import annotations

import inspect
import re

import aiormq
import pytest
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from fragmenty_ingest.confirmed_burst import Publication, burst_frames


def publication(body: bytes, key: str = "number.listed") -> Publication:
    return Publication("ex", key, spec.Basic.Properties(message_id=key), body)


def test_each_message_is_method_header_then_body_frames_in_order() -> None:
    frames = burst_frames([publication(b"a" * 25), publication(b"", "x"), publication(b"b")], 10)
    kinds = [type(frame) for frame in frames]
    assert kinds == [
        spec.Basic.Publish, ContentHeader, ContentBody, ContentBody, ContentBody,
        spec.Basic.Publish, ContentHeader,
        spec.Basic.Publish, ContentHeader, ContentBody,
    ]  # fmt: skip
    bodies = [frame.value for frame in frames if isinstance(frame, ContentBody)]
    assert bodies == [b"a" * 10, b"a" * 10, b"a" * 5, b"b"]
    headers = [frame for frame in frames if isinstance(frame, ContentHeader)]
    assert [header.body_size for header in headers] == [25, 0, 1]
    methods = [frame for frame in frames if isinstance(frame, spec.Basic.Publish)]
    assert [(m.exchange, m.routing_key, m.mandatory) for m in methods] == [
        ("ex", "number.listed", False),
        ("ex", "x", False),
        ("ex", "number.listed", False),
    ]


def test_a_routing_key_amqp_cannot_carry_is_refused_before_anything_is_queued() -> None:
    with pytest.raises(ValueError, match="routing key too long"):
        burst_frames([publication(b"{}", "k" * 256)], 1000)


def test_the_frames_marshal_as_one_buffer() -> None:
    frame = ChannelFrame.marshall(channel_number=3, frames=burst_frames([publication(b"{}")], 100))
    assert not frame.should_close
    assert frame.drain_future is None
    assert frame.payload.endswith(b"{}\xce")  # the body frame, then AMQP's frame-end octet


def test_aiormq_still_has_the_channel_members_a_burst_uses() -> None:
    # Set in Channel.__init__ (instance attributes) or defined on the class.
    init_source = inspect.getsource(aiormq.Channel.__init__)
    for attribute in (
        "confirmations",
        "delivery_tag",
        "number",
        "max_content_size",
        "write_queue",
        "publisher_confirms",
    ):
        assert re.search(rf"self\.{attribute}\b(: [^=]+)? = ", init_source), attribute
    assert isinstance(inspect.getattr_static(aiormq.Channel, "lock"), property)
    assert callable(aiormq.Channel.create_future)
