"""Counting the queries a piece of code sends to one collection (pymongo command monitoring)."""

from typing import Any

from pymongo import monitoring


class FindCounter(monitoring.CommandListener):
    """Counts the ``find`` commands sent to ``collection``, and the documents they returned
    (their first batches and the ``getMore`` batches after them)."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.count = 0
        self.documents = 0
        self._watched: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "find" and command.get("find") == self.collection:
            self.count += 1
            self._watched.add(event.request_id)
        elif event.command_name == "getMore" and command.get("collection") == self.collection:
            self._watched.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._watched:
            self._watched.discard(event.request_id)
            cursor: dict[str, Any] = event.reply.get("cursor", {})
            self.documents += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._watched.discard(event.request_id)
