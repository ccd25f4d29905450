"""What happens to one price event: refuse what cannot be trusted, match, gate, store, send.

The event is acknowledged (by the consumer) only after :meth:`EventProcessor.process` returns,
that is once every alert it fires is in the outbox (or a digest) and in the rule's feed. Sending
starts right away and goes on after the acknowledgement; a crash before it is finished leaves
the outbox entry, which another attempt picks up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fragmenty_alerts.alert import AlertMessage, message_for
from fragmenty_alerts.batcher import LINGER_BESIDE_S, WriteBatcher
from fragmenty_alerts.channels import Outgoing
from fragmenty_alerts.delivery import Deliveries, outbox_document
from fragmenty_alerts.directory import Directory
from fragmenty_alerts.gates import LEFT_THE_MARKET, Chains, Slots
from fragmenty_alerts.metrics import AlertsMetrics
from fragmenty_alerts.rules import DeliveryMode, Rule, utc_day
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_alerts.trust import refusal_reason
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.storage import listing_id

logger = logging.getLogger(__name__)

# How many minutes ahead an account's deliveries may be pushed by its per-minute limit.
MAX_MINUTES_AHEAD = 24 * 60


def outgoing_of_message(message: AlertMessage) -> Outgoing:
    return Outgoing(
        webhook_id=message.webhook_id,
        type="alert.digest" if message.is_digest else "alert.fired",
        title=message.title(),
        text=message.text(),
        data=message.webhook_body(datetime.now(UTC))["data"],
    )


def delivery_id(rule_id: str, occasion: str, channel_id: str) -> str:
    return f"{rule_id}|{occasion}|{channel_id}"


def digest_period(moment: datetime, every_s: int) -> tuple[datetime, datetime]:
    start = int(moment.timestamp()) // every_s * every_s
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + timedelta(seconds=every_s)


@dataclass(frozen=True)
class Fired:
    rule: Rule
    event: PriceEvent


class EventProcessor:
    def __init__(
        self,
        store: AlertsStore,
        directory: Directory,
        deliveries: Deliveries,
        settings: AlertsSettings,
        metrics: AlertsMetrics,
    ) -> None:
        self._store = store
        self._directory = directory
        self._deliveries = deliveries
        self._settings = settings
        self._metrics = metrics
        self.chains = Chains(store)
        self.slots = Slots(store)
        self._feed = WriteBatcher(store.feed, linger_s=LINGER_BESIDE_S)
        self._digest = WriteBatcher(store.digest_items, linger_s=LINGER_BESIDE_S)

    async def process(
        self, event: PriceEvent, *, redelivered: bool = False, published_at: float | None = None
    ) -> int:
        """Handle one event; returns how many alerts it fired."""
        self._metrics.events.inc()
        reason = refusal_reason(event)
        if reason is not None:
            self._metrics.events_refused.labels(reason).inc()
            logger.info("event %s refused: %s", event.event_id, reason)
            return 0
        started = time.perf_counter()
        matched = self._directory.index.matching(event)
        self._metrics.match_seconds.observe(time.perf_counter() - started)
        await self._rearm(event, {rule.rule_id for rule in matched})
        decisions = await asyncio.gather(
            *(self._gate(rule, event, redelivered) for rule in matched)
        )
        fired = [Fired(rule, event) for rule, ok in zip(matched, decisions, strict=True) if ok]
        if not fired:
            return 0
        await asyncio.gather(
            *(self._store_fired(item, published_at, redelivered) for item in fired)
        )
        return len(fired)

    async def _rearm(self, event: PriceEvent, matched: set[str]) -> None:
        pairs = self.chains.disarmed.get(listing_id(event.asset, event.slug))
        if not pairs:
            return
        left = event.type in LEFT_THE_MARKET  # re-arms whatever the rule's filter says
        for rule_id in list(pairs - matched):
            rule = self._directory.index.get(rule_id)
            if rule is not None and (left or rule.filter.matches(event)):
                await self.chains.rearm(rule, event)

    async def _gate(self, rule: Rule, event: PriceEvent, redelivered: bool) -> bool:
        if rule.stateful and not await self.chains.fire(rule, event, redelivered=redelivered):
            self._metrics.suppressed.labels("threshold_or_cooldown").inc()
            return False
        cap = rule.spec.daily_cap
        if cap is not None and rule.spec.mode is DeliveryMode.INSTANT:
            prefix = f"cap|{rule.rule_id}|{utc_day(event.occurred_at)}"
            if not await self.slots.take(
                prefix, cap, event_id=event.event_id, at=datetime.now(UTC)
            ):
                self._metrics.suppressed.labels("daily_cap").inc()
                return False
        self._metrics.matched.labels(rule.spec.mode.value).inc()
        return True

    async def _store_fired(
        self, fired: Fired, published_at: float | None, redelivered: bool
    ) -> None:
        rule, event = fired.rule, fired.event
        now = datetime.now(UTC)
        feed_entry = {
            "_id": f"{rule.rule_id}|{event.event_id}",
            "rule_id": rule.rule_id,
            "at": now,
            "event": event.model_dump(mode="json"),
        }
        if rule.spec.mode is DeliveryMode.DIGEST:
            begin, end = digest_period(now, rule.spec.digest_every)
            item = {
                "_id": f"{rule.rule_id}|{begin.isoformat()}|{event.event_id}",
                "rule_id": rule.rule_id,
                "period_start": begin,
                "period_end": end,
                "event": event.model_dump(mode="json"),
            }
            await asyncio.gather(self._feed.insert(feed_entry), self._digest.insert(item))
            return
        message = message_for(rule, [event], event.event_id, self._settings.alerts_public_url)
        await asyncio.gather(
            self._feed.insert(feed_entry),
            self.deliver(
                rule,
                message,
                event_id=event.event_id,
                published_at=published_at,
                redelivered=redelivered,
            ),
        )

    async def deliver(
        self,
        rule: Rule,
        message: AlertMessage,
        *,
        event_id: str | None,
        published_at: float | None,
        redelivered: bool = True,
    ) -> None:
        """Put one message for each of the rule's channels in the outbox, and start sending."""
        channels = self._directory.targets(rule)
        if not channels:
            return
        not_before = await self._allowed_from(rule.account_id, message.occasion)
        outgoing = outgoing_of_message(message)
        documents: list[Document] = [
            outbox_document(
                delivery_id(rule.rule_id, message.occasion, channel.channel_id),
                channel,
                outgoing,
                rule_id=rule.rule_id,
                event_id=event_id,
                published_at=published_at,
                not_before=not_before,
                lease_s=self._settings.alerts_delivery_lease_s,
            )
            for channel in channels
        ]
        if redelivered:
            # An earlier attempt may have stored (and be sending) some: send only the new.
            self._deliveries.send_soon(await self._deliveries.enqueue(documents))
        else:
            await self._deliveries.enqueue_and_send(documents)

    async def _allowed_from(self, account_id: str, occasion: str) -> datetime:
        """The account's per-minute limit: the first minute with room for one more message."""
        now = datetime.now(UTC)
        minute = now.replace(second=0, microsecond=0)
        limit = self._settings.alerts_max_deliveries_per_minute
        for ahead in range(MAX_MINUTES_AHEAD):
            start = minute + timedelta(minutes=ahead)
            prefix = f"rate|{account_id}|{start.strftime('%Y%m%dT%H%M')}"
            if await self.slots.take(prefix, limit, event_id=occasion, at=now):
                return max(start, now)
        return minute + timedelta(minutes=MAX_MINUTES_AHEAD)

    async def flush_digests(self) -> int:
        """Send every digest whose period is over; returns how many."""
        now = datetime.now(UTC)
        items = await self._store.digest_items.find({"period_end": {"$lte": now}}).to_list(None)
        periods: dict[tuple[str, datetime], list[Document]] = {}
        for item in items:
            periods.setdefault((item["rule_id"], item["period_start"]), []).append(item)
        sent = 0
        for (rule_id, start), members in periods.items():
            rule = self._directory.index.get(rule_id)
            if rule is not None:
                events = sorted(
                    (PriceEvent.model_validate(member["event"]) for member in members),
                    key=lambda event: event.event_id,
                )
                occasion = f"digest:{start.isoformat()}"
                message = message_for(rule, events, occasion, self._settings.alerts_public_url)
                await self.deliver(rule, message, event_id=None, published_at=None)
                sent += 1
            await self._store.digest_items.delete_many(
                {"_id": {"$in": [m["_id"] for m in members]}}
            )
        return sent

    async def close(self) -> None:
        await self._feed.close()
        await self._digest.close()
