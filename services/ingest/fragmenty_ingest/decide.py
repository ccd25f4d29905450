"""The ingest decision: is this observation a change, and which events does it make?

Pure functions over plain data (no I/O, no clock): given the last known state of a listing and a
new observation, return the new state, the events, and whether the stored listing must be
written. The same inputs always give the same outputs, and event ids come from
:func:`~fragmenty_shared.contracts.make_event_id`, so a replay yields the same ids.

Rules, in order:

- first sighting: ``listed`` (or ``sold`` when first seen in the sold view);
- an observation older than the last one applied changes nothing (no rollback);
- a delisted listing seen again: ``listed`` again (``sold`` if it reappears as sold);
- status to ``sold``: ``sold``; any other status change: ``status_changed``;
- same status: ``price_changed`` (with ``change_pct``) when the price moved; ``auction_extended``
  when an auction's end moved later; a sold listing with a later sale date: ``sold`` (a resale);
- anything else that differs (title, url, item page details, sale expiry) is written silently;
- the USD price and the TON rate alone are not a change: they move with the exchange rate on
  every crawl, and writing every listing each time would make a quiet market expensive.

Delisting is decided per crawl by :func:`decide_census`, only for views that were complete
and that ingest saw in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from fragmenty_ingest.state import (
    ListingState,
    details_digest,
    observed_details,
    optional_stored_time,
    state_from_observation,
    to_stored_time,
)
from fragmenty_shared.contracts import (
    CensusCompleted,
    EventType,
    ListingObserved,
    ListingStatus,
    PriceEvent,
    make_event_id,
)
from fragmenty_shared.money import to_nanoton


@dataclass(frozen=True, slots=True)
class ListingDecision:
    """What one observation does to a listing."""

    state: ListingState | None  # the state afterwards (None only when there was none and is none)
    events: tuple[PriceEvent, ...] = ()
    write: bool = False  # the stored listing must be updated


def decide_observation(
    previous: ListingState | None, observation: ListingObserved
) -> ListingDecision:
    """The state and events after ``observation``, given the listing's last known state."""
    observed_at = to_stored_time(observation.observed_at)
    if previous is None:
        state = state_from_observation(observation, previous=None)
        first_type = EventType.SOLD if state.status is ListingStatus.SOLD else EventType.LISTED
        return ListingDecision(state, (_event(first_type, None, state, observation),), write=True)

    if observed_at < previous.observed_at:
        return ListingDecision(previous)  # out of order: an older view never rolls state back

    if _plainly_unchanged(previous, observation):  # a quiet market: no new state to build
        return ListingDecision(replace(previous, observed_at=observed_at))

    candidate = state_from_observation(observation, previous=previous)
    if previous.delisted_at is not None:
        relisted_type = (
            EventType.SOLD if candidate.status is ListingStatus.SOLD else EventType.LISTED
        )
        event = _event(relisted_type, previous, candidate, observation)
        return ListingDecision(candidate, (event,), write=True)

    event_types = _event_types(previous, candidate)
    if event_types:
        events = tuple(_event(kind, previous, candidate, observation) for kind in event_types)
        return ListingDecision(candidate, events, write=True)

    if _differs_silently(previous, candidate, observation):
        # Keep the time of the last *event* as changed_at; a silent fix is not market news.
        return ListingDecision(replace(candidate, changed_at=previous.changed_at), write=True)
    return ListingDecision(replace(previous, observed_at=max(previous.observed_at, observed_at)))


def _plainly_unchanged(previous: ListingState, observation: ListingObserved) -> bool:
    """The common repeat, told without building a candidate state (the rules below agree).

    Same status, price, end and sale times, title and url, no item page details, and the
    listing is not delisted: no event, nothing written silently.
    """
    return (
        previous.delisted_at is None
        and observation.details is None
        and observation.status is previous.status
        and observation.title == previous.title
        and observation.url == previous.url
        and to_nanoton(observation.price_ton) == previous.price_nanoton
        and optional_stored_time(observation.ends_at) == previous.ends_at
        and optional_stored_time(observation.sold_at) == previous.sold_at
    )


def _event_types(previous: ListingState, current: ListingState) -> list[EventType]:
    if current.status is not previous.status:
        if current.status is ListingStatus.SOLD:
            return [EventType.SOLD]
        return [EventType.STATUS_CHANGED]
    types: list[EventType] = []
    if current.status is ListingStatus.SOLD:
        if current.sold_at is not None and (
            previous.sold_at is None or current.sold_at > previous.sold_at
        ):
            return [EventType.SOLD]  # sold again since we last looked
        if current.price_nanoton != previous.price_nanoton:
            types.append(EventType.PRICE_CHANGED)
        return types
    if current.price_nanoton != previous.price_nanoton:
        types.append(EventType.PRICE_CHANGED)
    if (
        current.status is ListingStatus.AUCTION
        and current.ends_at is not None
        and previous.ends_at is not None
        and current.ends_at > previous.ends_at
    ):
        types.append(EventType.AUCTION_EXTENDED)
    return types


