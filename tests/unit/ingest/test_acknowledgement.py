"""How a finished batch is acknowledged: one multiple ack per channel, poison handled first.

The broker side is a fake that records the frames ingest would send, so the order of acks
and nacks, and which delivery tags they name, can be checked exactly. (The real broker is in
tests/integration/ingest: poison to the dead-letter queue, and the crash tests.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from fragmenty_ingest.dead_letters import Origin
from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.processor import Delivery, IngestProcessor
from fragmenty_ingest.store import BatchDocuments
from fragmenty_ingest.validation import read_listings_message
from fragmenty_shared.contracts import PriceEvent, pages_of

from .factory import observed


class RecordingChannel:
    """Records the acknowledgement frames sent on it, in order."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, int, bool]] = []

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.frames.append(("ack", delivery_tag, multiple))

    async def basic_nack(
        self, delivery_tag: int, multiple: bool = False, requeue: bool = True, wait: bool = True
    ) -> None:
        self.frames.append(("nack", delivery_tag, requeue))


class FakePublisher:
    def __init__(self, *, dead_letter_fails: bool = False) -> None:
        self.dead_letter_fails = dead_letter_fails
        self.dead_lettered: list[bytes] = []
        self.published: list[PriceEvent] = []

    async def publish_events(self, events: Sequence[PriceEvent]) -> None:
        self.published.extend(events)

    async def dead_letter(self, body: bytes, reason: str, headers: dict[str, str | int]) -> None:
        if self.dead_letter_fails:
            raise ConnectionError("the broker is away")
        self.dead_lettered.append(body)


class FakeStore:
    """Takes every write at once (durability is the integration tests' business)."""

    def __init__(self) -> None:
        self.batches = 0

    async def reserve_positions(self, count: int) -> int:
        self.reserved = getattr(self, "reserved", 0) + count
        return self.reserved

    async def write_outbox(self, batch: BatchDocuments) -> list[str]:
        return [document["_id"] for document in batch.outbox]

    async def apply(self, plan: WritePlan, batch: BatchDocuments) -> None:
        self.batches += 1

    async def delete_outbox(self, document_ids: Sequence[str]) -> None:
        pass


def processor(publisher: FakePublisher) -> IngestProcessor:
    return IngestProcessor(
        FakeStore(),  # type: ignore[arg-type]
        publisher,  # type: ignore[arg-type]
        IngestMetrics(),
        max_backoff_s=0.1,
    )


def delivery(channel: RecordingChannel, tag: int, body: bytes) -> Delivery:
    read = read_listings_message(body)
    return Delivery(
        read.kind,
        read.messages,
        read.poison,
        channel,  # type: ignore[arg-type]
        tag,
        0.0,
        origin=Origin("fragmenty.listings", "number.observed"),
    )


def good(channel: RecordingChannel, tag: int, slug: str) -> Delivery:
    return delivery(channel, tag, observed(slug).model_dump_json().encode())


def poison(channel: RecordingChannel, tag: int) -> Delivery:
    return delivery(channel, tag, b"{not json")


def page_with_a_bad_row(channel: RecordingChannel, tag: int, *slugs: str) -> Delivery:
    [page] = pages_of([observed(slug) for slug in slugs])
    document = json.loads(page.model_dump_json())
    document["rows"][1]["price_ton"] = "-1"
    return delivery(channel, tag, json.dumps(document).encode())


async def run_batches(ingest: IngestProcessor, *batches: list[Delivery]) -> None:
    for batch in batches:
        await ingest.process(batch)
    await ingest.drain()


async def test_a_batch_is_acknowledged_once_up_to_its_last_delivery() -> None:
    channel, publisher = RecordingChannel(), FakePublisher()
    ingest = processor(publisher)
    await run_batches(
        ingest,
        [good(channel, 1, "88800000001"), poison(channel, 2), good(channel, 3, "88800000003")],
    )
    assert channel.frames == [("ack", 3, True)]
    assert publisher.dead_lettered == [b"{not json"]
    assert len(publisher.published) == 2  # two listings, two `listed` events


async def test_batches_are_acknowledged_in_order() -> None:
    channel = RecordingChannel()
    ingest = processor(FakePublisher())
    await run_batches(
        ingest,
        [good(channel, 1, "88800000001"), good(channel, 2, "88800000002")],
        [good(channel, 3, "88800000003")],
    )
    assert channel.frames == [("ack", 2, True), ("ack", 3, True)]


