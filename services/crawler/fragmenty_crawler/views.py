"""The six views a census covers: numbers and usernames, each on auction, for sale and sold."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fragmenty_shared.contracts import Asset, ListingStatus

# The census reads each view in Fragment's default order; the order does not matter for a census.
SORT = "price_desc"


@dataclass(frozen=True)
class View:
    asset: Asset
    status: ListingStatus

    @property
    def key(self) -> str:
        return f"{self.asset.value}:{self.status.value}"

    @property
    def api_type(self) -> str:
        """``type`` of the ``searchAuctions`` API: ``numbers`` or ``usernames``."""
        return "numbers" if self.asset is Asset.NUMBER else "usernames"

    def page_url(self, base_url: str, sort: str = SORT) -> str:
        path = "/numbers" if self.asset is Asset.NUMBER else "/"
        query = urlencode({"sort": sort, "filter": self.status.value})
        return f"{base_url.rstrip('/')}{path}?{query}"

    def search_form(self, cursor: str | None, sort: str = SORT) -> dict[str, str]:
        form = {
            "method": "searchAuctions",
            "type": self.api_type,
            "query": "",
            "filter": self.status.value,
            "sort": sort,
        }
        if cursor is not None:
            form["offset_id"] = cursor
        return form


ALL_VIEWS = tuple(View(asset, status) for asset in Asset for status in ListingStatus)


@dataclass(frozen=True)
class HeadFeed:
    """The first page of a view in a fast-moving order: where news shows up first."""

    asset: Asset
    status: ListingStatus
    sort: str  # "listed" (newest listings, latest sales) or "ending" (auctions ending soonest)

    @property
    def key(self) -> str:
        return f"{self.asset.value}:{self.status.value}:{self.sort}"

    @property
    def view(self) -> View:
        return View(self.asset, self.status)

    def page_url(self, base_url: str) -> str:
        return self.view.page_url(base_url, self.sort)


def head_feeds(views: tuple[View, ...]) -> tuple[HeadFeed, ...]:
    """For each asset crawled: newest auctions, newest sales, latest sales, auctions ending soonest."""
    feeds: list[HeadFeed] = []
    for view in views:
        feeds.append(HeadFeed(view.asset, view.status, "listed"))
        if view.status is ListingStatus.AUCTION:
            feeds.append(HeadFeed(view.asset, view.status, "ending"))
    return tuple(feeds)


def parse_views(text: str) -> tuple[View, ...]:
    """``number:auction,username`` -> those views (an asset alone means its three views)."""
    chosen: list[View] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        asset_text, _, status_text = part.partition(":")
        asset = Asset(asset_text)
        statuses = [ListingStatus(status_text)] if status_text else list(ListingStatus)
        chosen.extend(View(asset, status) for status in statuses)
    return tuple(dict.fromkeys(chosen))
