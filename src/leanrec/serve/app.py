"""The HTTP service of ``leanrec serve``: FastAPI routes over an engine, run by uvicorn.

Routes (OpenAPI at ``/docs``, raw IDs in and out):

* ``GET /recommend/{user}?k=10&exclude_seen=true``: one user's top-k;
* ``POST /recommend``: ``{"users": [...], "k": 10, "exclude_seen": true}``;
* ``POST /score``: ``{"events": [{"user": u, "item": i}, ...]}``, or a CTR model's input fields
  per event;
* ``POST /next``: ``{"history": [i1, i2, ...], "k": 10, "exclude_seen": true}``, a next-item
  model's top-k after a history (oldest first);
* ``GET /healthz``, ``GET /model`` (kind, sizes, bytes, training metrics).

Errors are JSON: an unknown ID is a 404 ``{"detail": ..., "field": ...}``; a bad value (k <= 0,
k above the number of items, a non-integer ID of an integer-ID model) is a 422 in FastAPI's own
shape, ``{"detail": [{"loc": ["query", "k"], "msg": ..., "type": ...}]}``, naming the field.

Why it is built this way (measurements in ``docs/design/serving.md``):

* the model file is read once, before the port opens, and its final embeddings are computed
  then (:mod:`leanrec.serve.engine`);
* the one-user route hands known users to a :class:`~leanrec.serve.batcher.MicroBatcher`, so
  concurrent callers share one matrix product and one ``topk``;
* computation runs on one compute thread, so the event loop keeps parsing requests meanwhile;
  torch gets one intra-op thread by default (``--threads``), as the server shares the machine
  with its callers;
* answers are serialised with :func:`json.dumps` straight to bytes (a :class:`Response`), not
  through FastAPI's response-model validation, which costs more than the top-k itself; the
  response models below document the routes in OpenAPI;
* no access log (a log line per request is a large share of a request's CPU);
* uvicorn stops gracefully on SIGINT/SIGTERM: it closes the port, answers the requests in flight,
  then the batcher answers what is queued and stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from leanrec.serve.batcher import MicroBatcher
from leanrec.serve.engine import (
    ColdStart,
    Engine,
    NextRequest,
    Ranked,
    RankingEngine,
    RequestError,
    TopKRequest,
    build_engine,
)

__all__ = ["ServeSettings", "create_app", "load_engine", "run"]


# ------------------------------------------------------------------------------------ schemas
class RecommendAnswer(BaseModel):
    """One user's top-k."""

    user: int | str
    items: list[int | str] = Field(description="raw item IDs, best first")
    scores: list[float] = Field(description="the model's scores (popularity counts if popular)")
    cold: bool = Field(description="the user is unknown to the model")
    answered_by: str = Field(description='"model", or "popular" for an unknown user')


class RecommendBatch(BaseModel):
    """Top-k for several users at once."""

    users: list[int | str] = Field(min_length=1, max_length=10_000)
    k: int = Field(10, ge=1)
    exclude_seen: bool = True


class RecommendBatchAnswer(BaseModel):
    results: list[RecommendAnswer]


class ScoreRequest(BaseModel):
    """Events to score: ``{"user": u, "item": i}`` for ranking and stream models (a stream
    model's other ID fields too), a CTR model's categorical fields (indices) plus optional
    ``history`` and tag indices."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class ScoreAnswer(BaseModel):
    scores: list[float]
    what: str = Field(description='"score", "probability" or "rating"')
    cold: list[list[str]] | None = Field(
        None, description="stream models: each event's unseen fields"
    )


class NextBody(BaseModel):
    """A history to continue (next-item models): raw item IDs, oldest first."""

    history: list[int | str] = Field(min_length=1, max_length=10_000)
    k: int = Field(10, ge=1)
    exclude_seen: bool = Field(True, description="leave out the history's items")


class NextAnswer(BaseModel):
    items: list[int | str] = Field(description="raw item IDs, best first")
    scores: list[float]


class ErrorAnswer(BaseModel):
    detail: str
    field: str


# ------------------------------------------------------------------------------------ app
@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and computes."""

    max_batch: int = 64
    """Most users per batched product (``N``)."""
    max_wait_ms: float = 1.0
    """How long a batch waits for more callers once callers are concurrent."""
    threads: int = 1
    """torch intra-op threads (the server shares the machine with its callers)."""
    padded_vectors: bool = False
    """A packed MF: hold its rows padded to ``d_max`` and score them as a dense model's (lone
    requests about 0.07 ms instead of 0.4-1.1 ms on ML-1M, for the dense vectors' memory);
    off: score from the packed tables."""

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"--max-batch must be at least 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"--max-wait-ms must be at least 0, got {self.max_wait_ms}")
        if self.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {self.threads}")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload).encode(), status_code=status, media_type="application/json")


