"""Bursts of confirmed publishes on the real RabbitMQ (fragmenty_ingest.confirmed_burst)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiormq
import pytest
from pamqp import commands as spec

from fragmenty_ingest.confirmed_burst import Publication, publish_burst
from fragmenty_shared.settings import Settings


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[aiormq.Channel]:
    connection = await aiormq.connect(settings.rabbitmq_url)
    try:
        opened = await connection.channel(publisher_confirms=True)
        assert isinstance(opened, aiormq.Channel)
        yield opened
    finally:
        await connection.close()


async def declared_queue(channel: aiormq.Channel, name: str) -> str:
    await channel.queue_declare(name, exclusive=True)
    return name


def to_queue(queue: str, body: bytes, exchange: str = "") -> Publication:
    return Publication(exchange, queue, spec.Basic.Properties(delivery_mode=2), body)


async def received(channel: aiormq.Channel, queue: str, count: int) -> list[bytes]:
    bodies: list[bytes] = []
    for _ in range(count):
        message = await channel.basic_get(queue, no_ack=True)
        assert message.body is not None, f"only {len(bodies)} of {count} messages arrived"
        bodies.append(message.body)
    return bodies


async def test_every_message_of_a_burst_is_confirmed_and_arrives_in_order(
    channel: aiormq.Channel, test_id: str
) -> None:
    queue = await declared_queue(channel, f"burst-{test_id}")
    # One body larger than a frame, so it travels as several body frames.
    large = bytes(range(256)) * (channel.max_content_size // 256 + 3)
    bodies = [f"event {n}".encode() for n in range(300)] + [large, b""]
    confirmations = await publish_burst(channel, [to_queue(queue, body) for body in bodies])
    acks = await asyncio.wait_for(asyncio.gather(*confirmations), 10)
    assert all(isinstance(ack, spec.Basic.Ack) for ack in acks)
    assert await received(channel, queue, len(bodies)) == bodies


async def test_bursts_and_single_publishes_share_the_channels_delivery_tags(
    channel: aiormq.Channel, test_id: str
) -> None:
    queue = await declared_queue(channel, f"burst-{test_id}")
    first = await publish_burst(channel, [to_queue(queue, b"a"), to_queue(queue, b"b")])
    single = await channel.basic_publish(b"c", routing_key=queue)
    second = await publish_burst(channel, [to_queue(queue, b"d")])
    await asyncio.wait_for(asyncio.gather(*first, *second), 10)
    assert isinstance(single, spec.Basic.Ack)
    assert channel.delivery_tag == 4
    assert not channel.confirmations
    assert await received(channel, queue, 4) == [b"a", b"b", b"c", b"d"]


async def test_a_burst_the_broker_refuses_fails_every_confirmation(
    channel: aiormq.Channel, test_id: str
) -> None:
    # Publishing to an exchange that does not exist makes RabbitMQ close the channel (404).
    publications = [to_queue("q", b"x", exchange=f"missing-{test_id}") for _ in range(50)]
    confirmations = await publish_burst(channel, publications)
    results = await asyncio.wait_for(asyncio.gather(*confirmations, return_exceptions=True), 10)
    assert all(isinstance(result, Exception) for result in results), results
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await publish_burst(channel, publications)


async def test_a_burst_on_a_channel_without_confirms_is_refused(settings: Settings) -> None:
    connection = await aiormq.connect(settings.rabbitmq_url)
    try:
        plain = await connection.channel(publisher_confirms=False)
        assert isinstance(plain, aiormq.Channel)
        with pytest.raises(ValueError, match="publisher confirms"):
            await publish_burst(plain, [to_queue("q", b"x")])
    finally:
        await connection.close()
