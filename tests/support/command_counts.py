"""Counting the queries a piece of code sends to one collection (pymongo command monitoring)."""

from pymongo import monitoring


class FindCounter(monitoring.CommandListener):
    """Counts the ``find`` commands sent to ``collection``."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == self.collection:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
