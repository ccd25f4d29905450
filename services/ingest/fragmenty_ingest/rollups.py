"""Daily market rollups: per UTC day, asset and status, what each event adds.

Pure functions. A rollup is a sum of event contributions, kept with ``$inc``/``$min``/``$max``.
Each update is guarded by the rollup's ``applied_seq``, the highest event position already
counted in it: an update carries the highest position among its events and applies only to a
rollup whose ``applied_seq`` is lower. Batches are applied in position order, so a batch that is
written again (a retry, or the relay redoing a crash's outbox) is recognised and skipped, key by
key: rollups are neither lost nor doubled without transactions, and nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fragmenty_shared.contracts import EventType, ListingStatus, PriceEvent
from fragmenty_shared.money import to_nanoton


def rollup_key(event: PriceEvent, sold_at: datetime | None) -> str:
    """``<YYYY-MM-DD>:<asset>:<status>``; a sale counts on the day it happened, when known."""
    snapshot = event.new if event.new is not None else event.old
    assert snapshot is not None, "an event has an old or a new state"
    # A sold_at after the observation cannot be this sale's (a clock skew): count it when seen.
    moment = event.occurred_at
    if event.type is EventType.SOLD and sold_at is not None and sold_at <= event.occurred_at:
        moment = sold_at
    return f"{moment.date().isoformat()}:{event.asset.value}:{snapshot.status.value}"


@dataclass
class RollupDelta:
    """What a set of events adds to one rollup document."""

    listed_count: int = 0
    sold_count: int = 0
    delisted_count: int = 0
    volume_nanoton: int = 0
    volume_usd_cents: int = 0
    floor_nanoton: int | None = None
    ceiling_nanoton: int | None = None
    last_seq: int = 0  # the highest event position among the events added

    def add(self, event: PriceEvent) -> None:
        self.last_seq = max(self.last_seq, event.seq or 0)
        if event.type is EventType.LISTED:
            self.listed_count += 1
        elif event.type is EventType.DELISTED:
            self.delisted_count += 1
        if event.new is None:
            return
        price = to_nanoton(event.new.price_ton)
        if event.type is EventType.SOLD and event.new.status is ListingStatus.SOLD:
            self.sold_count += 1
            self.volume_nanoton += price
            if event.new.price_usd is not None:
                self.volume_usd_cents += int(event.new.price_usd * 100)
        self.floor_nanoton = price if self.floor_nanoton is None else min(self.floor_nanoton, price)
        self.ceiling_nanoton = (
            price if self.ceiling_nanoton is None else max(self.ceiling_nanoton, price)
        )

    def increment_update(self) -> dict[str, Any]:
        """The ``$inc``/``$min``/``$max`` update that adds this delta to a stored rollup."""
        update: dict[str, Any] = {
            "$set": {"applied_seq": self.last_seq},
            "$inc": {
                "listed_count": self.listed_count,
                "sold_count": self.sold_count,
                "delisted_count": self.delisted_count,
                "volume_nanoton": self.volume_nanoton,
                "volume_usd_cents": self.volume_usd_cents,
            },
        }
        if self.floor_nanoton is not None:
            update["$min"] = {"floor_nanoton": self.floor_nanoton}
            update["$max"] = {"ceiling_nanoton": self.ceiling_nanoton}
        return update

    def guard(self, key: str) -> dict[str, Any]:
        """The filter that matches the rollup only while this delta is not counted in it."""
        return {"_id": key, "applied_seq": {"$lt": self.last_seq}}

    def totals(self) -> dict[str, Any]:
        """The delta as absolute fields (what a rollup of only these events holds)."""
        return {
            "listed_count": self.listed_count,
            "sold_count": self.sold_count,
            "delisted_count": self.delisted_count,
            "volume_nanoton": self.volume_nanoton,
            "volume_usd_cents": self.volume_usd_cents,
            "floor_nanoton": self.floor_nanoton,
            "ceiling_nanoton": self.ceiling_nanoton,
        }


def key_fields(key: str) -> dict[str, str]:
    day, asset, status = key.split(":")
    return {"day": day, "asset": asset, "status": status}


def deltas_by_key(keyed_events: Iterable[tuple[str, PriceEvent]]) -> dict[str, RollupDelta]:
    deltas: dict[str, RollupDelta] = {}
    for key, event in keyed_events:
        deltas.setdefault(key, RollupDelta()).add(event)
    return deltas
