"""The database schema as code: every collection, what its documents hold, its indexes, its growth.

One declaration for the writers (ingest; the alerts service for its own ``alert_*``
collections) and every reader (api, notifier, alerts, valuation, crawler). docs/storage.md explains the choices; this module is what they are.

The rule the design follows: **no hot query touches a collection or document whose size grows
with all the history ever recorded.** FerretDB 1.x scans the whole collection for every query,
``_id`` lookups included, and MongoDB needs an index for each; so every collection is one of:

- ``MARKET``: one document per listing (or per listing in a partition), bounded by the market;
- ``WINDOW``: a recent window whose size a setting bounds (the newest events);
- ``PER_DAY``: a few small documents per calendar day (rollups): thousands after years;
- ``ARCHIVE``: grows without bound, but holds history in bulk documents that only cold reads
  (old cursors, listings with very long histories) touch, by key;
- ``FIXED``: a handful of documents (counters);
- ``TRANSIENT``: drained in normal operation (the outbox);
- ``ACCOUNTS``: bounded by the alerts service's accounts and their limits (rules, channels).

Every document has a deterministic ``_id``, so every write is idempotent or guarded.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from enum import StrEnum

from pymongo import ASCENDING, DESCENDING, IndexModel


class Growth(StrEnum):
    MARKET = "bounded by the market"
    WINDOW = "bounded by a recent window"
    PER_DAY = "a few documents per day"
    ARCHIVE = "unbounded, in bulk documents; cold reads by key only"
    FIXED = "a handful of documents"
    TRANSIENT = "drained in normal operation"
    ACCOUNTS = "bounded by the accounts and their limits"


class Collections:
    """Collection names, in one place."""

    LISTINGS = "listings"  # current state of each listing
    EVENT_LOG = "event_log"  # the newest events, one document per ingest batch (a window)
    EVENT_ARCHIVE = "event_archive"  # older events, in blocks of consecutive positions
    HISTORY_ARCHIVE = "history_archive"  # listings' older history rows, in bulk
    OUTBOX = "outbox"  # events not yet confirmed by the broker; deleted once published
    CENSUS = "census"  # one document per crawl: which views it covered, complete or not
    DAILY_ROLLUPS = "daily_rollups"  # per UTC day, asset and status: counts, volume, range
    DAILY_CLOSE = "daily_close"  # per UTC day and asset: the listed market at its last batch
    INGEST_META = "ingest_meta"  # counters: the event position, the first census
    # Before schema 2 (``fragmenty-ingest migrate`` moves them into the collections above).
    LEGACY_EVENTS = "events"
    LEGACY_PRICE_HISTORY = "price_history"


class AlertCollections:
    """The alerts service's collections (it alone writes them; see ALERT_COLLECTIONS)."""

    ACCOUNTS = "alert_accounts"
    API_KEYS = "alert_api_keys"
    RULES = "alert_rules"
    CHANNELS = "alert_channels"
    META = "alert_meta"
    LINKS = "alert_links"
    HEADS = "alert_heads"
    SLOTS = "alert_slots"
    OUTBOX = "alert_outbox"
    DELIVERIES = "alert_deliveries"
    DELIVERY_ARCHIVE = "alert_delivery_archive"
    ATTEMPTS = "alert_attempts"
    DIGEST_ITEMS = "alert_digest_items"
    FEED = "alert_feed"


# A listing's history lives in one of these partitions, in one document per listing: a
# partition holds 1/HISTORY_PARTITIONS of the listings, and each document at most
# ``HISTORY_ROWS_PER_LISTING`` rows, so reading one listing's history touches a bounded set.
HISTORY_PARTITIONS = 64
HISTORY_PREFIX = "listing_history_"
SCHEMA_VERSION = 2

# ingest_meta documents (``_id``; each holds ``value``).
SEQ_COUNTER_ID = "event_seq"  # the highest event position reserved so far
FIRST_OBSERVED_ID = "first_observed"  # the earliest change ingest recorded (occurred_at)
SCHEMA_VERSION_ID = "schema_version"  # what ``fragmenty-ingest migrate`` last completed


