"""Listings as CSV rows, streamed a chunk at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from fragmenty_api.models import ListingPublic
from fragmenty_api.snapshot import ListingRow
from fragmenty_api.valuations import Valuations

CSV_COLUMNS = (
    "id",
    "asset",
    "slug",
    "title",
    "status",
    "price_ton",
    "price_usd",
    "ends_at",
    "sold_at",
    "memorability",
    "tags",
    "first_seen_at",
    "changed_at",
    "delisted_at",
    "url",
    "fair_value_ton",
    "discount_pct",
)
_ROWS_PER_CHUNK = 500
# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(text: str) -> str:
    """Scraped text as a spreadsheet shows it, never run: '+888 ...' becomes "'+888 ..."."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _cells(row: ListingRow, valuations: Valuations) -> list[str]:
    listing = ListingPublic.from_row(row, valuations.of_row(row))
    values = listing.model_dump(mode="json")
    cells = []
    for column in CSV_COLUMNS:
        value = values[column]
        if column == "tags":
            value = "|".join(value)
        cells.append("" if value is None else str(value))
    cells[CSV_COLUMNS.index("title")] = _spreadsheet_safe(cells[CSV_COLUMNS.index("title")])
    return cells


def csv_chunks(rows: Iterable[ListingRow], valuations: Valuations) -> Iterator[str]:
    """The header, then the rows, in chunks of a few hundred."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(_cells(row, valuations))
        if count % _ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
