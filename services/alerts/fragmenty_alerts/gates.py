"""Shared state of firing: threshold arming, cooldowns, daily caps and per-minute limits.

All of it is kept with unique-key claims (see ``store.py``), so competing instances agree
without conditional updates:

- **Chains**: the state of one (rule, listing) pair -- armed or not, when it last fired -- is a
  chain of links ``<rule>|<listing>|1``, ``|2``, ... Changing the state means inserting the next
  link; a duplicate-key error means another instance changed it first, so its link is read and
  the decision made again on the newer state. The head document is only a hint of where the
  chain ends (it may lag); the links are the truth.
- **Forgetting**: a pair whose state carries nothing a later decision needs (its cooldown and
  threshold would let any event from now on fire, or its rule is gone) is forgotten, so that
  ``alert_heads`` holds only the pairs that still matter, not every pair that ever fired. The
  pruner claims the next link of its chain with a *reset* link before it deletes the head: an
  instance that still knows the old end meets the reset when it claims that link and starts
  over from an empty chain, exactly like one that finds no head, so the two agree on the
  links they compete for. A listing that leaves the market (sold, delisted) re-arms its
  thresholds, so their pairs become forgettable too.
- **Slots**: "at most N per day" is N claimable ids ``cap|<rule>|<day>|0 .. N-1``; an alert takes
  the first free one, and none left means the cap is reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from fragmenty_alerts.batcher import LINGER_BESIDE_S, ROUNDS_ON_THE_WAY_OUT, WriteBatcher
from fragmenty_alerts.rules import Rule
from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_shared.contracts import EventType, PriceEvent
from fragmenty_shared.filters import event_price
from fragmenty_shared.storage import duplicate_positions, listing_id

logger = logging.getLogger(__name__)

# How far back a redelivered event looks for a link it made before a crash.
MAX_LINKS_WALKED_BACK = 50
MAX_SLOT_COUNTERS = 100_000
# Links, slots and attempt claims older than this are pruned.
CHAIN_WINDOW = timedelta(days=2)
# A pair is forgotten once it last fired this long ago (and its state says nothing more):
# longer than CHAIN_WINDOW, so its chain's links are gone and the next chain starts at link 1.
FORGET_AFTER = timedelta(days=3)
# What this instance remembers of a pair is used this long, then the head is read again: well
# within CHAIN_WINDOW, the life of a reset link, so a remembered old end always meets its reset.
KNOWN_FOR_S = 3600.0
FORGET_BATCH = 500
LEFT_THE_MARKET = frozenset({EventType.SOLD, EventType.DELISTED})


@dataclass(frozen=True, slots=True)
class ChainState:
    seq: int = 0
    armed: bool = True
    last_fire_at: datetime | None = None
    event_id: str | None = None
    fired: bool = False  # whether the link that made this state was a firing


def chain_key(rule: Rule, event: PriceEvent) -> str:
    return f"{rule.rule_id}|{listing_id(event.asset, event.slug)}"


def fire_allows(rule: Rule, state: ChainState, event: PriceEvent) -> bool:
    """Whether ``rule`` may fire for ``event`` given the pair's state (the rule matched)."""
    return allows_at(rule, state, event.occurred_at)


def allows_at(rule: Rule, state: ChainState, moment: datetime) -> bool:
    """Whether the pair's state lets ``rule`` fire for an event at ``moment``."""
    if rule.threshold is not None and not state.armed:
        rearm_after = rule.threshold.rearm_after_s
        due = (
            rearm_after is not None
            and state.last_fire_at is not None
            and moment - state.last_fire_at >= timedelta(seconds=rearm_after)
        )
        if not due:
            return False
    cooldown = rule.spec.cooldown
    return not (
        cooldown
        and state.last_fire_at is not None
        and moment - state.last_fire_at < timedelta(seconds=cooldown)
    )


def rearm_applies(rule: Rule, state: ChainState, event: PriceEvent) -> bool:
    """Whether ``event`` moves a fired threshold back past its re-arm level, or takes its
    listing off the market (a later listing of the number or username starts armed)."""
    if rule.threshold is None or state.armed:
        return False
    if event.type in LEFT_THE_MARKET:
        return True
    if event.new is None:
        return False
    price = event_price(event)
    return price is not None and rule.threshold.rearms(price)


