"""Which events an alert may fire from: only those a complete, successful observation proves.

Ingest already guarantees the big one: a listing becomes ``delisted`` only after a complete
census of its view did not list it, so a failed or partial crawl never delists. The checks here
keep that promise for every type on the alerts side, so that an event which only a broken crawl
or a bad parse could have produced (a "price change" to the same price, a sale without a sold
state, a listing without its state) never reaches a trader.
"""

from __future__ import annotations

from fragmenty_shared.contracts import EventType, ListingStatus, PriceEvent


def refusal_reason(event: PriceEvent) -> str | None:
    """Why ``event`` must not fire alerts, or None when it may."""
    old, new = event.old, event.new
    kind = event.type
    if kind is EventType.DELISTED:
        return None if old is not None and new is None else "delisted_without_last_state"
    if new is None:
        return "no_new_state"
    if kind is EventType.LISTED:
        return None if new.status is not ListingStatus.SOLD else "listed_as_sold"
    if kind is EventType.SOLD:  # a first sighting in the sold view has no old state
        return None if new.status is ListingStatus.SOLD else "sold_without_sold_state"
    if old is None:
        return "no_old_state"
    if kind is EventType.PRICE_CHANGED and old.price_ton == new.price_ton:
        return "price_unchanged"
    if kind is EventType.STATUS_CHANGED and old.status == new.status:
        return "status_unchanged"
    if kind is EventType.AUCTION_EXTENDED and (
        old.ends_at is None or new.ends_at is None or new.ends_at <= old.ends_at
    ):
        return "auction_not_extended"
    return None
