"""The HTTP service (FastAPI): recommendations, explanations, live interactions and items, metrics, hot reload.

:func:`create_app` builds the application around a :class:`Service` (the loaded run, its event log
and the write lock); :func:`serve` runs it with uvicorn. Every request and response body is a
pydantic model, so the OpenAPI page at ``/docs`` documents the API exactly.

Over 400 lines because each route declares its request and response models next to it; the service state
(:mod:`kgrec.serve.live`) and the event log (:mod:`kgrec.serve.events`) are their own modules.
"""

from __future__ import annotations

import gc
import hmac
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kgrec._version import __version__
from kgrec.errors import InputError
from kgrec.inference import Recommender
from kgrec.serve.events import EventLog
from kgrec.serve.live import Answer, LiveRecommender, UnknownItemError

__all__ = ["Service", "create_app", "serve", "TOKEN_ENV"]

#: Environment variable read for the write token when ``--token`` is not given.
TOKEN_ENV = "KGREC_SERVE_TOKEN"
MAX_K = 1000
#: The largest request body read (a batch of 10,000 items with descriptions fits); larger ones are answered 413 unread.
MAX_BODY_BYTES = 32 << 20
ContextValue = str | int | float


class _Unauthorised(Exception):
    """Raised by the token check; answered 401."""


class _ReadOnly(Exception):
    """A write to a server started without a token and without ``open_writes``; answered 403."""


# -- bodies ----------------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoredItem(BaseModel):
    item: str
    title: str
    score: float
    path: dict[str, Any] | None = Field(None, description="The best explanation path (with explain=true).")


class RecommendResult(BaseModel):
    user: str
    known: bool = Field(description="The user is in the training graph or has posted interactions.")
    cold_start: bool = Field(description="Nothing is known of the user's items: a popularity (or attributes) answer.")
    folded_in: bool = Field(description="The user's vector was folded in from their items (posted interactions).")
    items: list[ScoredItem]


class BatchRequest(_Body):
    users: list[str] = Field(default_factory=list, max_length=100_000, description="Known (or unknown) user ids.")
    k: int = Field(10, ge=1, le=MAX_K)
    context: dict[str, ContextValue] = Field(
        default_factory=dict, description="Context for every user (hour, device ...)."
    )
    history: list[str] | None = Field(
        None, description="An anonymous user's items (answered last, as user 'anonymous')."
    )
    attributes: dict[str, ContextValue] | None = Field(
        None, description="An anonymous user's attributes (age, gender ...)."
    )
    explain: bool = False


class BatchResponse(BaseModel):
    results: list[RecommendResult]


class ExplainResponse(BaseModel):
    user: str
    item: str
    paths: list[dict[str, Any]]


class InteractionIn(_Body):
    user: str = Field(min_length=1)
    item: str = Field(min_length=1)
    timestamp: float | None = Field(None, ge=0, allow_inf_nan=False, description="Unix seconds.")
    context: dict[str, ContextValue] | None = None


class Accepted(BaseModel):
    accepted: bool = True
    sequence: int = Field(description="The event's position in the durable log.")


class ItemIn(_Body):
    item: str = Field(min_length=1)
    title: str = ""
    description: str = ""
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict, description="Values of the graph's attribute columns.")


class ItemsIn(_Body):
    items: list[ItemIn] = Field(min_length=1, max_length=10_000)


class ItemsAdded(Accepted):
    added: int


class ReloadIn(_Body):
    run: str | None = Field(None, description="Another run directory; the current one when absent.")


class Health(BaseModel):
    status: str
    run: str
    users: int
    items: int
    events: int
    model: str
    version: str