def _link_document(key: str, rule: Rule, state: ChainState, at: datetime) -> Document:
    return {
        "_id": f"{key}|{state.seq}",
        "key": key,
        "rule_id": rule.rule_id,
        "armed": state.armed,
        "last_fire_at": state.last_fire_at,
        "event_id": state.event_id,
        "fired": state.fired,
        "at": at,
    }


def _reset_document(key: str, rule_id: str, state: ChainState, at: datetime) -> Document:
    """The link after ``state`` that says: the pair was forgotten, its chain starts over."""
    return {
        "_id": f"{key}|{state.seq + 1}",
        "key": key,
        "rule_id": rule_id,
        "reset": state.event_id,  # which end it closes (see _following)
        "armed": True,
        "last_fire_at": None,
        "event_id": None,
        "fired": False,
        "at": at,
    }


def _seq_of(document: Document) -> int:
    return int(str(document["_id"]).rsplit("|", 1)[1])


def _following(state: ChainState, link: Document) -> ChainState:
    """The pair's state after ``link``, the link that follows ``state``."""
    if "reset" in link:
        if link["reset"] == state.event_id:
            return ChainState()  # the pair was forgotten: start over, as without a head
        # The reset of an earlier chain of this pair, still in the window, where the new chain
        # has grown to: it changes nothing, the chain goes on after it.
        return replace(state, seq=_seq_of(link))
    return _state_of(link)


def _state_of(document: Document) -> ChainState:
    return ChainState(
        seq=_seq_of(document),
        armed=bool(document["armed"]),
        last_fire_at=document.get("last_fire_at"),
        event_id=document.get("event_id"),
        fired=bool(document.get("fired")),
    )


def _head_state(head: Document) -> ChainState:
    # _state_of reads the seq from a link's id (``key|seq``); a head is under the pair's key
    # and keeps its seq as a field.
    return _state_of({**head, "_id": f"{head['_id']}|{head['seq']}"})


