"""Faults the simulator can inject, switched at runtime (``/_simulator/faults``) or by flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Faults:
    """Counters are "how many of the next requests"; they count down as faults are served.

    - ``rate_limit``: answer 429 with ``Retry-After: retry_after`` (seconds).
    - ``server_errors``: answer 502.
    - ``truncate``: cut a listing page or API answer at 60% of its length.
    - ``markup_change``: while true, prices lose their ``icon-ton`` class (the parser's anchor),
      as if Fragment had changed its markup.
    """

    rate_limit: int = 0
    retry_after: int = 1
    server_errors: int = 0
    truncate: int = 0
    markup_change: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            setattr(self, name, value)

    def take(self, name: str) -> bool:
        """Whether this request gets fault ``name``; consumes one unit of it."""
        remaining = getattr(self, name)
        if remaining > 0:
            setattr(self, name, remaining - 1)
            return True
        return False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