# -- the service -----------------------------------------------------------------------------------
class Service:
    """A loaded run, its durable event log and the lock that orders writes and reloads.

    Reads take the current :class:`LiveRecommender` by reference and never wait; a write is checked,
    logged (durably) and applied under the write lock; a reload loads the new run outside the lock,
    then, under it, replays the whole log onto the new run and swaps it in, so no accepted write is
    missed and no request sees half a swap.

    Args:
        run_dir: A trained run directory.
        state_dir: The folder of the event log (default ``<run_dir>/serving``).
        token: The write token. None: the write endpoints answer 403, unless ``open_writes``.
        device: Where scoring happens (``cpu``, ``cuda``, ``auto``).
        open_writes: Accept writes without a token (anyone who reaches the port may post).
        reload_root: The folder whose runs ``POST /admin/reload`` may swap in; None: only the current run, re-read.

    Raises:
        InputError: an empty or blank token (an unset shell variable gives ``--token ""``, which must not open
            the server), or a run or state folder that cannot be used.
    """

    def __init__(
        self,
        run_dir: str | Path,
        state_dir: str | Path | None = None,
        token: str | None = None,
        device: str = "cpu",
        open_writes: bool = False,
        reload_root: str | Path | None = None,
    ) -> None:
        if token is not None and not token.strip():
            raise InputError(
                'the write token is empty (an unset variable in --token "$TOKEN"?): give a token, or '
                "--open-writes to accept writes from anyone"
            )
        self.run_dir, self.device, self.token = Path(run_dir), device, token
        self.writable = token is not None or open_writes
        self.reload_root = None if reload_root is None else Path(reload_root).resolve()
        recommender = Recommender.load(self.run_dir, device=device)
        self.log = EventLog(state_dir if state_dir is not None else self.run_dir / "serving")
        self.write_lock = threading.Lock()
        self.live = self._replayed(recommender)
        _settle_heap()

    def _replayed(self, recommender: Recommender) -> LiveRecommender:
        live = LiveRecommender(recommender)
        # One event at a time, in order: items added together or apart get different EASE columns and listen-only
        # sets, and a restart must answer exactly as the server did before it.
        for event in self.log.read():
            try:
                live.apply(event, replay=True)
            except InputError:
                continue  # an item the new run lacks: the event stays logged and is skipped here
        return live

    def write(self, event: dict[str, Any]) -> int:
        """Check, log durably, then apply ``event``; returns its sequence number."""
        with self.write_lock:
            self.live.check(event)
            sequence = self.log.append(event)
            self.live.apply(event)
            if event["kind"] == "items":
                _settle_heap()  # a new catalog and graph: many new long-lived objects
            return sequence

    def reload(self, run_dir: str | Path | None = None) -> float:
        """Swap in ``run_dir`` (or the current run, re-read); returns the seconds it took."""
        started = time.perf_counter()
        target = Path(run_dir) if run_dir is not None else self.run_dir
        if target.resolve() != self.run_dir.resolve():
            if self.reload_root is None:
                raise InputError(
                    "this server reloads only its own run; start it with --reload-root DIR to swap in runs from DIR",
                    target,
                )
            if not target.resolve().is_relative_to(self.reload_root):
                raise InputError(
                    f"is outside the reload root {self.reload_root}; only runs under it can be swapped in", target
                )
        recommender = Recommender.load(target, device=self.device)
        with self.write_lock:
            self.live = self._replayed(recommender)
            self.run_dir = target
        del recommender
        _settle_heap()
        return time.perf_counter() - started

    def close(self) -> None:
        """Close the event log (and give its folder back)."""
        self.log.close()


def _settle_heap() -> None:
    """Collect, then move every live object out of the cyclic garbage collector's view (``gc.freeze``).

    A loaded run is ~400,000 long-lived Python objects (ids, catalog, graph). Every full collection
    walked them all, and a 1,000-user answer allocates enough to trigger several: half of a batch
    request's time on ml-1m went to the collector. Frozen objects are still freed by reference
    counting; the old run's cycles are collected here, after a swap, before freezing again.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class _Measure:
    """Counts and times every request by route template (a plain ASGI middleware: no per-request task, unlike ``@app.middleware``)."""

    def __init__(self, app: Any, requests: Any, latency: Any) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(endpoint, scope["method"], str(status)).inc()
            self.latency.labels(endpoint).observe(time.perf_counter() - started)


class _LimitBody:
    """Answers 413 to a request body over ``max_bytes``, before the application reads it (a declared length) or as
    soon as the streamed body passes it, so nobody, with or without a token, makes the server hold a huge body."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        body, size, more = [], 0, True
        while more:  # read here, in full, so a body longer than declared (chunked) is cut off too
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.append(message.get("body", b""))
            size += len(body[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(send)
                return
        whole = b"".join(body)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": whole, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        detail = orjson.dumps({"detail": f"the request body is over {self.max_bytes >> 20} MiB"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(detail)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": detail})


