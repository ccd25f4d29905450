"""Batches close by weight (a page message weighs its rows) and never split an item."""

from __future__ import annotations

import asyncio

from fragmenty_ingest.batcher import BatchCollector


async def test_a_batch_closes_by_the_weight_of_its_items_and_keeps_them_whole() -> None:
    batches: list[list[int]] = []
    done = asyncio.Event()

    async def flush(batch: list[int]) -> None:
        batches.append(batch)
        if sum(len(b) for b in batches) == 5:
            done.set()

    collector = BatchCollector(flush, max_size=500, linger_s=0.05, weigh=lambda rows: rows)
    for rows in (300, 150, 100, 500, 1):  # pages of these many rows
        collector.put(rows)
    task = asyncio.create_task(collector.run())
    await asyncio.wait_for(done.wait(), 2.0)
    task.cancel()
    # 300 + 150 is under 500, so the next page joins and the batch ends heavier by it; a page
    # of 500 is a batch of its own; the last one waits out the linger alone.
    assert batches == [[300, 150, 100], [500], [1]]
