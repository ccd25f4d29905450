"""What ingest itself has seen of each crawl in progress, so a census can be judged complete.

Kept in memory only: after a restart the sets start empty, which is exactly what makes the
census of a crawl that straddled the restart untrusted for delisting.

The crawler reports each view in a census message of its own as the view finishes
(``views_in_crawl`` says how many to expect). A listing missing from a finished view may have
moved to a view crawled later, so a crawl is judged only once every view's census is in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from fragmenty_ingest.decide import CrawlSighting
from fragmenty_shared.contracts import CensusCompleted, CensusView, ListingObserved
from fragmenty_shared.storage import listing_id

# Crawls whose census never arrives (a crawler crash) must not grow memory without bound.
MAX_OPEN_CRAWLS = 8

View = tuple[str, str]  # (asset, status)


@dataclass
class _OpenCrawl:
    listing_ids: set[str] = field(default_factory=set)
    slugs_by_view: dict[View, set[str]] = field(default_factory=dict)
    censuses: list[CensusCompleted] = field(default_factory=list)


class CrawlSightings:
    def __init__(self, max_open_crawls: int = MAX_OPEN_CRAWLS) -> None:
        self._max = max_open_crawls
        self._crawls: OrderedDict[str, _OpenCrawl] = OrderedDict()

    def _open(self, crawl_id: str) -> _OpenCrawl:
        crawl = self._crawls.get(crawl_id)
        if crawl is None:
            crawl = self._crawls[crawl_id] = _OpenCrawl()
            while len(self._crawls) > self._max:
                self._crawls.popitem(last=False)
        return crawl

    def see(self, observation: ListingObserved) -> None:
        crawl = self._open(observation.crawl_id)
        crawl.listing_ids.add(listing_id(observation.asset, observation.slug))
        view = (observation.asset.value, observation.status.value)
        crawl.slugs_by_view.setdefault(view, set()).add(observation.slug)

    def add_census(self, census: CensusCompleted) -> CensusCompleted | None:
        """The crawl's whole census once every view has reported, else None (keep waiting)."""
        crawl = self._open(census.crawl_id)
        crawl.censuses.append(census)
        views: dict[View, CensusView] = {}
        for part in crawl.censuses:
            for view in part.views:
                views[(view.asset.value, view.status.value)] = view
        expected = census.views_in_crawl or len(census.views)
        if len(views) < expected:
            return None
        return CensusCompleted(
            crawl_id=census.crawl_id,
            started_at=min(part.started_at for part in crawl.censuses),
            completed_at=max(part.completed_at for part in crawl.censuses),
            views=list(views.values()),
        )

    def sighting(self, crawl_id: str) -> CrawlSighting:
        crawl = self._crawls.get(crawl_id, _OpenCrawl())
        return CrawlSighting(
            listing_ids=frozenset(crawl.listing_ids),
            slugs_by_view={view: frozenset(slugs) for view, slugs in crawl.slugs_by_view.items()},
        )

    def forget(self, crawl_id: str) -> None:
        self._crawls.pop(crawl_id, None)