def _result(answer: Answer, paths: list[dict | None] | None = None) -> dict[str, Any]:
    """A :class:`RecommendResult` as a plain dict.

    The read endpoints declare their pydantic response models (the OpenAPI page shows them) but
    answer with these dicts directly: validating 11,000 small models for a 1,000-user batch took
    four times as long as scoring it; orjson encodes them ten times faster than the standard library.
    """
    rec = answer.recommendation
    paths = paths or [None] * len(rec.item_ids)
    return {
        "user": rec.user_id,
        "known": answer.known,
        "cold_start": answer.cold_start,
        "folded_in": answer.folded_in,
        "items": [
            {"item": i, "title": t, "score": s, "path": p}
            for i, t, s, p in zip(rec.item_ids, rec.titles, rec.scores, paths)
        ],
    }


def _json(content: dict[str, Any]) -> Response:
    """``content`` encoded by orjson (FastAPI's ORJSONResponse is deprecated; this is all it did)."""
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _one_line(error: RequestValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    return f"{where or 'request'}: {first.get('msg', 'invalid')}" + (
        f" ({len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    )


def create_app(service: Service) -> FastAPI:
    """The FastAPI application over ``service`` (see the module docstring for the endpoints)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

    app = FastAPI(
        title="kgrec", version=__version__, description="Knowledge-graph-augmented recommendations over HTTP."
    )
    app.state.service = service
    registry = CollectorRegistry()  # per application: two apps in one process never share counters
    requests = Counter("kgrec_requests", "HTTP requests", ["endpoint", "method", "status"], registry=registry)
    latency = Histogram(
        "kgrec_request_seconds",
        "Request latency",
        ["endpoint"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    )

    app.add_middleware(_LimitBody, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(_Measure, requests=requests, latency=latency)

    @app.exception_handler(UnknownItemError)
    async def unknown_item(_: Request, error: UnknownItemError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, error: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(error)}, status_code=422)

    def authorised(request: Request) -> None:
        token = service.token
        if token is None:
            if service.writable:
                return
            raise _ReadOnly()
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise _Unauthorised()

    @app.exception_handler(_Unauthorised)
    async def unauthorised(_: Request, __: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "this endpoint needs the server's token: Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(_ReadOnly)
    async def read_only(_: Request, __: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "this server is read-only: it was started without --token (or --open-writes)"}, status_code=403
        )

    @app.exception_handler(OSError)
    async def not_recorded(_: Request, error: OSError) -> JSONResponse:
        # The event log could not make the event durable (a full disk): it is not recorded and will not reappear.
        return JSONResponse({"detail": f"the event was not recorded: {error.strerror or error}"}, status_code=503)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        live = service.live
        graph = live.recommender.graph
        return Health(
            status="ok",
            run=str(service.run_dir),
            users=len(graph.users),
            items=len(graph.items),
            events=service.log.count,
            model=repr(live.recommender.model),
            version=__version__,
        )

    @app.get("/recommend", response_model=RecommendResult)
    async def recommend_one(
        request: Request, user: str = Query(min_length=1), k: int = Query(10, ge=1, le=MAX_K), explain: bool = False
    ) -> Response:
        """Top-k items for one user; any other query parameter is a context field (``hour=21&device=mobile``).

        Answered on the event loop (no thread hand-off): one user's scores take about a millisecond.
        """
        keys = [key for key, _ in request.query_params.multi_items()]
        repeated = next((key for key in keys if keys.count(key) > 1), None)
        if repeated is not None:  # a query string's last value would win silently: ?user=a&user=b answered b
            raise InputError(f"query parameter '{repeated}' is given {keys.count(repeated)} times; give it once")
        context = {key: value for key, value in request.query_params.items() if key not in ("user", "k", "explain")}
        live = service.live
        answer = live.recommend([user], k, context or None)[0]
        return _json(_result(answer, live.best_paths(answer) if explain else None))

    @app.post("/recommend", response_model=BatchResponse)
    def recommend_many(body: BatchRequest) -> Response:
        """Many users at once, and/or one anonymous user given a history and/or attributes."""
        if not body.users and body.history is None and body.attributes is None:
            raise InputError("give users, or an anonymous user's history and/or attributes")
        live = service.live
        answers = live.recommend(body.users, body.k, body.context or None) if body.users else []
        if body.history is not None or body.attributes is not None:
            answers.append(
                live.recommend_history(body.history or [], body.k, {**body.context, **(body.attributes or {})} or None)
            )
        return _json({"results": [_result(a, live.best_paths(a) if body.explain else None) for a in answers]})

    @app.get("/explain", response_model=ExplainResponse)
    def explain(
        user: str = Query(min_length=1), item: str = Query(min_length=1), max_paths: int = Query(3, ge=1, le=50)
    ) -> ExplainResponse:
        paths = service.live.explain(user, item, max_paths)
        return ExplainResponse(user=user, item=item, paths=[p.to_dict() | {"text": p.text()} for p in paths])

    @app.post("/interactions", response_model=Accepted, dependencies=[Depends(authorised)])
    def interaction(body: InteractionIn) -> Accepted:
        """Record that a user interacted with an item: on disk before the answer, in their next recommendation at once."""
        event = {"kind": "interaction", **body.model_dump(exclude_none=True)}
        return Accepted(sequence=service.write(event))

    @app.post("/items", response_model=ItemsAdded, dependencies=[Depends(authorised)])
    def items(body: ItemsIn) -> ItemsAdded:
        """New catalog items, recommendable at once (text and KG links, no retraining)."""
        ids = [item.item for item in body.items]
        if len(set(ids)) != len(ids):
            raise InputError(f"item id '{next(i for i in ids if ids.count(i) > 1)}' appears twice in the request")
        rows = [{"item_id": item.item, **item.model_dump(exclude={"item"})} for item in body.items]
        sequence = service.write({"kind": "items", "items": rows})
        return ItemsAdded(sequence=sequence, added=len(rows))

    @app.post("/admin/reload", dependencies=[Depends(authorised)])
    def reload(body: ReloadIn | None = None) -> dict[str, Any]:
        """Swap in a newer run (or re-read this one) without dropping requests; posted events are replayed onto it."""
        seconds = service.reload(body.run if body is not None else None)
        return {"run": str(service.run_dir), "seconds": round(seconds, 3), "events": service.log.count}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _reload_logged(service: Service) -> None:
    """A SIGHUP reload: nobody waits for an answer, so the outcome goes to stderr."""
    import sys

    try:
        print(f"kgrec serve: reloaded {service.run_dir} in {service.reload():.1f} s", file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - a failed reload keeps the old run serving
        print(f"kgrec serve: reload failed, still serving the previous run: {error}", file=sys.stderr)


def serve(
    run_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    state_dir: str | Path | None = None,
    token: str | None = None,
    device: str = "cpu",
    log_level: str = "warning",
    open_writes: bool = False,
    reload_root: str | Path | None = None,
) -> None:
    """Load the run and answer HTTP until interrupted; SIGHUP reloads the run (as ``POST /admin/reload``)."""
    import signal

    import uvicorn

    service = Service(run_dir, state_dir, token, device, open_writes=open_writes, reload_root=reload_root)
    try:
        app = create_app(service)
        if hasattr(signal, "SIGHUP"):
            signal.signal(
                signal.SIGHUP, lambda *_: threading.Thread(target=_reload_logged, args=(service,), daemon=True).start()
            )
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()
