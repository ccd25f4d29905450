"""A bounded "have I seen this id?" set: remembers the most recent ids, forgets the oldest."""

from __future__ import annotations

from collections import deque


class RecentIds:
    """Set membership over the last ``capacity`` ids added, in O(1) per id."""

    __slots__ = ("_capacity", "_members", "_order")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._members: set[str] = set()
        self._order: deque[str] = deque()

    def add(self, item: str) -> bool:
        """Remember ``item``; False when it was already remembered (a duplicate)."""
        if item in self._members:
            return False
        self._members.add(item)
        self._order.append(item)
        if len(self._order) > self._capacity:
            self._members.discard(self._order.popleft())
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __len__(self) -> int:
        return len(self._members)
