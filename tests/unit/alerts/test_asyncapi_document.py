"""The AsyncAPI document: every message is in it, and the committed copy is current."""

import json
from pathlib import Path

from fragmenty_alerts.asyncapi import specification_json

COMMITTED = Path(__file__).parents[3] / "docs" / "asyncapi" / "asyncapi.json"


def test_every_fragmenty_message_is_documented_with_its_field_descriptions() -> None:
    document = specification_json()
    schemas = document["components"]["schemas"]
    for message in ("ListingsObserved", "ListingObserved", "CensusCompleted", "PriceEvent"):
        assert message in schemas
    assert "Deterministic" in schemas["PriceEvent"]["properties"]["event_id"]["description"]
    channels = set(document["channels"])
    assert {"alerts.events:consume", "ingest.listings:consume", "ingest:PriceEvent"} <= channels


def test_the_committed_document_is_what_make_docs_writes() -> None:
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == specification_json(), (
        "docs/asyncapi/asyncapi.json is stale: run `make docs`"
    )