def history_collection(listing_id: str) -> str:
    """The partition that holds ``listing_id``'s history (stable across processes and versions)."""
    return f"{HISTORY_PREFIX}{zlib.crc32(listing_id.encode()) % HISTORY_PARTITIONS:02d}"


def history_collections() -> list[str]:
    return [f"{HISTORY_PREFIX}{number:02d}" for number in range(HISTORY_PARTITIONS)]


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    growth: Growth
    key: str  # what ``_id`` is
    holds: str  # one document per ...
    indexes: tuple[IndexModel, ...] = field(default=())


def _index(*keys: tuple[str, int]) -> IndexModel:
    return IndexModel(list(keys))


COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec(
        Collections.LISTINGS,
        Growth.MARKET,
        "<asset>:<slug>",
        "listing, its current state and its last prices (recent_prices)",
        # The crawler's prior state and the notifier's legacy lists filter by asset.
        (_index(("asset", ASCENDING), ("status", ASCENDING)),),
    ),
    CollectionSpec(
        f"{HISTORY_PREFIX}NN",
        Growth.MARKET,
        "<asset>:<slug>",
        f"listing: its newest history rows (at most a setting), {HISTORY_PARTITIONS} partitions",
    ),
    CollectionSpec(
        Collections.HISTORY_ARCHIVE,
        Growth.ARCHIVE,
        "<asset>:<slug>:<first seq>",
        "block of a listing's older history rows; named on its history document",
    ),
    CollectionSpec(
        Collections.EVENT_LOG,
        Growth.WINDOW,
        "first seq of the block",
        "ingest batch: its events (a BSON blob) with first_seq, last_seq",
        (_index(("last_seq", ASCENDING)),),
    ),
    CollectionSpec(
        Collections.EVENT_ARCHIVE,
        Growth.ARCHIVE,
        "first seq of the block",
        "block of older events (a BSON blob) with first_seq, last_seq",
        (_index(("last_seq", ASCENDING)),),
    ),
    CollectionSpec(
        Collections.OUTBOX,
        Growth.TRANSIENT,
        "first event id of the batch",
        "batch whose events are not yet confirmed published",
    ),
    CollectionSpec(
        Collections.CENSUS,
        Growth.ARCHIVE,
        "crawl id",
        "crawl: views covered, complete or not, what was delisted (an audit trail)",
        (_index(("completed_at", DESCENDING)),),
    ),
    CollectionSpec(
        Collections.DAILY_ROLLUPS,
        Growth.PER_DAY,
        "<YYYY-MM-DD>:<asset>:<status>",
        "UTC day, asset and status: counts, sold volume by sold_at day, price range",
    ),
    CollectionSpec(
        Collections.DAILY_CLOSE,
        Growth.PER_DAY,
        "<YYYY-MM-DD>:<asset>",
        "UTC day and asset: count, floor and median of listed prices at its last batch",
        (_index(("asset", ASCENDING), ("day", DESCENDING)),),  # the close before a range
    ),
    CollectionSpec(
        Collections.INGEST_META,
        Growth.FIXED,
        "counter name",
        "counter: the event position reserved so far, the first census, the schema version",
    ),
)


