"""An Atom feed (RFC 4287) of one rule's alerts, for RSS readers."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, tostring

from fragmenty_alerts.alert import describe_event, listing_links
from fragmenty_alerts.store import Document
from fragmenty_shared.contracts import PriceEvent

ATOM = "http://www.w3.org/2005/Atom"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def atom_feed(rule: Document, entries: list[Document], self_url: str, public_url: str) -> bytes:
    feed = Element("feed", xmlns=ATOM)
    name = rule["spec"].get("name") or rule["_id"]
    SubElement(feed, "title").text = f"Fragmenty alerts: {name}"
    SubElement(feed, "id").text = f"urn:fragmenty:rule:{rule['_id']}"
    SubElement(feed, "link", rel="self", href=self_url)
    updated = entries[0]["at"] if entries else rule["updated_at"]
    SubElement(feed, "updated").text = _stamp(updated)
    SubElement(SubElement(feed, "author"), "name").text = "Fragmenty"
    for entry in entries:
        event = PriceEvent.model_validate(entry["event"])
        page, _ = listing_links(event, public_url)
        item = SubElement(feed, "entry")
        SubElement(item, "title").text = f"{event.title}: {event.type.value.replace('_', ' ')}"
        SubElement(item, "id").text = f"urn:fragmenty:alert:{rule['_id']}:{event.event_id}"
        SubElement(item, "link", href=page)
        SubElement(item, "updated").text = _stamp(entry["at"])
        SubElement(item, "summary").text = describe_event(event, public_url)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(feed, encoding="unicode").encode()