def _differs_silently(
    previous: ListingState, current: ListingState, observation: ListingObserved
) -> bool:
    observed_digest = details_digest(observed_details(observation))
    return (
        previous.title != current.title
        or previous.url != current.url
        or previous.ends_at != current.ends_at
        or previous.sold_at != current.sold_at
        or (observed_digest is not None and observed_digest != previous.details_digest)
    )


def change_pct(old_nanoton: int, new_nanoton: int) -> float | None:
    """The price change in percent (up positive, down negative); None from a zero price."""
    if old_nanoton == 0:
        return None
    return round((new_nanoton - old_nanoton) * 100 / old_nanoton, 4)


def _event(
    event_type: EventType,
    previous: ListingState | None,
    current: ListingState,
    observation: ListingObserved,
) -> PriceEvent:
    pct = None
    if previous is not None and event_type in (
        EventType.PRICE_CHANGED,
        EventType.STATUS_CHANGED,
        EventType.SOLD,
    ):
        pct = change_pct(previous.price_nanoton, current.price_nanoton)
    return PriceEvent(
        event_id=make_event_id(current.asset, current.slug, event_type, observation.observed_at),
        type=event_type,
        asset=current.asset,
        slug=current.slug,
        title=current.title,
        occurred_at=observation.observed_at,
        old=previous.snapshot() if previous is not None else None,
        new=current.snapshot(),
        change_pct=pct,
        memorability=current.memorability,
        tags=list(current.tags),
    )


# --- delisting ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrawlSighting:
    """What ingest itself saw of one crawl: listing ids, and slugs per (asset, status) view."""

    listing_ids: frozenset[str]
    slugs_by_view: Mapping[tuple[str, str], frozenset[str]]


@dataclass(frozen=True, slots=True)
class CensusDecision:
    delisted: tuple[tuple[ListingState, PriceEvent], ...]
    views_delisted_from: tuple[tuple[str, str], ...]  # (asset, status) views that could delist
    views_not_trusted: tuple[tuple[str, str], ...]  # complete views ingest did not see in full


# Sold listings stay sold: leaving the sold view (it only shows recent sales) is not a delisting.
_DELISTABLE = frozenset({ListingStatus.AUCTION, ListingStatus.SALE})


def decide_census(
    states: Iterable[ListingState],
    census: CensusCompleted,
    sighting: CrawlSighting,
) -> CensusDecision:
    """``delisted`` events for listings missing from views that were complete and fully seen.

    A view counts only if the crawler says it was complete *and* ingest saw at least as many
    distinct listings of it in this crawl as the crawler published. The second condition fails
    when ingest restarted mid-crawl (the observations acked before the restart are not in its
    memory), so an incomplete picture never turns "not seen" into "gone".
    """
    trusted: set[tuple[str, str]] = set()
    untrusted: list[tuple[str, str]] = []
    for view in census.views:
        key = (view.asset.value, view.status.value)
        if not view.complete or view.status not in _DELISTABLE:
            continue
        if len(sighting.slugs_by_view.get(key, frozenset())) >= view.rows:
            trusted.add(key)
        else:
            untrusted.append(key)
    started_at = to_stored_time(census.started_at)
    delisted_at = to_stored_time(census.completed_at)
    delisted: list[tuple[ListingState, PriceEvent]] = []
    for state in states:
        if (
            state.delisted_at is None
            and (state.asset.value, state.status.value) in trusted
            and state.listing_id not in sighting.listing_ids
            and state.observed_at < started_at  # seen after the crawl began: not missing
        ):
            after = replace(
                state,
                delisted_at=delisted_at,
                changed_at=delisted_at,
                observed_at=max(state.observed_at, delisted_at),
            )
            event = PriceEvent(
                event_id=make_event_id(
                    state.asset, state.slug, EventType.DELISTED, census.completed_at
                ),
                type=EventType.DELISTED,
                asset=state.asset,
                slug=state.slug,
                title=state.title,
                occurred_at=census.completed_at,
                old=state.snapshot(),
                new=None,
                memorability=state.memorability,
                tags=list(state.tags),
            )
            delisted.append((after, event))
    return CensusDecision(
        delisted=tuple(delisted),
        views_delisted_from=tuple(sorted(trusted)),
        views_not_trusted=tuple(untrusted),
    )
