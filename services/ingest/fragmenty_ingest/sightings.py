"""What ingest itself has seen of each crawl in progress, so a census can be judged complete.

Kept in memory only: after a restart the sets start empty, which is exactly what makes the
census of a crawl that straddled the restart untrusted for delisting.
"""

from __future__ import annotations

from collections import OrderedDict

from fragmenty_ingest.decide import CrawlSighting
from fragmenty_shared.contracts import ListingObserved
from fragmenty_shared.storage import listing_id

# Crawls whose census never arrives (a crawler crash) must not grow memory without bound.
MAX_OPEN_CRAWLS = 8


class CrawlSightings:
    def __init__(self, max_open_crawls: int = MAX_OPEN_CRAWLS) -> None:
        self._max = max_open_crawls
        self._ids: OrderedDict[str, set[str]] = OrderedDict()
        self._by_view: dict[str, dict[tuple[str, str], set[str]]] = {}

    def see(self, observation: ListingObserved) -> None:
        crawl = observation.crawl_id
        if crawl not in self._ids:
            self._ids[crawl] = set()
            self._by_view[crawl] = {}
            while len(self._ids) > self._max:
                oldest, _ = self._ids.popitem(last=False)
                self._by_view.pop(oldest, None)
        self._ids[crawl].add(listing_id(observation.asset, observation.slug))
        view = (observation.asset.value, observation.status.value)
        self._by_view[crawl].setdefault(view, set()).add(observation.slug)

    def sighting(self, crawl_id: str) -> CrawlSighting:
        return CrawlSighting(
            listing_ids=frozenset(self._ids.get(crawl_id, ())),
            slugs_by_view={
                view: frozenset(slugs) for view, slugs in self._by_view.get(crawl_id, {}).items()
            },
        )

    def forget(self, crawl_id: str) -> None:
        self._ids.pop(crawl_id, None)
        self._by_view.pop(crawl_id, None)
