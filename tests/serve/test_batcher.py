"""The micro-batcher in-process: batch sizes, answers in order, errors, graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from leanrec.serve.batcher import MicroBatcher


def _run(batch_sizes: list[int], calls: int, max_batch: int, fail: bool = False) -> list[object]:
    def compute(requests: Sequence[int]) -> list[int]:
        batch_sizes.append(len(requests))
        if fail and 3 in requests:
            raise ValueError("request 3 cannot be answered")
        return [2 * r for r in requests]

    async def main() -> list[object]:
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher: MicroBatcher[int, int] = MicroBatcher(compute, executor, max_batch, 0.001)
            await batcher.start()
            answers = await asyncio.gather(
                *(batcher.submit(r) for r in range(calls)), return_exceptions=True
            )
            after = await batcher.submit(100)  # still running after a failed batch
            await batcher.stop()
            assert batcher.requests == calls + 1 - (max_batch if fail else 0)
            return [*answers, after]

    return asyncio.run(main())


def test_concurrent_requests_are_answered_in_batches_of_at_most_max_batch() -> None:
    sizes: list[int] = []
    answers = _run(sizes, calls=10, max_batch=4)
    # the ten submits are queued before the batching task runs: 4 + 4 + 2, then the lone one
    assert sizes == [4, 4, 2, 1]
    assert answers == [2 * r for r in range(10)] + [200]


def test_a_failed_batch_fails_its_callers_only() -> None:
    sizes: list[int] = []
    answers = _run(sizes, calls=8, max_batch=4, fail=True)
    assert sizes == [4, 4, 1]
    assert all(isinstance(a, ValueError) for a in answers[:4])
    assert answers[4:] == [8, 10, 12, 14, 200]


def test_stop_answers_what_is_queued_and_refuses_afterwards() -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher: MicroBatcher[int, int] = MicroBatcher(
                lambda rs: [r + 1 for r in rs], executor, 2
            )
            await batcher.start()
            pending = [asyncio.ensure_future(batcher.submit(r)) for r in range(5)]
            await asyncio.sleep(0)  # the submits queue their requests
            await batcher.stop()
            assert [await p for p in pending] == [1, 2, 3, 4, 5]
            with pytest.raises(RuntimeError, match="not running"):
                await batcher.submit(0)

    asyncio.run(main())


def test_settings_are_checked() -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        with pytest.raises(ValueError, match="max_batch"):
            MicroBatcher(lambda rs: rs, executor, 0)
        with pytest.raises(ValueError, match="max_wait"):
            MicroBatcher(lambda rs: rs, executor, 4, -1.0)
