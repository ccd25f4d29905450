"""Delivering alerts: the outbox, attempts, retries with backoff, and the delivery log.

Life of a delivery (one message for one channel):

1. The event's consumer inserts it into ``alert_outbox`` (id = rule, occasion and channel, so a
   redelivered event cannot make a second one) and acknowledges the event only after that.
2. Each attempt sends, then logs its outcome in ``alert_deliveries`` as a document of its own,
   ``<delivery>~<attempt>`` (inserted once, never updated: the log grows with history, and on
   FerretDB 1.x an update would scan all of it). 2xx: the outbox entry is deleted. Otherwise it
   gets its next time, exponential backoff with jitter or the endpoint's ``Retry-After``,
   whichever is later. An attempt taken up by a poll first claims ``<delivery>~<attempt>`` in
   ``alert_attempts`` (a unique-key insert: two instances never make the same attempt); the
   first attempt of a fresh delivery needs no claim, its creator's lease keeps others off it.
3. Any instance picks up outbox entries that are due: retries, and the work of an instance that
   died mid-delivery (its entries become due once their lease runs out).

An endpoint that answers 410, or fails without a success for ``alerts_disable_after_s``, is
disabled and its owner told on the account's other channels; nothing is sent to a disabled
channel. One slow endpoint never holds up others: each endpoint has a small concurrency limit of
its own, and all share one HTTP client pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from fragmenty_alerts.batcher import (
    LINGER_BESIDE_S,
    ROUNDS_ON_THE_WAY_OUT,
    BatchedDeletes,
    WriteBatcher,
)
from fragmenty_alerts.channels import Channel, ChannelKind, Outgoing, Sender, SendResult
from fragmenty_alerts.delivery_log import attempts_made, message_of
from fragmenty_alerts.directory import Directory
from fragmenty_alerts.metrics import AlertsMetrics
from fragmenty_alerts.recent_log import name_of, slot_of
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_shared.blobs import pack_documents

logger = logging.getLogger(__name__)

POLL_BATCH = 500
# Delivered entries leave the outbox in rounds this far apart (see BatchedDeletes). A crash
# between an alert's delivery and its round makes it be sent again, with the same webhook-id.
OUTBOX_CLEANING_S = 0.2


def now_utc() -> datetime:
    return datetime.now(UTC)


def backoff_s(attempt: int, settings: AlertsSettings, retry_after_s: float | None = None) -> float:
    """Wait before attempt ``attempt + 1``: doubling from the base, jittered, honouring Retry-After."""
    delay: float = min(
        settings.alerts_retry_max_s, settings.alerts_retry_base_s * 2.0 ** (attempt - 1)
    )
    delay *= random.uniform(0.75, 1.25)  # noqa: S311 -- jitter, not cryptography
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, settings.alerts_retry_max_s))
    return delay


def outgoing_of(document: Document) -> Outgoing:
    message = document["message"]
    return Outgoing(
        webhook_id=message["webhook_id"],
        type=message["type"],
        title=message["title"],
        text=message["text"],
        data=message.get("data") or {},
    )


def outbox_document(
    delivery_id: str,
    channel: Channel,
    message: Outgoing,
    *,
    rule_id: str | None,
    event_id: str | None,
    published_at: float | None,
    not_before: datetime,
    lease_s: float,
) -> Document:
    now = now_utc()
    return {
        "_id": delivery_id,
        "account_id": channel.account_id,
        "channel_id": channel.channel_id,
        "channel_kind": channel.kind.value,
        "rule_id": rule_id,
        "event_id": event_id,
        "published_at": published_at,
        "message": {
            "webhook_id": message.webhook_id,
            "type": message.type,
            "title": message.title,
            "text": message.text,
            "data": message.data,
        },
        "attempts": 0,
        "created_at": now,
        "not_before": not_before,
        # Left to its creator (which sends at once) for a lease; then anyone may take it.
        "next_attempt_at": max(not_before, now + timedelta(seconds=lease_s)),
    }


class Deliveries:
    def __init__(
        self,
        store: AlertsStore,
        directory: Directory,
        senders: Mapping[ChannelKind, Sender],
        settings: AlertsSettings,
        metrics: AlertsMetrics,
    ) -> None:
        self._store = store
        self._directory = directory
        self._senders = senders
        self._settings = settings
        self._metrics = metrics
        self._outbox = WriteBatcher(store.outbox, linger_s=LINGER_BESIDE_S)
        self._delivered = BatchedDeletes(store.outbox, OUTBOX_CLEANING_S)
        # Each entry into the recent log's collection of its slot.
        self._log = WriteBatcher(store.deliveries, linger_s=LINGER_BESIDE_S, route=self._slot_of)
        self._claims = WriteBatcher(store.attempts, rounds_in_flight=ROUNDS_ON_THE_WAY_OUT)
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- creating -------------------------------------------------------------------------

    async def enqueue(self, documents: list[Document]) -> list[Document]:
        """Store deliveries durably; returns those that were new (the others exist already)."""
        inserted = await asyncio.gather(*(self._outbox.insert(document) for document in documents))
        return [document for document, new in zip(documents, inserted, strict=True) if new]

    def send_soon(self, documents: list[Document]) -> None:
        """Start the first attempt of fresh deliveries, without waiting for them."""
        for document in documents:
            if document["not_before"] <= now_utc():
                self._start(document)

    async def enqueue_and_send(self, documents: list[Document]) -> None:
        """Deliveries of an event seen for the first time: sending starts while they are being
        stored (a crash before the store is done leaves the event unacknowledged, and its
        redelivery sends again, with the same webhook-id), so the database's latency is not
        added to the alert's."""
        stored = asyncio.ensure_future(self.enqueue(documents))
        for document in documents:
            if document["not_before"] <= now_utc():
                self._start(document, stored=stored)
        await stored

    def _start(self, document: Document, stored: asyncio.Future[Any] | None = None) -> None:
        if document["_id"] in self._in_flight:
            return
        self._in_flight.add(document["_id"])
        task = asyncio.create_task(
            self._attempt(document, stored), name=f"deliver {document['_id']}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- attempts -------------------------------------------------------------------------

    def _limit(self, endpoint: str) -> asyncio.Semaphore:
        limit = self._limits.get(endpoint)
        if limit is None:
            limit = self._limits[endpoint] = asyncio.Semaphore(
                self._settings.alerts_per_endpoint_concurrency
            )
        return limit

    async def _attempt(self, document: Document, stored: asyncio.Future[Any] | None) -> None:
        try:
            await self._attempt_once(document, stored)
        except Exception:
            # The outbox entry stays; its lease runs out and a poll tries again.
            logger.exception("delivery %s: attempt failed unexpectedly", document["_id"])
        finally:
            self._in_flight.discard(document["_id"])

    async def _attempt_once(self, document: Document, stored: asyncio.Future[Any] | None) -> None:
        attempt = int(document["attempts"]) + 1
        log_id = f"{document['_id']}~{attempt}"
        started = now_utc()
        if stored is None and not await self._claims.insert(
            {"_id": log_id, "delivery_id": document["_id"], "at": started}
        ):
            await self._after_taken_attempt(document, attempt, log_id)
            return
        # A fresh delivery of this instance's own (``stored`` set) needs no claim: nobody else
        # may take it before its lease runs out, and if this instance dies first, whoever
        # takes it then makes the attempt again (same webhook-id).
        channel = self._usable_channel(document)
        if channel is None:
            await self._skip(document, attempt, started, stored)
            return
        if attempt > 1:
            self._metrics.retried.labels(channel.kind.value).inc()
        if document["next_attempt_at"] <= started:
            # Taken up by a poll: lease it, so other instances' polls leave it alone.
            lease = timedelta(seconds=self._settings.alerts_delivery_lease_s)
            await self._outbox.apply(
                UpdateOne({"_id": document["_id"]}, {"$set": {"next_attempt_at": started + lease}})
            )
        async with self._limit(channel.endpoint):
            # Again: waiting for the endpoint's turn can outlast its disabling (a 410 to an
            # attempt ahead in line), and nothing is sent to a disabled endpoint.
            channel = self._usable_channel(document)
            if channel is None:
                await self._skip(document, attempt, started, stored)
                return
            result = await self._senders[channel.kind].send(channel, outgoing_of(document))
        if stored is not None:
            await stored  # the outbox entry is moved on or deleted below: it must exist first
        await self._record(document, attempt, started, channel, result)

    def _usable_channel(self, document: Document) -> Channel | None:
        """The delivery's channel, unless it was deleted or disabled."""
        channel = self._directory.channels.get(document["channel_id"])
        return channel if channel is not None and channel.enabled else None

    async def _skip(
        self,
        document: Document,
        attempt: int,
        started: datetime,
        stored: asyncio.Future[Any] | None,
    ) -> None:
        """The delivery ends unsent: its channel was deleted or disabled."""
        if stored is not None:
            await stored
        channel = self._directory.channels.get(document["channel_id"])
        reason = (
            "channel deleted" if channel is None else f"channel disabled: {channel.disabled_reason}"
        )
        await self._finish(document, attempt, started, "skipped", SendResult(False, error=reason))

    async def _after_taken_attempt(self, document: Document, attempt: int, log_id: str) -> None:
        """The attempt is claimed already: another sender has it, or its sender stopped."""
        claim = await self._store.attempts.find_one({"_id": log_id})
        lease = timedelta(seconds=self._settings.alerts_delivery_lease_s)
        if claim is None or claim["at"] >= now_utc() - lease:
            return  # its sender is on it
        # Its sender stopped, mid-attempt or before it moved the outbox entry on. The log
        # says "lost" unless the attempt's outcome is there already (then the insert is
        # refused); either way the attempt counts as made, and the next poll makes the next.
        lost = SendResult(False, error="sender stopped")
        await asyncio.gather(
            self._log.insert(_log_entry(document, attempt, claim["at"], "lost", lost)),
            self._outbox.apply(
                UpdateOne(
                    {"_id": document["_id"]},
                    {"$set": {"attempts": attempt, "next_attempt_at": now_utc()}},
                )
            ),
        )

    async def _record(
        self,
        document: Document,
        attempt: int,
        started: datetime,
        channel: Channel,
        result: SendResult,
    ) -> None:
        kind = channel.kind.value
        if result.ok:
            self._metrics.sent.labels(kind).inc()
            published = document.get("published_at")
            if published is not None:
                self._metrics.delivery_seconds.labels(kind).observe(
                    max(0.0, time.time() - published)
                )
            await self._finish(document, attempt, started, "sent", result)
            if channel.failing_since is not None:
                await self._set_channel(
                    channel, {"failing_since": None, "last_success_at": now_utc()}
                )
            return
        self._metrics.failed.labels(kind).inc()
        if result.gone:
            await self._finish(document, attempt, started, "failed", result)
            await self.disable(channel, f"the endpoint answered {result.status_code or 'gone'}")
            return
        failing_since = channel.failing_since or now_utc()
        if channel.failing_since is None:
            channel = await self._set_channel(channel, {"failing_since": failing_since})
        if now_utc() - failing_since >= timedelta(seconds=self._settings.alerts_disable_after_s):
            await self._finish(document, attempt, started, "failed", result)
            await self.disable(channel, f"failing since {failing_since.isoformat()}")
            return
        if attempt >= self._settings.alerts_max_attempts:
            await self._finish(document, attempt, started, "gave_up", result)
            return
        delay = backoff_s(attempt, self._settings, result.retry_after_s)
        await asyncio.gather(
            self._log.insert(_log_entry(document, attempt, started, "failed", result, delay)),
            self._outbox.apply(
                UpdateOne(
                    {"_id": document["_id"]},
                    {
                        "$set": {
                            "attempts": attempt,
                            "next_attempt_at": now_utc() + timedelta(seconds=delay),
                            "last_error": result.error,
                        }
                    },
                )
            ),
        )

    async def _finish(
        self,
        document: Document,
        attempt: int,
        started: datetime,
        status: str,
        result: SendResult,
    ) -> None:
        """The delivery's last attempt: logged, and the outbox entry gone."""
        await asyncio.gather(
            self._log.insert(_log_entry(document, attempt, started, status, result)),
            self._delivered.delete(document["_id"]),
        )

    def _slot_of(self, entry: Document) -> AsyncCollection[Document]:
        return self._store.database[name_of(slot_of(entry["finished_at"]))]

    # -- endpoints ------------------------------------------------------------------------

    async def _set_channel(self, channel: Channel, fields: dict[str, Any]) -> Channel:
        await self._store.channels.update_one({"_id": channel.channel_id}, {"$set": fields})
        current = self._directory.channels.get(channel.channel_id, channel)
        updated = Channel.of({**_channel_fields(current), **fields})
        self._directory.put_channel(updated)
        return updated

    async def disable(self, channel: Channel, reason: str) -> None:
        """Disable a channel and tell its owner on the account's other channels."""
        current = self._directory.channels.get(channel.channel_id, channel)
        if not current.enabled:
            return
        at = now_utc()
        fields = {"enabled": False, "disabled_reason": reason, "disabled_at": at}
        # Marked disabled here before anything is awaited, so that this instance's other
        # attempts failing at the same time stop here; the conditional update decides between
        # instances. Either way the owner is told once.
        self._directory.put_channel(Channel.of({**_channel_fields(current), **fields}))
        try:
            changed = await self._store.channels.update_one(
                {"_id": channel.channel_id, "enabled": True}, {"$set": fields}
            )
        finally:
            self._directory.written()
        if changed.modified_count == 0:
            return  # disabled meanwhile by another instance (which told the owner) or a user
        logger.warning("channel %s disabled: %s", channel.channel_id, reason)
        self._metrics.disabled_endpoints.inc()
        await self._directory.changed()
        notice = Outgoing(
            webhook_id=f"msg_disabled_{channel.channel_id}_{int(at.timestamp())}",
            type="endpoint.disabled",
            title="Fragmenty: a channel was disabled",
            text=(
                f"Fragmenty disabled your {channel.kind.value} channel {channel.channel_id} "
                f"({channel.url or channel.chat_id}): {reason}. Alerts to it have stopped; "
                're-enable it with PATCH /api/v1/alerts/channels/{id} {"enabled": true}.'
            ),
            data={"channel_id": channel.channel_id, "reason": reason},
        )
        others = [
            other
            for other in self._directory.channels_of(channel.account_id)
            if other.enabled and other.channel_id != channel.channel_id
        ]
        documents = [
            outbox_document(
                f"notice|{channel.channel_id}|{int(at.timestamp())}|{other.channel_id}",
                other,
                notice,
                rule_id=None,
                event_id=None,
                published_at=None,
                not_before=at,
                lease_s=self._settings.alerts_delivery_lease_s,
            )
            for other in others
        ]
        self.send_soon(await self.enqueue(documents))

    # -- polling --------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Start every due delivery this instance is not already sending; returns how many."""
        due = await self._store.outbox.find({"next_attempt_at": {"$lte": now_utc()}}).to_list(
            POLL_BATCH
        )
        self._metrics.outbox.set(len(due))
        started = 0
        for document in due:
            if document["_id"] not in self._in_flight:
                self._start(document)
                started += 1
        return started

    async def replay(self, log_entry: Document) -> Document:
        """``POST /deliveries/{id}/retry``: send a logged delivery again (same webhook-id)."""
        # The replay is numbered after every attempt made so far (the claims of old attempts
        # are pruned, the log keeps them): the newest logged one, recent or archived.
        newest = await attempts_made(self._store, log_entry["delivery_id"])
        made = max(newest or 0, int(log_entry["attempt"]))
        document = {
            "_id": log_entry["delivery_id"],
            "account_id": log_entry["account_id"],
            "channel_id": log_entry["channel_id"],
            "channel_kind": log_entry["channel_kind"],
            "rule_id": log_entry.get("rule_id"),
            "event_id": log_entry.get("event_id"),
            "published_at": None,
            "message": message_of(log_entry),
            "attempts": made,
            "created_at": now_utc(),
            "not_before": now_utc(),
            "next_attempt_at": now_utc()
            + timedelta(seconds=self._settings.alerts_delivery_lease_s),
        }
        if not await self._outbox.insert(document):
            existing = await self._store.outbox.find_one({"_id": document["_id"]})
            return existing or document
        self._start(document)
        return document

    async def wait_idle(self) -> None:
        """Until the attempts started so far are done (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._outbox.close()
        await self._delivered.close()
        await self._log.close()
        await self._claims.close()


def _log_entry(
    document: Document,
    attempt: int,
    started: datetime,
    status: str,
    result: SendResult,
    retry_in_s: float | None = None,
) -> Document:
    """One attempt in the delivery log, written once, when its outcome is known.

    The log grows with every attempt ever made: on FerretDB 1.x an update of one of its entries
    would scan all of it, so entries are only ever inserted.
    """
    return {
        "_id": f"{document['_id']}~{attempt}",
        "delivery_id": document["_id"],
        "attempt": attempt,
        "account_id": document["account_id"],
        "channel_id": document["channel_id"],
        "channel_kind": document["channel_kind"],
        "rule_id": document.get("rule_id"),
        "event_id": document.get("event_id"),
        "webhook_id": document["message"]["webhook_id"],
        # One binary value, not the nested message: FerretDB parses every byte of the recent log
        # for each page, and a long string is far cheaper to skip than nested objects.
        "message": pack_documents([document["message"]]),
        "at": started,
        "status": status,
        "response_code": result.status_code,
        "error": result.error,
        "retry_in_s": retry_in_s,
        "finished_at": now_utc(),
    }


def _channel_fields(channel: Channel) -> dict[str, Any]:
    return {
        "_id": channel.channel_id,
        "account_id": channel.account_id,
        "kind": channel.kind.value,
        "url": channel.url,
        "secrets": list(channel.secrets),
        "chat_id": channel.chat_id,
        "enabled": channel.enabled,
        "disabled_reason": channel.disabled_reason,
        "failing_since": channel.failing_since,
    }
