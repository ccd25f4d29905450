from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from faststream.rabbit import RabbitExchange, RabbitQueue
from pydantic import ValidationError

from fragmenty_shared.contracts import (
    MAX_PAGE_ROWS,
    Asset,
    CensusCompleted,
    EventType,
    ListingObserved,
    ListingSnapshot,
    ListingsObserved,
    ListingStatus,
    PriceEvent,
    listings_message_adapter,
    make_event_id,
    observations_in,
    pages_of,
)
from fragmenty_shared.money import from_nanoton, to_nanoton, usd_cents
from fragmenty_shared.storage import event_from_document, event_to_document
from fragmenty_shared.topology import DELIVERY_LIMIT, Topology


def observation(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "crawl_id": "c1",
        "observed_at": "2026-04-16T05:34:55+02:00",
        "asset": "number",
        "slug": "88800001234",
        "title": "+888 0000 1234",
        "status": "auction",
        "price_ton": "36645.5",
        "price_usd": "44610.00",
        "ton_usd_rate": "1.21735963",
        "ends_at": "2026-04-20T05:34:55+00:00",
        "url": "https://fragment.com/number/88800001234",
    }
    fields.update(overrides)
    return fields


def test_observation_round_trips_through_json_exactly() -> None:
    observed = ListingObserved.model_validate(observation())
    again = listings_message_adapter.validate_json(observed.model_dump_json())
    assert again == observed
    assert isinstance(again, ListingObserved)
    assert again.price_ton == Decimal("36645.5")
    assert '"price_ton":"36645.5"' in observed.model_dump_json()  # a string, never a float
    assert again.observed_at == datetime(2026, 4, 16, 3, 34, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_ton", "NaN"),
        ("price_ton", "-1"),
        ("price_ton", "1e12"),
        ("price_ton", "0.0000000001"),
        ("observed_at", "2026-04-16T05:34:55"),  # naive
        ("slug", "../etc/passwd"),
        ("asset", "gift"),
        ("surprise", "field"),
    ],
)
def test_observation_refuses_poison(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        ListingObserved.model_validate(observation(**{field: value}))


def test_census_is_told_apart_from_observations_by_kind() -> None:
    census = CensusCompleted.model_validate(
        {
            "crawl_id": "c1",
            "started_at": "2026-04-16T05:00:00+00:00",
            "completed_at": "2026-04-16T05:10:00+00:00",
            "views": [
                {"asset": "username", "status": "sold", "rows": 3, "pages": 1, "complete": True}
            ],
        }
    )
    assert isinstance(
        listings_message_adapter.validate_json(census.model_dump_json()), CensusCompleted
    )


def test_event_ids_are_deterministic_and_sort_by_time() -> None:
    moment = datetime(2026, 4, 16, 7, 0, tzinfo=timezone(timedelta(hours=2)))
    first = make_event_id(Asset.NUMBER, "8888080", EventType.SOLD, moment)
    assert first == make_event_id(Asset.NUMBER, "8888080", EventType.SOLD, moment.astimezone(UTC))
    later = make_event_id(Asset.NUMBER, "8888080", EventType.LISTED, moment + timedelta(seconds=1))
    assert first.startswith("20260416T050000.000000Z:number:8888080:sold")
    assert first < later


def test_nanoton_conversion_is_exact() -> None:
    assert to_nanoton(Decimal("12.5")) == 12_500_000_000
    assert to_nanoton(Decimal("0.000000001")) == 1
    assert from_nanoton(12_500_000_000) == Decimal("12.5")
    assert str(from_nanoton(100 * 10**9)) == "100"
    with pytest.raises(ValueError, match="finer than one nanoTON"):
        to_nanoton(Decimal("0.0000000001"))
    assert usd_cents(Decimal(9), Decimal("1.21735963")) == 1096


def test_topology_declares_a_bounded_dead_lettered_single_consumer_queue() -> None:
    topology = Topology("t1")
    queue = topology.ingest_queue
    assert queue.name == "t1.ingest.listings"
    assert queue.arguments is not None
    assert queue.arguments["x-delivery-limit"] == DELIVERY_LIMIT
    assert queue.arguments["x-single-active-consumer"] is True
    assert queue.arguments["x-dead-letter-exchange"] == "t1.fragmenty.dead-letter"
    assert Topology().events_exchange.name == "fragmenty.events"
    first, second = topology.notifier_queue(), topology.notifier_queue()
    assert first.name != second.name
    assert first.exclusive
    assert first.auto_delete


def test_every_durable_queue_and_exchange_is_listed_for_deletion() -> None:
    """Tests and benchmarks delete a namespace by these lists; a durable queue missing from them
    would be left behind on the shared broker by every test run."""
    topology = Topology("t1")
    declared = [getattr(topology, name) for name in dir(Topology) if not name.startswith("_")]
    durable_queues = {q.name for q in declared if isinstance(q, RabbitQueue) and q.durable}
    exchanges = {e.name for e in declared if isinstance(e, RabbitExchange)}
    assert durable_queues == set(topology.durable_queue_names())
    assert exchanges == set(topology.exchange_names())
    assert all(name.startswith("t1.") for name in durable_queues | exchanges)


def test_stored_events_read_back_without_the_writers_bookkeeping() -> None:
    event = PriceEvent(
        event_id=make_event_id(
            Asset.USERNAME, "boris", EventType.LISTED, datetime(2026, 4, 16, tzinfo=UTC)
        ),
        type=EventType.LISTED,
        asset=Asset.USERNAME,
        slug="boris",
        title="@boris",
        occurred_at=datetime(2026, 4, 16, tzinfo=UTC),
        new=ListingSnapshot(status=ListingStatus.SALE, price_ton=Decimal("12.5")),
    )
    document = event_to_document(event)
    assert document["_id"] == event.event_id
    assert document["new"]["price_ton"] == "12.5"
    assert event_from_document({**document, "rollup_key": "2026-04-16:username:sale"}) == event


def test_observations_travel_as_pages_and_come_back_the_same() -> None:
    base = ListingObserved.model_validate(observation())
    later = base.observed_at + timedelta(seconds=3)
    rows = [
        base,
        base.model_copy(update={"slug": "88800001235"}),
        base.model_copy(update={"slug": "88800001236", "observed_at": later}),
        base.model_copy(update={"slug": "88800001237", "crawl_id": "c2"}),  # another crawl
        base.model_copy(update={"slug": "88800001238", "crawl_id": "c2"}),
    ]
    pages = pages_of(rows, max_rows=4)
    assert [len(page.rows) for page in pages] == [3, 2]
    # What the page shares is said once; only a row read at another moment has its own time.
    assert [row.observed_at for row in pages[0].rows] == [None, None, later]
    back = [
        o
        for page in pages
        for o in observations_in(listings_message_adapter.validate_json(page.model_dump_json()))
    ]
    assert back == rows
    assert pages_of(rows, max_rows=2)[0].rows[-1].slug == "88800001235"
    assert isinstance(
        listings_message_adapter.validate_json(pages[0].model_dump_json()), ListingsObserved
    )
    assert pages[0].schema_version == 2


def test_a_page_refuses_no_rows_and_more_than_its_limit() -> None:
    [page] = pages_of([ListingObserved.model_validate(observation())])
    document = page.model_dump(mode="json")
    too_many: list[object] = document["rows"] * (MAX_PAGE_ROWS + 1)
    for rows in ([], too_many):
        with pytest.raises(ValidationError):
            ListingsObserved.model_validate(document | {"rows": rows})
