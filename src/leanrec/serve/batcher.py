"""A micro-batcher: requests of concurrent callers answered by one computation.

Scoring one user costs a ``(1, d) x (d, I)`` product, a mask and a ``topk``; scoring ``B`` users
at once costs little more than one, because the product streams the item matrix ``(I, d)`` through
the cache once for all of them. So the server queues top-k requests and a single task answers
them in batches:

1. wait for the first request;
2. take every request already queued, up to ``max_batch``;
3. only when the last batch held more than one request (callers are concurrent) and this one is
   not full, sleep ``max_wait`` seconds once and take what arrived meanwhile: a lone caller never
   pays the wait;
4. compute the batch on the compute thread (a one-thread executor, so the event loop keeps
   reading requests meanwhile, and those form the next batch) and resolve each caller's future.

A failing batch fails each of its callers with the error; the batcher keeps running. :meth:`stop`
answers what is queued, then ends the task (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

RequestT = TypeVar("RequestT")
AnswerT = TypeVar("AnswerT")


class MicroBatcher(Generic[RequestT, AnswerT]):
    """Collects requests for ``compute`` and answers them in batches.

    Args:
        compute: answers a batch, ``list of B requests -> list of B answers`` in the same order;
            runs on ``executor``.
        executor: where ``compute`` runs (one thread: engines are not thread-safe).
        max_batch: most requests per batch (``N``).
        max_wait: seconds a batch may wait for more callers once callers are concurrent
            (about 1 ms: far below a request's latency, long enough to fill a batch at load).
    """

    def __init__(
        self,
        compute: Callable[[Sequence[RequestT]], Sequence[AnswerT]],
        executor: Executor,
        max_batch: int = 64,
        max_wait: float = 0.001,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be at least 0, got {max_wait}")
        self.compute = compute
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.batches = 0
        """Batches computed so far (with :attr:`requests`: the mean batch size)."""
        self.requests = 0
        self._queue: asyncio.Queue[tuple[RequestT, asyncio.Future[AnswerT]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    async def start(self) -> None:
        """Start the batching task on the running loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def submit(self, request: RequestT) -> AnswerT:
        """Queue ``request`` and wait for its answer (or the batch's error)."""
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[AnswerT] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((request, future))
        return await future

    async def stop(self) -> None:
        """Answer every queued request, then end the batching task."""
        if self._queue is None or self._task is None:
            return
        while not self._queue.empty() or self._busy:
            await asyncio.sleep(0.001)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        last_size = 0
        while True:
            batch = [await queue.get()]
            self._busy = True
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            if last_size > 1 and len(batch) < self.max_batch and self.max_wait > 0:
                await asyncio.sleep(self.max_wait)
                while len(batch) < self.max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
            last_size = len(batch)
            requests = [request for request, _ in batch]
            try:
                answers = await loop.run_in_executor(self.executor, self.compute, requests)
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                self._busy = False
                continue
            self.batches += 1
            self.requests += len(batch)
            for (_, future), answer in zip(batch, answers):
                if not future.done():  # a caller that went away cancelled its future
                    future.set_result(answer)
            self._busy = False