async def test_poison_that_cannot_be_dead_lettered_goes_back_and_is_left_out_of_the_ack() -> None:
    channel = RecordingChannel()
    ingest = processor(FakePublisher(dead_letter_fails=True))
    # The poison is the batch's last delivery: acking its tag after the nack would make
    # RabbitMQ close the channel (unknown delivery tag), so the ack stops at tag 1.
    await run_batches(ingest, [good(channel, 1, "88800000001"), poison(channel, 2)])
    assert channel.frames == [("nack", 2, True), ("ack", 1, True)]


async def test_a_batch_of_nothing_but_returned_poison_sends_no_ack() -> None:
    channel = RecordingChannel()
    await run_batches(processor(FakePublisher(dead_letter_fails=True)), [poison(channel, 7)])
    assert channel.frames == [("nack", 7, True)]


async def test_each_channel_gets_its_own_ack() -> None:
    # After a reconnect a batch can hold deliveries of the old channel and of the new one,
    # whose tags start again at 1.
    old, new = RecordingChannel(), RecordingChannel()
    await run_batches(
        processor(FakePublisher()),
        [good(old, 41, "88800000001"), good(old, 42, "88800000002"), good(new, 1, "88800000003")],
    )
    assert old.frames == [("ack", 42, True)]
    assert new.frames == [("ack", 1, True)]


async def test_a_page_with_a_bad_row_is_ingested_and_acknowledged_after_its_row_is_dead_lettered() -> (
    None
):
    channel, publisher = RecordingChannel(), FakePublisher()
    await run_batches(
        processor(publisher),
        [page_with_a_bad_row(channel, 1, "88800000001", "88800000002", "88800000003")],
    )
    assert channel.frames == [("ack", 1, True)]
    [dead] = publisher.dead_lettered
    assert [row["slug"] for row in json.loads(dead)["rows"]] == ["88800000002"]
    assert sorted(event.slug for event in publisher.published) == ["88800000001", "88800000003"]


async def test_a_page_whose_bad_row_cannot_be_dead_lettered_goes_back_whole() -> None:
    channel = RecordingChannel()
    await run_batches(
        processor(FakePublisher(dead_letter_fails=True)),
        [good(channel, 1, "88800000001"), page_with_a_bad_row(channel, 2, "88800000002", "bad1")],
    )
    # Its good rows are durable already: the redelivery finds them unchanged.
    assert channel.frames == [("nack", 2, True), ("ack", 1, True)]


class GatedStore(FakeStore):
    """Holds every batch's writes until the test opens the gate (or fails them)."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.error = error

    async def apply(self, plan: WritePlan, batch: BatchDocuments) -> None:
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        await super().apply(plan, batch)


async def test_the_next_batch_is_decided_while_the_last_is_written_and_nothing_is_acked_early() -> (
    None
):
    channel, publisher, store = RecordingChannel(), FakePublisher(), GatedStore()
    ingest = IngestProcessor(store, publisher, IngestMetrics(), max_backoff_s=0.1)  # type: ignore[arg-type]
    # Returns with the writes still held: the collector can gather and decide the next batch.
    await asyncio.wait_for(ingest.process([good(channel, 1, "88800000001")]), 1.0)
    # The first batch's writes are held: the second is decided (its listing is known in
    # memory) and waits for them, and neither is acknowledged nor published.
    second = asyncio.create_task(ingest.process([good(channel, 2, "88800000002")]))
    await asyncio.sleep(0.05)
    assert ingest.known_listings == 2
    assert not second.done()
    assert (channel.frames, publisher.published, store.batches) == ([], [], 0)
    store.gate.set()
    await second
    await ingest.drain()
    assert channel.frames == [("ack", 1, True), ("ack", 2, True)]
    assert store.batches == 2


async def test_writes_that_fail_for_another_reason_than_the_database_stop_ingest() -> None:
    channel, store = RecordingChannel(), GatedStore(RuntimeError("a bug"))
    ingest = IngestProcessor(store, FakePublisher(), IngestMetrics(), max_backoff_s=0.1)  # type: ignore[arg-type]
    await ingest.process([good(channel, 1, "88800000001")])
    store.gate.set()
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(ingest.watch(), 1.0)  # no next batch is needed to learn it
    assert channel.frames == []  # never acknowledged: the broker redelivers it