class Chains:
    """The (rule, listing) chains, with what this instance last knew of each."""

    def __init__(self, store: AlertsStore) -> None:
        self._store = store
        self._links = WriteBatcher(store.links, rounds_in_flight=ROUNDS_ON_THE_WAY_OUT)
        self._heads = WriteBatcher(store.heads, linger_s=LINGER_BESIDE_S)
        self._head_writes: set[asyncio.Task[None]] = set()
        # What this instance last knew of each pair, and when it learnt it (monotonic).
        self._known: dict[str, tuple[ChainState, float]] = {}
        # Pairs whose threshold fired and has not re-armed: events for these listings are
        # checked for a re-arm even when the rule does not match them (the price moved away).
        self.disarmed: dict[str, set[str]] = {}

    async def _current(self, key: str) -> ChainState:
        known = self._known.get(key)
        if known is not None and time.monotonic() - known[1] < KNOWN_FOR_S:
            return known[0]
        head = await self._store.heads.find_one({"_id": key})
        return _head_state(head) if head else ChainState()

    async def fire(self, rule: Rule, event: PriceEvent, *, redelivered: bool) -> bool:
        """Try to fire ``rule`` for ``event``: True when this event fires it (now or before)."""
        key = chain_key(rule, event)
        state = await self._current(key)
        if redelivered and await self._fired_before(key, state, event):
            return True
        while True:
            if state.event_id == event.event_id:
                return state.fired
            if not fire_allows(rule, state, event):
                return False
            wanted = ChainState(
                seq=state.seq + 1,
                armed=rule.threshold is None,
                last_fire_at=event.occurred_at,
                event_id=event.event_id,
                fired=True,
            )
            won, state = await self._advance(key, rule, state, wanted)
            if won:
                return True

    async def rearm(self, rule: Rule, event: PriceEvent) -> None:
        """Re-arm the pair if ``event`` moved the price back past the re-arm level."""
        key = chain_key(rule, event)
        state = await self._current(key)
        while rearm_applies(rule, state, event):
            wanted = replace(
                state, seq=state.seq + 1, armed=True, event_id=event.event_id, fired=False
            )
            won, state = await self._advance(key, rule, state, wanted)
            if won:
                return

    async def _advance(
        self, key: str, rule: Rule, state: ChainState, wanted: ChainState
    ) -> tuple[bool, ChainState]:
        now = wanted.last_fire_at or datetime.now().astimezone()
        if await self._links.insert(_link_document(key, rule, wanted, now)):
            self._remember(key, rule, wanted)
            # The head is a hint (the links are the truth): it need not hold the alert up.
            write = asyncio.create_task(
                self._heads.apply(
                    UpdateOne(
                        {"_id": key}, {"$set": self._head_fields(rule, key, wanted)}, upsert=True
                    )
                )
            )
            self._head_writes.add(write)
            write.add_done_callback(self._head_writes.discard)
            return True, wanted
        taken = await self._store.links.find_one({"_id": f"{key}|{wanted.seq}"})
        newer = _following(state, taken) if taken else replace(state, seq=wanted.seq)
        self._remember(key, rule, newer)
        return False, newer

    async def _fired_before(self, key: str, state: ChainState, event: PriceEvent) -> bool:
        """After a crash: did an earlier attempt of this event already fire the pair?

        Walks the links back from the newest while they are not older than the event. Only
        redelivered events pay for it.
        """
        # The head may lag: find the real end of the chain first.
        while (
            ahead := await self._store.links.find_one({"_id": f"{key}|{state.seq + 1}"})
        ) is not None:
            state = _following(state, ahead)
        seq = state.seq
        for back in range(seq, max(0, seq - MAX_LINKS_WALKED_BACK), -1):
            link = await self._store.links.find_one({"_id": f"{key}|{back}"})
            if link is None:
                break
            if link.get("event_id") == event.event_id and link.get("fired"):
                return True
            fired_at = link.get("last_fire_at")
            if fired_at is not None and fired_at < event.occurred_at:
                break
        return False

    def _head_fields(self, rule: Rule, key: str, state: ChainState) -> dict[str, Any]:
        return {
            "seq": state.seq,
            "armed": state.armed,
            "last_fire_at": state.last_fire_at,
            "event_id": state.event_id,
            "fired": state.fired,
            "rule_id": rule.rule_id,
            "listing_id": key.split("|", 1)[1],
        }

    def _remember(self, key: str, rule: Rule, state: ChainState) -> None:
        self._known[key] = (state, time.monotonic())
        listing = key.split("|", 1)[1]
        if state.armed:
            pairs = self.disarmed.get(listing)
            if pairs is not None:
                pairs.discard(rule.rule_id)
                if not pairs:
                    del self.disarmed[listing]
        elif rule.threshold is not None:
            self.disarmed.setdefault(listing, set()).add(rule.rule_id)

    async def load_disarmed(self) -> None:
        """Learn the pairs other instances disarmed (their re-arm events may come here).

        What this instance knows of a pair itself is at least as new as the head documents
        (heads are written after the links), so it wins over them.
        """
        disarmed: dict[str, set[str]] = {}
        projection = {"rule_id": 1, "listing_id": 1, "seq": 1}
        async for head in self._store.heads.find({"armed": False}, projection):
            known = self._known.get(str(head["_id"]))
            if known is None or known[0].seq <= int(head["seq"]):
                disarmed.setdefault(head["listing_id"], set()).add(head["rule_id"])
        for key, (state, _) in self._known.items():
            rule_id, listing = key.split("|", 1)
            if state.armed:
                pairs = disarmed.get(listing)
                if pairs is not None:
                    pairs.discard(rule_id)
            elif self.disarmed.get(listing, set()) & {rule_id}:
                disarmed.setdefault(listing, set()).add(rule_id)
        self.disarmed = {listing: pairs for listing, pairs in disarmed.items() if pairs}

    async def forget(self, rule_of: Callable[[str], Rule | None], now: datetime) -> int:
        """Forget the pairs whose state no longer matters; returns how many were forgotten.

        A pair is forgotten when it last fired more than FORGET_AFTER ago and its state lets any
        event from ``now`` on fire (cooldown over; threshold armed or due to re-arm), or its
        rule is gone (``rule_of`` answers None). Each is closed with a reset link first (see the
        module's docstring); a pair whose reset is refused moved on meanwhile and stays.
        """
        # This instance's head writes still on their way: a head written after it was read
        # here would come back after being forgotten (stale, if harmless: links are the truth).
        await asyncio.gather(*list(self._head_writes), return_exceptions=True)
        cutoff = now - FORGET_AFTER
        learnt_before = time.monotonic() - KNOWN_FOR_S
        self._known = {key: known for key, known in self._known.items() if known[1] > learnt_before}
        quiet: list[Document] = []
        async for head in self._store.heads.find({"last_fire_at": {"$lt": cutoff}}):
            rule = rule_of(str(head["rule_id"]))
            state = _head_state(head)
            if rule is None or allows_at(rule, state, now):
                quiet.append(head)
        forgotten = 0
        for start in range(0, len(quiet), FORGET_BATCH):
            forgotten += await self._reset(quiet[start : start + FORGET_BATCH], now, cutoff)
        return forgotten

    async def _reset(self, heads: list[Document], now: datetime, cutoff: datetime) -> int:
        resets = [
            _reset_document(
                str(head["_id"]),
                str(head["rule_id"]),
                _head_state(head),
                now,
            )
            for head in heads
        ]
        refused: set[int] = set()
        try:
            await self._store.links.insert_many(resets, ordered=False)
        except BulkWriteError as error:
            duplicates = duplicate_positions(error)
            if duplicates is None:
                raise
            refused = duplicates
        # A refused reset may be this very reset, inserted by a pruner that stopped before it
        # deleted the head (or another pruning at once): then the head is closed all the same.
        positions = {resets[position]["_id"]: position for position in refused}
        if positions:
            async for link in self._store.links.find({"_id": {"$in": list(positions)}}):
                position = positions[link["_id"]]
                if "reset" in link and link["reset"] == resets[position]["reset"]:
                    refused.discard(position)
        closed = [head for position, head in enumerate(heads) if position not in refused]
        if not closed:
            return 0
        # Guarded by the age: a head rewritten meanwhile (a new chain's) stays.
        await self._store.heads.delete_many(
            {"_id": {"$in": [head["_id"] for head in closed]}, "last_fire_at": {"$lt": cutoff}}
        )
        for head in closed:
            self._known.pop(str(head["_id"]), None)
            pairs = self.disarmed.get(str(head["listing_id"]))
            if pairs is not None:
                pairs.discard(str(head["rule_id"]))
                if not pairs:
                    del self.disarmed[str(head["listing_id"])]
        return len(closed)


class Slots:
    """Counted claims: at most ``limit`` per prefix (a rule's day, an account's minute)."""

    def __init__(self, store: AlertsStore) -> None:
        self._store = store
        self._claims = WriteBatcher(store.slots, rounds_in_flight=ROUNDS_ON_THE_WAY_OUT)
        self._next: dict[str, int] = {}

    async def take(self, prefix: str, limit: int, *, event_id: str, at: datetime) -> bool:
        if len(self._next) > MAX_SLOT_COUNTERS:
            # The counters are hints of where to start claiming: forgetting them costs a few
            # duplicate-key answers, never a wrong count.
            self._next.clear()
        while (number := self._next.get(prefix, 0)) < limit:
            # Taken before the insert is awaited, so that this instance's concurrent takers try
            # different slots instead of racing for one (each lost race is another round trip).
            self._next[prefix] = number + 1
            document = {"_id": f"{prefix}|{number}", "event_id": event_id, "at": at}
            try:
                claimed = await self._claims.insert(document)
            except Exception:
                # Not claimed (the database is away): the next taker tries this slot again.
                self._next[prefix] = min(self._next.get(prefix, number), number)
                raise
            if claimed:
                return True
        return False