def _error(error: RequestError, location: str) -> Response:
    if error.status == 422:
        detail = [
            {
                "loc": [location, *error.field.split(".")],
                "msg": error.message,
                "type": "value_error",
            }
        ]
        return _json({"detail": detail}, 422)
    return _json({"detail": error.message, "field": error.field}, error.status)


def create_app(engine: Engine, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``engine`` (start it with uvicorn, or :func:`run`)."""
    settings = settings or ServeSettings()
    import torch

    # torch's thread count is per calling thread (OpenMP): set it in the compute thread itself,
    # or that thread runs a default-sized team whose idle threads spin between requests
    executor = ThreadPoolExecutor(
        max_workers=1,
        thread_name_prefix="leanrec-compute",
        initializer=torch.set_num_threads,
        initargs=(settings.threads,),
    )
    batcher: MicroBatcher[TopKRequest, Ranked] = MicroBatcher(
        engine.recommend, executor, settings.max_batch, settings.max_wait_ms / 1000
    )
    batched = isinstance(engine, RankingEngine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()
        executor.shutdown(wait=True)
        print(
            f"leanrec serve: stopped ({batcher.requests} top-k requests in {batcher.batches} "
            "batches)",
            file=sys.stderr,
            flush=True,
        )

    app = FastAPI(
        title="leanrec serve",
        description="Top-k and scores of a leanrec model on raw IDs.",
        lifespan=lifespan,
    )

    async def compute(function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> Response:
        location = "path" if error.field == "user" and request.method == "GET" else "body"
        if error.field in ("k", "exclude_seen") and request.method == "GET":
            location = "query"
        return _error(error, location)

    not_found: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorAnswer, "description": "unknown ID"}
    }

    @app.get("/recommend/{user}", response_model=RecommendAnswer, responses=not_found)
    async def recommend_one(
        user: str,
        k: int = Query(10, ge=1, description="list length, at most the number of items"),
        exclude_seen: bool = Query(True, description="leave out the user's training items"),
    ) -> Response:
        """Top-k items of one user (batched with concurrent callers)."""
        key = engine.user_key(user)
        if k > engine.n_items:
            raise RequestError(
                422, "k", f"k must be at most the number of items ({engine.n_items})"
            )
        request = TopKRequest(key, engine.lookup(key), k, exclude_seen)
        if batched and request.index >= 0:
            answer = await batcher.submit(request)
        else:
            answer = (await compute(engine.recommend, [request]))[0]
        return _json(answer.as_json())

    @app.post("/recommend", response_model=RecommendBatchAnswer, responses=not_found)
    async def recommend_many(body: RecommendBatch) -> Response:
        """Top-k of several users in one product."""
        if body.k > engine.n_items:
            raise RequestError(
                422, "k", f"k must be at most the number of items ({engine.n_items})"
            )
        requests = []
        for n, user in enumerate(body.users):
            key = engine.user_key(user, f"users.{n}")
            requests.append(TopKRequest(key, engine.lookup(key), body.k, body.exclude_seen))
        answers: Sequence[Ranked] = await compute(engine.recommend, requests)
        return _json({"results": [a.as_json() for a in answers]})

    @app.post("/score", response_model=ScoreAnswer, responses=not_found)
    async def score(body: ScoreRequest) -> Response:
        """Scores of (user, item) pairs, or a CTR model's click probabilities."""
        return _json(await compute(engine.score, body.events))

    @app.post("/next", response_model=NextAnswer, responses=not_found)
    async def next_items(body: NextBody) -> Response:
        """The top-k next items after a history (next-item models)."""
        request = NextRequest(body.history, body.k, body.exclude_seen)
        return _json((await compute(engine.next_items, [request]))[0])

    @app.get("/healthz")
    async def healthz() -> Response:
        """Liveness: the model is loaded and the batcher runs."""
        return _json({"status": "ok", "family": engine.family})

    @app.get("/model")
    async def model() -> Response:
        """Kind, sizes, bytes and training metrics of the served model."""
        described = engine.describe()
        described["serving"] = {
            **dataclasses.asdict(settings),
            "batched": batched,
            "batches": batcher.batches,
            "batched_requests": batcher.requests,
        }
        return _json(described)

    if batched:
        app.add_middleware(TopKFastPath, engine=engine, batcher=batcher)
    return app


_TRUE, _FALSE = (b"true", b"1"), (b"false", b"0")


class TopKFastPath:
    """``GET /recommend/{user}`` of a known user with plain parameters, answered in front of
    FastAPI (pure ASGI: no request object, no dependency resolution, no validation models).

    The FastAPI route is the reference: this path answers exactly what the route would, and
    only for requests it can tell are well-formed (a known user; ``k`` digits within
    ``[1, I]``; ``exclude_seen`` ``true``/``false``/``1``/``0``; no other parameter). Anything
    else, errors and unknown users included, goes on to the route, so every error keeps
    FastAPI's shape. At a few hundred microseconds of CPU per request, the route's machinery is
    most of a batched request's cost (measured in ``docs/design/serving.md``).
    """

    def __init__(
        self, app: Any, engine: Engine, batcher: MicroBatcher[TopKRequest, Ranked]
    ) -> None:
        self.app = app
        self.engine = engine
        self.batcher = batcher

    def _parse(self, scope: dict[str, Any]) -> TopKRequest | None:
        user_text = scope["path"][len("/recommend/") :]
        if not user_text or "/" in user_text:
            return None
        k, exclude_seen = 10, True
        query: bytes = scope["query_string"]
        if query:
            for pair in query.split(b"&"):
                name, _, value = pair.partition(b"=")
                if name == b"k" and value.isdigit():
                    k = int(value)
                elif name == b"exclude_seen" and value in _TRUE:
                    exclude_seen = True
                elif name == b"exclude_seen" and value in _FALSE:
                    exclude_seen = False
                else:
                    return None
        if not 1 <= k <= self.engine.n_items:
            return None
        try:
            user = self.engine.user_key(user_text)
        except RequestError:
            return None
        index = self.engine.lookup(user)
        return TopKRequest(user, index, k, exclude_seen) if index >= 0 else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/recommend/")
        ):
            request = self._parse(scope)
            if request is not None:
                body = json.dumps((await self.batcher.submit(request)).as_json()).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def load_engine(
    path: str | Path, cold_start: ColdStart = "none", padded_vectors: bool = False
) -> Engine:
    """Read ``path`` (refused with a message saying why when missing, truncated, foreign or
    newer) and precompute what serving needs (``padded_vectors``: see :class:`ServeSettings`)."""
    from leanrec.models import load_model

    return build_engine(load_model(path), path, cold_start, padded_vectors)


def run(
    path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    cold_start: ColdStart = "none",
    settings: ServeSettings | None = None,
) -> None:
    """Load the model, then serve it until SIGINT/SIGTERM (graceful shutdown)."""
    import torch
    import uvicorn

    settings = settings or ServeSettings()
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    engine = load_engine(path, cold_start, settings.padded_vectors)
    described = engine.describe()
    print(
        f"leanrec serve: {described['family']} model {described['kind']} from {path} ready in "
        f"{time.perf_counter() - started:.2f} s; http://{host}:{port} (OpenAPI at /docs)",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        create_app(engine, settings),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
