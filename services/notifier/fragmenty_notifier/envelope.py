"""One event on its way to clients: parsed once, serialised once, timed from publication."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from fragmenty_notifier.frames import Frame
from fragmenty_notifier.protocol import event_frame
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.topology import PUBLISHED_AT_HEADER


@dataclass(slots=True)
class Envelope:
    event: PriceEvent
    event_json: str
    published_at: float | None
    received_at: float
    _frames: dict[str, Frame] = field(default_factory=dict)

    @classmethod
    def wrap(cls, event: PriceEvent, published_at: float | None = None) -> Envelope:
        return cls(event, event.model_dump_json(), published_at, time.time())

    @property
    def event_id(self) -> str:
        return self.event.event_id

    def frame_for(self, subscription_id: str) -> Frame:
        """The event frame for one subscription id; most clients use the same few ids."""
        frame = self._frames.get(subscription_id)
        if frame is None:
            text = event_frame(subscription_id, self.event_json)
            frame = self._frames[subscription_id] = Frame(
                text, (self,), subscription=subscription_id
            )
        return frame


def published_at_from_headers(headers: Mapping[str, object] | None) -> float | None:
    """The publisher's timestamp, when it set one that makes sense."""
    if not headers:
        return None
    value = headers.get(PUBLISHED_AT_HEADER)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        moment = float(value)
    except ValueError:
        return None
    return moment if moment > 0 else None
