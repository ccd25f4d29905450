"""The ``/ws`` connection: subscriptions with filters, and resume with ``?since=<seq>``.

``since`` is an event position (an event's ``seq``, given when ingest stored it): positions
follow the order events were recorded, so "after the last one I saw" misses nothing. A
malformed ``since``, or one ahead of every stored event, is answered with an error frame.

Resume without a gap or a duplicate at the seam: when the first subscription arrives, live
events this client matches start collecting in ``_pending`` *before* the stored events after
``since`` are read. The replay sends the stored ones; then the pending live ones follow, minus
any the replay already sent (dedupe by event_id). Only then does the connection go live.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fragmenty_notifier.connection import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    ClientConnection,
    ConnectionLimits,
)
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.protocol import (
    Ping,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    error_frame,
    event_frame,
    parse_command,
    pong_frame,
    replayed_frame,
    subscribed_frame,
    unsubscribed_frame,
)
from fragmenty_notifier.token_bucket import TokenBucket
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.event_log import SinceError, parse_since
from fragmenty_shared.filters import EventFilter, compile_filter
from fragmenty_shared.patterns import PatternError
from fragmenty_shared.recent_ids import RecentIds

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from fragmenty_notifier.event_store import EventStore
    from fragmenty_notifier.fanout import BatchWindows

logger = logging.getLogger(__name__)

# Live events a resuming client may collect while its replay is still being sent; a client
# whose replay is that slow is better off reconnecting later.
MAX_PENDING_DURING_REPLAY = 10_000

# How many recent event ids a resuming connection remembers to drop duplicates: far more than
# can be in flight at the seam between its replay and live delivery.
CONNECTION_SEEN_IDS = 4096


class GroupKey:
    """Stands for one list of subscriptions: connections with the same list share one key
    object, so grouping them costs an identity lookup per connection and batch, not a hash of
    their subscriptions."""

    __slots__ = ("__weakref__",)


_group_keys: weakref.WeakValueDictionary[tuple[tuple[str, str], ...], GroupKey] = (
    weakref.WeakValueDictionary()
)


def group_key(signature: tuple[tuple[str, str], ...]) -> GroupKey:
    """The shared key of a list of subscriptions; forgotten once no connection holds it."""
    key = _group_keys.get(signature)
    if key is None:
        key = _group_keys[signature] = GroupKey()
    return key


def frames_of(chosen: list[tuple[Envelope, Subscription]]) -> list[Frame]:
    """Frames for chosen events, in order: one ``event`` frame each for per-event
    subscriptions, one ``events`` frame per batched subscription (in subscription order of
    first appearance)."""
    frames: list[Frame] = []
    batched: dict[str, list[Envelope]] = {}
    for envelope, subscription in chosen:
        if subscription.window_ms is None:
            frames.append(envelope.frame_for(subscription.id))
        else:
            batched.setdefault(subscription.id, []).append(envelope)
    frames.extend(Frame.of_events(sid, tuple(envelopes)) for sid, envelopes in batched.items())
    return frames


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    filter: EventFilter
    window_ms: int | None  # the batch window, or None for a frame per event


class StreamConnection(ClientConnection):
    endpoint = "ws"
    receives_events = True

    def __init__(
        self,
        websocket: WebSocket,
        client_host: str,
        limits: ConnectionLimits,
        metrics: NotifierMetrics,
        store: EventStore,
        windows: BatchWindows,
        since: str | None = None,
    ) -> None:
        super().__init__(websocket, client_host, limits, metrics)
        self._store = store
        self._windows = windows
        self._since = since
        self._subscriptions: dict[str, Subscription] = {}
        self._specs: dict[str, str] = {}  # the subscriptions as the client wrote them (normalised)
        self._group: GroupKey | None = group_key(())
        # The hub fans each event_id out once, so live delivery alone never repeats an event;
        # only a connection whose replay meets live delivery needs a memory of its own.
        self._seen: RecentIds | None = None
        self._replaying = False
        self._pending: deque[tuple[Envelope, Subscription]] = deque()
        self._errors = 0
        self._bucket = TokenBucket(
            limits.max_client_frames_per_s, max(10.0, 3 * limits.max_client_frames_per_s)
        )
        self._replay_task: asyncio.Task[None] | None = None
        self._subscriptions_gauge = metrics.subscriptions
        self._client_errors = metrics.client_errors

    def matching_subscription(self, event: PriceEvent) -> Subscription | None:
        """The first of this client's subscriptions the event matches: one frame per event."""
        for subscription in self._subscriptions.values():
            if subscription.filter.matches(event):
                return subscription
        return None

    def frames_key(self) -> Hashable | None:
        # The subscriptions, in order (the first match names the frame); none while a replay
        # runs, nor once this connection remembers ids of its own (after a replay), nor once
        # it is closing (it chooses nothing then, which must not become its group's choice).
        return None if self._closing is not None else self._group

    def _regroup(self) -> None:
        own = self._replaying or self._seen is not None
        self._group = None if own else group_key(tuple(self._specs.items()))

    def choose(self, envelopes: list[Envelope], window_ms: int | None) -> list[Frame]:
        """The frames of a batch for this client: the events whose first matching subscription
        takes this batch (per-event ones the broker's batches, batched ones their window)."""
        if self.closed:
            return []
        if self._replaying:  # held until the replay is out, then sent (see _replay)
            if window_ms is None:
                self._hold(envelopes)
            return []
        seen = self._seen
        chosen: list[tuple[Envelope, Subscription]] = []
        for envelope in envelopes:
            subscription = self.matching_subscription(envelope.event)
            if subscription is None or subscription.window_ms != window_ms:
                continue
            if seen is not None and not seen.add(envelope.event_id):
                continue
            chosen.append((envelope, subscription))
        return frames_of(chosen)

    def _hold(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            subscription = self.matching_subscription(envelope.event)
            if subscription is not None:
                self._pending.append((envelope, subscription))
        if len(self._pending) > MAX_PENDING_DURING_REPLAY:
            self.drop(
                CLOSE_TRY_AGAIN_LATER,
                "too slow: live events piled up during the replay",
                reason="slow",
            )

    # --- client frames ---------------------------------------------------------------------

    def handle_text(self, text: str | None) -> None:
        """Act on one client frame; errors are answered, and counted against the client."""
        if not self._bucket.take():
            self.drop(CLOSE_POLICY_VIOLATION, "too many frames", reason="flood")
            return
        if text is None:
            self._refuse(ProtocolError("binary frames are not understood; send JSON text"))
            return
        try:
            command = parse_command(text)
            if isinstance(command, Subscribe):
                self._subscribe(command)
            elif isinstance(command, Unsubscribe):
                self._unsubscribe(command)
            elif isinstance(command, Ping):
                self.send_control(pong_frame())
        except ProtocolError as error:
            self._refuse(error)

    def _refuse(self, error: ProtocolError) -> None:
        self._errors += 1
        self._client_errors.inc()
        if self._errors > self.limits.max_client_errors:
            self.drop(CLOSE_POLICY_VIOLATION, "too many malformed frames", reason="abuse")
            return
        self.send_control(error_frame(str(error), error.subscription_id))

    def _subscribe(self, command: Subscribe) -> None:
        is_new = command.id not in self._subscriptions
        if is_new and len(self._subscriptions) >= self.limits.max_subscriptions:
            raise ProtocolError(
                f"at most {self.limits.max_subscriptions} subscriptions per connection", command.id
            )
        try:
            compiled = compile_filter(command.filter)
        except PatternError as error:
            raise ProtocolError(f"filter.pattern: {error}", command.id) from None
        replaced = self._subscriptions.get(command.id)
        if replaced is not None and replaced.window_ms is not None:
            self._windows.release(replaced.window_ms)
        window_ms = command.batch_ms or None
        # A replacement keeps its place: the order of subscriptions decides the frame's label.
        self._subscriptions[command.id] = Subscription(command.id, compiled, window_ms)
        if window_ms is not None:
            self._windows.use(window_ms)
        self._specs[command.id] = command.model_dump_json(include={"filter", "batch_ms"})
        self._regroup()
        if is_new:
            self._subscriptions_gauge.inc()
        self.send_control(subscribed_frame(command.id))
        if self._since is not None and self._replay_task is None:
            self._start_replay(self._since)

    def _unsubscribe(self, command: Unsubscribe) -> None:
        if not self._forget(command.id):
            raise ProtocolError("no such subscription", command.id)
        self._subscriptions_gauge.dec()
        self.send_control(unsubscribed_frame(command.id))

    def _forget(self, subscription_id: str) -> bool:
        """Remove a subscription (to replace or end it); whether there was one."""
        self._specs.pop(subscription_id, None)
        self._regroup()
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is None:
            return False
        if subscription.window_ms is not None:
            self._windows.release(subscription.window_ms)
        return True

    # --- resume ------------------------------------------------------------------------------

    def _start_replay(self, since: str) -> None:
        self._replaying = True
        self._regroup()
        self._replay_task = asyncio.create_task(self._replay(since), name=f"replay-{id(self)}")

    async def _replay(self, since_text: str) -> None:
        try:
            try:
                since = parse_since(since_text)
                await self._store.check_since(since)
            except SinceError as error:
                self.send_control(error_frame(str(error)))
                self.drop(CLOSE_POLICY_VIOLATION, "bad since", reason="replay")
                return
            count, last = await self._replay_stored(since)
            if count < 0:
                return
            self.send_control(replayed_frame(count, last))
            # Live events that arrived meanwhile, without those the replay already sent.
            while self._pending and not self.closed:
                held = [self._pending.popleft() for _ in range(len(self._pending))]
                fresh = [(e, s) for e, s in held if self._remember(e.event_id)]
                for frame in frames_of(fresh):
                    await self.send_waiting(frame)
            self._replaying = False
            self._regroup()
        except Exception:
            logger.exception("replay for %s failed", self.client_host)
            self.drop(CLOSE_INTERNAL_ERROR, "replay failed; reconnect to retry", reason="replay")

    async def _replay_stored(self, since: int) -> tuple[int, PriceEvent | None]:
        """Send the stored events after ``since`` that match; -1 when there were too many."""
        limit = self.limits.max_replay_events
        scanned = sent = 0
        last: PriceEvent | None = None
        async for event in self._store.events_after(since, limit=limit + 1):
            scanned += 1
            if scanned > limit:
                self.send_control(
                    error_frame(f"more than {limit} events since {since}: resume point too old")
                )
                self.drop(CLOSE_POLICY_VIOLATION, "resume point too old", reason="replay")
                return -1, None
            if self.closed:
                return -1, None
            subscription = self.matching_subscription(event)
            if subscription is None or not self._remember(event.event_id):
                continue
            frame = event_frame(subscription.id, event.model_dump_json())
            await self.send_waiting(Frame(frame, replayed=True))
            sent += 1
            last = event
        return sent, last

    def _remember(self, event_id: str) -> bool:
        """Mark an event as sent to this client; False if it already was."""
        if self._seen is None:
            self._seen = RecentIds(CONNECTION_SEEN_IDS)
            self._regroup()
        return self._seen.add(event_id)

    async def finish(self) -> None:
        self._subscriptions_gauge.dec(len(self._subscriptions))
        for subscription_id in tuple(self._subscriptions):
            self._forget(subscription_id)
        if self._replay_task is not None:
            self._replay_task.cancel()
        await super().finish()
