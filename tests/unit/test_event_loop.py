"""The services run on uvloop unless told otherwise (fragmenty_shared.event_loop)."""

import asyncio

import uvloop

from fragmenty_shared.event_loop import loop_factory, run
from fragmenty_shared.settings import Settings


async def running_loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_the_default_loop_is_uvloop() -> None:
    assert Settings.model_fields["event_loop"].default == "uvloop"
    assert run(running_loop_type(), "uvloop") is uvloop.Loop


def test_asyncio_can_be_chosen() -> None:
    assert loop_factory("asyncio") is None
    assert not issubclass(run(running_loop_type(), "asyncio"), uvloop.Loop)
