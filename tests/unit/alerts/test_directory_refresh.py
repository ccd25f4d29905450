"""The in-memory directory and a reload racing a channel change made here first (disable)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fragmenty_alerts.channels import Channel
from fragmenty_alerts.directory import Directory

ENABLED = {"_id": "ch1", "account_id": "a1", "kind": "webhook", "url": "https://x", "enabled": True}
DISABLED = {**ENABLED, "enabled": False, "disabled_reason": "the endpoint answered 410"}


class Documents:
    """A collection's ``find`` that returns fixed documents and runs ``during`` mid-read."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents
        self.during: Callable[[], None] | None = None

    def find(self, _filter: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async def read() -> AsyncIterator[dict[str, Any]]:
            for document in self.documents:
                if self.during is not None:
                    self.during()
                yield document

        return read()


class Meta:
    def __init__(self) -> None:
        self.version = "v1"

    async def find_one(self, _filter: dict[str, Any]) -> dict[str, Any]:
        return {"_id": "config", "version": self.version}


class FakeStore:
    def __init__(self) -> None:
        self.meta = Meta()
        self.rules = Documents([])
        self.channels = Documents([ENABLED])


async def loaded() -> tuple[Directory, FakeStore]:
    store = FakeStore()
    directory = Directory(store)  # type: ignore[arg-type]
    assert await directory.refresh()
    assert directory.channels["ch1"].enabled
    return directory, store


async def test_a_reload_that_read_while_the_disable_was_being_written_keeps_the_disable() -> None:
    directory, store = await loaded()
    # disable(): this copy first, then the database write, still in flight when the reload
    # reads the old document and done before the reload ends.
    directory.put_channel(Channel.of(DISABLED))
    store.meta.version = "v2"  # another change (a rule saved through the API) asks for a reload
    store.channels.during = directory.written

    assert not await directory.refresh()
    assert not directory.channels["ch1"].enabled

    store.channels.during = None
    store.channels.documents = [DISABLED]  # the next reload reads what was written
    assert await directory.refresh()
    assert not directory.channels["ch1"].enabled


async def test_a_reload_with_no_local_change_under_way_takes_the_database() -> None:
    directory, store = await loaded()
    store.meta.version = "v2"
    store.channels.documents = [DISABLED]  # disabled by another instance

    assert await directory.refresh()
    assert not directory.channels["ch1"].enabled