# The alerts service's collections. Shared state between its instances is kept by unique-key
# inserts (claims), so most of these are keyed by what they claim.
ALERT_COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec(AlertCollections.ACCOUNTS, Growth.ACCOUNTS, "acc_...", "account"),
    CollectionSpec(
        AlertCollections.API_KEYS, Growth.ACCOUNTS, "SHA-256 of the key (hex)", "key: account_id"
    ),
    CollectionSpec(
        AlertCollections.RULES,
        Growth.ACCOUNTS,
        "rl_...",
        "rule: account_id, spec, feed_token (at most the rule limit per account)",
        (_index(("account_id", ASCENDING)),),
    ),
    CollectionSpec(
        AlertCollections.CHANNELS,
        Growth.ACCOUNTS,
        "ch_...",
        "channel: account_id, kind, url or chat, enabled (at most the channel limit per account)",
        # An account's channels; the Telegram bot's lookup of a chat's channel.
        (_index(("account_id", ASCENDING)), _index(("kind", ASCENDING), ("chat_id", ASCENDING))),
    ),
    CollectionSpec(
        AlertCollections.META,
        Growth.FIXED,
        '"config", "telegram-link|<code>"',
        "the configuration version (reload signal); a Telegram link code",
    ),
    CollectionSpec(
        AlertCollections.LINKS,
        Growth.WINDOW,
        "<rule>|<listing>|<n>",
        "state change of a (rule, listing) chain: armed, last fire; pruned after two days",
        (_index(("at", ASCENDING)),),
    ),
    CollectionSpec(
        AlertCollections.HEADS,
        Growth.WINDOW,
        "<rule>|<listing>",
        "(rule, listing) pair whose state still matters: the newest link known (a hint); "
        "forgotten once it last fired three days ago and its cooldown and threshold let any "
        "event fire (a listing leaving the market re-arms), or its rule is gone",
        # Re-arm: the pairs not armed; pruning: the pairs that last fired long ago.
        (_index(("armed", ASCENDING)), _index(("last_fire_at", ASCENDING))),
    ),
    CollectionSpec(
        AlertCollections.SLOTS,
        Growth.WINDOW,
        "cap|<rule>|<day>|<n>, rate|<account>|<minute>|<n>",
        "claimed slot of a daily cap or per-minute limit; pruned after two days",
        (_index(("at", ASCENDING)),),
    ),
    CollectionSpec(
        AlertCollections.OUTBOX,
        Growth.TRANSIENT,
        "delivery id (rule, event, channel)",
        "delivery not yet done: what to send, where, when to try next",
        (_index(("next_attempt_at", ASCENDING)),),
    ),
    CollectionSpec(
        AlertCollections.DELIVERIES,
        Growth.WINDOW,
        "<delivery id>~<attempt>",
        "delivery attempt with its outcome (the recent delivery log), inserted once and never "
        "updated, into alert_deliveries_<slot> (20 s of attempts each; sealed and archived "
        "whole a little after the slot ended); this bare name declares their indexes",
        (
            # An account's log, newest first (and with a status); a delivery's newest attempt
            # (a retry numbers its replay after it).
            _index(("account_id", ASCENDING), ("finished_at", DESCENDING), ("_id", DESCENDING)),
            _index(
                ("account_id", ASCENDING),
                ("status", ASCENDING),
                ("finished_at", DESCENDING),
                ("_id", DESCENDING),
            ),
            _index(("delivery_id", ASCENDING), ("attempt", DESCENDING)),
        ),
    ),
    CollectionSpec(
        AlertCollections.DELIVERY_ARCHIVE,
        Growth.ARCHIVE,
        "<id of its first entry>#<digest of its ids>",
        "block of up to 500 consecutive entries of an archived slot of the delivery log (a "
        "BSON blob) with first, first_id, last (finished_at), the accounts, ids and "
        "deliveries it holds; pruned after the retention setting",
        (
            # Pages past the recent log; a retry of an archived attempt, the attempts of a
            # delivery; pruning by age.
            _index(("accounts", ASCENDING), ("last", DESCENDING)),
            _index(("ids", ASCENDING)),
            _index(("deliveries", ASCENDING)),
            _index(("last", ASCENDING)),
        ),
    ),
    CollectionSpec(
        AlertCollections.ATTEMPTS,
        Growth.WINDOW,
        "<delivery id>~<attempt>",
        "claim of an attempt taken up by a poll (a retry, a stopped sender's work); pruned "
        "after two days",
        (_index(("at", ASCENDING)),),
    ),
    CollectionSpec(
        AlertCollections.DIGEST_ITEMS,
        Growth.TRANSIENT,
        "<rule>|<period>|<event>",
        "event waiting for its rule's digest; deleted when the period is sent",
        (_index(("period_end", ASCENDING)),),
    ),
    CollectionSpec(
        AlertCollections.FEED,
        Growth.WINDOW,
        "<rule>|<event>",
        "Atom feed entry of a rule; pruned after the retention setting",
        (_index(("rule_id", ASCENDING), ("at", ASCENDING)),),
    ),
)


