"""Looking at, replaying and dropping the messages in ``ingest.listings.dlq``.

AMQP cannot peek: every operation takes the messages waiting when it starts, one ``basic.get``
at a time, unacknowledged, and puts back what it does not replay or drop with one ``basic.nack``
(requeue) per message, in the order they came, when it is done. RabbitMQ 3.10's quorum queue
puts returned messages behind those waiting, in the order they were returned, so a pass that
reads up to its marker keeps the queue's order, and one stopped by ``max_held`` leaves it
rotated (what it held last). (Messages returned by a closed channel, or by one ``multiple``
nack, come back in no particular order: a command that is killed loses nothing, but may leave
the queue reordered.)

A replayed message is published with publisher confirms (and ``mandatory``, so one that no
queue takes is an error, not a silent loss), and acknowledged only once confirmed: after a
crash in between it is still in the dead-letter queue and may be replayed twice, which ingest
takes as the same observation again (no change, nothing written, no event).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue
from yarl import URL

from fragmenty_ingest.dead_letters import DeadLetter, matches, read_dead_letter, replay_headers
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology

CONNECT_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 15.0
# At most this many messages held (unacknowledged, in memory, bodies included) by one pass, to be
# put back when it ends: a pass that reaches it stops reading there.
DEFAULT_MAX_HELD = 10_000
# Header of the marker that ends a pass (see DeadLetterQueue._sweep); never replayed or listed.
SWEEP_MARKER_HEADER = "x-fragmenty-dead-letters-sweep"


class DeadLetterQueueError(Exception):
    """What the operator is told, in one line (no traceback)."""


# Called with each replayed message between its confirmed publish and its acknowledgement (tests
# stop a replay there, as a crash would).
OnPublished = Callable[[DeadLetter], Awaitable[None]]


@dataclass
class Sweep:
    """What one pass over the queue saw (in queue order) and what it replayed or dropped."""

    seen: list[DeadLetter] = field(default_factory=list)
    taken: list[DeadLetter] = field(default_factory=list)
    # Messages waiting when the pass started (the broker's count, which may lag by a few).
    waiting_at_start: int = 0
    # The pass stopped at ``max_held`` messages held, before the end of the queue.
    stopped_early: bool = False

    @property
    def left(self) -> int:
        return len(self.seen) - len(self.taken)


@contextlib.asynccontextmanager
async def open_dead_letter_queue(settings: Settings) -> AsyncIterator[DeadLetterQueue]:
    """The namespace's dead-letter queue on a connection of its own (closed on the way out)."""
    topology = Topology(settings.namespace)
    url = URL(settings.rabbitmq_url)
    try:
        connection = await aio_pika.connect(settings.rabbitmq_url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as error:
        # The host and port only: the URL may hold a password.
        raise DeadLetterQueueError(
            f"RabbitMQ at {url.host}:{url.port} is not reachable ({type(error).__name__}: {error})"
        ) from None
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        name = topology.dead_letter_queue_name
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise DeadLetterQueueError(
                f"queue {name} does not exist on {url.host}:{url.port} (namespace "
                f"{settings.namespace!r}): ingest declares it when it first starts"
            ) from None
        yield DeadLetterQueue(channel, queue, topology)
    finally:
        await connection.close()


class DeadLetterQueue:
    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, topology: Topology) -> None:
        self._channel = channel
        self._queue = queue
        self._topology = topology
        self._exchanges: dict[str, AbstractExchange] = {}

    @property
    def name(self) -> str:
        return self._queue.name

    async def look(self, *, max_held: int = DEFAULT_MAX_HELD) -> Sweep:
        """Read the waiting messages (up to ``max_held``) and put each back."""
        return await self._sweep(lambda _: False, self._nothing, "looked at", max_held=max_held)

    async def replay(
        self,
        *,
        reason: str | None,
        limit: int | None,
        max_replays: int,
        max_held: int = DEFAULT_MAX_HELD,
        on_published: OnPublished | None = None,
    ) -> Sweep:
        """Republish the messages of ``reason`` (any: None) where they came from, up to
        ``limit``, except those replayed ``max_replays`` times already."""

        async def republish(letter: DeadLetter, message: AbstractIncomingMessage) -> None:
            exchange = await self._exchange(letter.origin.exchange)
            try:
                await exchange.publish(
                    aio_pika.Message(
                        message.body,
                        headers=replay_headers(message.headers),
                        content_type=message.content_type,
                        message_id=message.message_id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=letter.origin.routing_key,
                    mandatory=True,
                    timeout=PUBLISH_TIMEOUT_S,
                )
            except aiormq.exceptions.DeliveryError:  # returned: no queue is bound for it
                raise DeadLetterQueueError(
                    f"nothing takes messages sent to {exchange.name!r} as "
                    f"{letter.origin.routing_key!r}: the replay stopped, the message stays in "
                    f"{self.name}"
                ) from None
            except TimeoutError:
                # Not acknowledged, so still in the queue; it may have gone out all the same
                # (a late confirm), which ingest takes as the same observation again.
                raise DeadLetterQueueError(
                    f"RabbitMQ did not confirm a replay to {exchange.name!r} within "
                    f"{PUBLISH_TIMEOUT_S:g} s: the replay stopped, the message stays in "
                    f"{self.name} (and may have gone out too)"
                ) from None
            if on_published is not None:
                await on_published(letter)

        return await self._sweep(
            lambda letter: matches(letter, reason) and letter.origin.replays < max_replays,
            republish,
            "replayed",
            limit,
            max_held,
        )

    async def purge(self, *, reason: str, max_held: int = DEFAULT_MAX_HELD) -> Sweep:
        """Drop the messages of ``reason``."""
        return await self._sweep(
            lambda letter: matches(letter, reason), self._nothing, "purged", max_held=max_held
        )

    async def _sweep(
        self,
        take: Callable[[DeadLetter], bool],
        handle: Callable[[DeadLetter, AbstractIncomingMessage], Awaitable[None]],
        verb: str,
        limit: int | None = None,
        max_held: int = DEFAULT_MAX_HELD,
    ) -> Sweep:
        """One pass in queue order: ``handle`` the messages ``take`` picks (up to ``limit``) and
        acknowledge each once handled; put the others back. The pass stops once it holds
        ``max_held`` to put back (they wait in memory until then), leaving its marker behind
        for a later pass to drop. A ``handle`` that fails says how many were ``verb`` before.

        The pass ends at a marker it puts at the tail first: a replayed message that is
        dead-lettered again while the pass runs comes after it, and is not replayed again in
        the same pass. (The queue's message count cannot say where to stop: a quorum queue's
        declare-ok leaves out messages just put back or just dead-lettered, for seconds.)
        """
        marker = uuid.uuid4().hex
        waiting = (await self._queue.declare()).message_count or 0
        try:
            await self._channel.default_exchange.publish(
                aio_pika.Message(b"", headers={SWEEP_MARKER_HEADER: marker}),
                routing_key=self._queue.name,
                timeout=PUBLISH_TIMEOUT_S,
            )
        except TimeoutError:
            raise DeadLetterQueueError(
                f"RabbitMQ did not confirm a publish to {self.name} within "
                f"{PUBLISH_TIMEOUT_S:g} s: nothing was {verb}"
            ) from None
        sweep = Sweep(waiting_at_start=waiting)
        put_back: list[AbstractIncomingMessage] = []
        try:
            while (message := await self._queue.get(no_ack=False, fail=False)) is not None:
                if SWEEP_MARKER_HEADER in message.headers:
                    # Ours ends the pass. Another's was left by a pass that stopped halfway
                    # (or runs beside this one, which then stops at an empty queue).
                    await message.ack()
                    if message.headers[SWEEP_MARKER_HEADER] == marker:
                        break
                    continue
                letter = read_dead_letter(
                    message.headers,
                    message.body,
                    timestamp=message.timestamp,
                    default_exchange=self._topology.listings_exchange.name,
                )
                sweep.seen.append(letter)
                if not take(letter) or (limit is not None and len(sweep.taken) >= limit):
                    put_back.append(message)
                    if len(put_back) >= max_held:
                        sweep.stopped_early = True
                        break
                    continue
                try:
                    # Not acknowledged if this raises: the message stays in the queue.
                    await handle(letter, message)
                except DeadLetterQueueError as error:
                    raise DeadLetterQueueError(
                        f"{error}; {len(sweep.taken)} {verb} before it"
                    ) from None
                await message.ack()
                sweep.taken.append(letter)
        finally:
            await _put_back(put_back)
        return sweep

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = (
                await self._channel.get_exchange(name, ensure=False)
                if name
                else self._channel.default_exchange
            )
        return self._exchanges[name]

    @staticmethod
    async def _nothing(letter: DeadLetter, message: AbstractIncomingMessage) -> None:
        pass


async def _put_back(messages: list[AbstractIncomingMessage]) -> None:
    """One nack per message, in order (see the module's note on order)."""
    for message in messages:
        try:
            await message.nack(requeue=True)
        except aiormq.exceptions.AMQPError:
            # The channel is gone (the failure being handled closed it, say): RabbitMQ puts
            # back what it did not acknowledge, order aside.
            return