def spec(name: str) -> CollectionSpec:
    for candidate in COLLECTIONS + ALERT_COLLECTIONS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


@dataclass(frozen=True)
class HotQuery:
    """A query some service runs on a hot path, and what serves it on each server.

    docs/storage.md lists these; a test runs ``explain`` on each where a real MongoDB is
    reachable and fails on a collection scan.
    """

    who: str
    collection: str  # a name of COLLECTIONS (a partition: its first)
    filter: dict[str, object]
    sort: tuple[tuple[str, int], ...] = ()
    index: str = "_id"  # what serves it on MongoDB
    bounded_by: Growth = Growth.MARKET  # what bounds what it touches on FerretDB


HOT_QUERIES: tuple[HotQuery, ...] = (
    HotQuery(
        "api: the listings of live events that arrived together",
        Collections.LISTINGS,
        {"_id": {"$in": ["number:1"]}},
    ),
    HotQuery(
        "api: listing detail and page, valuation: the history",
        f"{HISTORY_PREFIX}00",
        {"_id": "number:1"},
    ),
    HotQuery(
        "api /events?since=, notifier resume and recovery",
        Collections.EVENT_LOG,
        {"last_seq": {"$gt": 1}},
        (("_id", ASCENDING),),
        index="last_seq",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "api /events (latest), the newest position",
        Collections.EVENT_LOG,
        {},
        (("_id", DESCENDING),),
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "api /stats/market, market page: the range's closes and sales",
        Collections.DAILY_CLOSE,
        {"_id": {"$in": ["2026-11-20:number"]}},
        bounded_by=Growth.PER_DAY,
    ),
    HotQuery(
        "api /stats/market: the close before the range",
        Collections.DAILY_CLOSE,
        {"asset": "number", "day": {"$lt": "2026-11-20"}},
        (("day", DESCENDING),),
        index="asset, day",
        bounded_by=Growth.PER_DAY,
    ),
    HotQuery(
        "ingest batch: the touched rollups; api stats: the range's sales",
        Collections.DAILY_ROLLUPS,
        {"_id": {"$in": ["2026-11-20:number:sold"]}},
        bounded_by=Growth.PER_DAY,
    ),
    HotQuery(
        "ingest batch: the touched histories",
        f"{HISTORY_PREFIX}00",
        {"_id": {"$in": ["number:1"]}},
    ),
    HotQuery(
        "ingest batch: a listing's update, relay: is it newer",
        Collections.LISTINGS,
        {"_id": {"$in": ["number:1"]}},
    ),
    HotQuery(
        "ingest batch: blocks leaving the window",
        Collections.EVENT_LOG,
        {"_id": {"$in": [1]}},
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "ingest: reserve positions, first observation",
        Collections.INGEST_META,
        {"_id": SEQ_COUNTER_ID},
        bounded_by=Growth.FIXED,
    ),
    HotQuery(
        "ingest relay: the leftover outbox",
        Collections.OUTBOX,
        {},
        (("_id", ASCENDING),),
        bounded_by=Growth.TRANSIENT,
    ),
    HotQuery(
        "crawler prior state, notifier legacy lists: one asset's listings",
        Collections.LISTINGS,
        {"asset": "number", "delisted_at": None},
        index="asset, status",
    ),
    HotQuery(
        "alerts api: the account of an API key",
        AlertCollections.API_KEYS,
        {"_id": "0" * 64},
        bounded_by=Growth.ACCOUNTS,
    ),
    HotQuery(
        "alerts api and bot: an account's rules",
        AlertCollections.RULES,
        {"account_id": "acc_1"},
        index="account_id",
        bounded_by=Growth.ACCOUNTS,
    ),
    HotQuery(
        "alerts api: an account's channels",
        AlertCollections.CHANNELS,
        {"account_id": "acc_1"},
        index="account_id",
        bounded_by=Growth.ACCOUNTS,
    ),
    HotQuery(
        "alerts bot: a chat's channel",
        AlertCollections.CHANNELS,
        {"kind": "telegram", "chat_id": 1},
        index="kind, chat_id",
        bounded_by=Growth.ACCOUNTS,
    ),
    HotQuery(
        "alerts match: a (rule, listing) chain's head and links",
        AlertCollections.LINKS,
        {"_id": "rl_1|number:1|1"},
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts match: a (rule, listing) pair's head (unless this instance knows it)",
        AlertCollections.HEADS,
        {"_id": "rl_1|number:1"},
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts pruning: the pairs that last fired long ago (to forget)",
        AlertCollections.HEADS,
        {"last_fire_at": {"$lt": 0}},
        index="last_fire_at",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts re-arm: pairs not armed",
        AlertCollections.HEADS,
        {"armed": False},
        index="armed",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts delivery: the deliveries due",
        AlertCollections.OUTBOX,
        {"next_attempt_at": {"$lte": 0}},
        index="next_attempt_at",
        bounded_by=Growth.TRANSIENT,
    ),
    HotQuery(
        "alerts delivery: the claim of an attempt a poll found taken",
        AlertCollections.ATTEMPTS,
        {"_id": "d1~1"},
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts api: a page of an account's delivery log, newest first",
        AlertCollections.DELIVERIES,
        {"account_id": "acc_1"},
        (("finished_at", DESCENDING), ("_id", DESCENDING)),
        index="account_id, finished_at, _id",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts api: the next page of an account's delivery log (after the cursor)",
        AlertCollections.DELIVERIES,
        {
            "account_id": "acc_1",
            "$or": [{"finished_at": {"$lt": 0}}, {"finished_at": 0, "_id": {"$lt": "d~1"}}],
        },
        (("finished_at", DESCENDING), ("_id", DESCENDING)),
        index="account_id, finished_at, _id",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts api: a page of an account's delivery log with one status",
        AlertCollections.DELIVERIES,
        {"account_id": "acc_1", "status": "failed"},
        (("finished_at", DESCENDING), ("_id", DESCENDING)),
        index="account_id, status, finished_at, _id",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts api retry: the entry, and its delivery's newest attempt",
        AlertCollections.DELIVERIES,
        {"delivery_id": "d1"},
        (("attempt", DESCENDING),),
        index="delivery_id, attempt",
        bounded_by=Growth.WINDOW,
    ),
    HotQuery(
        "alerts api: a page reaching past the recent log: the newest blocks holding the account",
        AlertCollections.DELIVERY_ARCHIVE,
        {"accounts": "acc_1", "first": {"$lte": 0}},
        (("last", DESCENDING),),
        index="accounts, last",
        bounded_by=Growth.ARCHIVE,
    ),
    HotQuery(
        "alerts api retry: an archived entry, an archived delivery's attempts",
        AlertCollections.DELIVERY_ARCHIVE,
        {"ids": "d1~1"},
        index="ids",
        bounded_by=Growth.ARCHIVE,
    ),
    HotQuery(
        "alerts api retry: the blocks holding a delivery's attempts",
        AlertCollections.DELIVERY_ARCHIVE,
        {"deliveries": "d1"},
        index="deliveries",
        bounded_by=Growth.ARCHIVE,
    ),
    HotQuery(
        "alerts digest: the periods that ended",
        AlertCollections.DIGEST_ITEMS,
        {"period_end": {"$lte": 0}},
        index="period_end",
        bounded_by=Growth.TRANSIENT,
    ),
    HotQuery(
        "alerts api: a rule's Atom feed",
        AlertCollections.FEED,
        {"rule_id": "rl_1"},
        index="rule_id, at",
        bounded_by=Growth.WINDOW,
    ),
)
