"""The ops board's time series and trace view.

* :class:`History` samples every ``interval`` seconds into a ring buffer covering the last 15
  minutes: events per second per type (the ops feed's totals), consumer lag per group, outbox
  backlog and oldest age per service, and per service the request rate, p50/p99 latency and 5xx
  rate — from this process's Prometheus registry (the embedded gateway holds every service's
  HTTP metrics; in proxy mode the gateway's own). No database, nothing to install.
* ``GET /ops/api/trace?q=<correlation id | event id | trace id>``: the timeline of one action.
  With a Jaeger query API configured (``GATEWAY_TRACES_QUERY_URL``, e.g.
  ``http://127.0.0.1:16686``) the spans of the trace; otherwise, or when the backend does not
  know the trace, the events the board itself kept for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from prometheus_client import REGISTRY

from gateway.ops_context import OpsContext
from gateway.ops_schemas import HistoryReport, TraceTimeline
from service_defaults.auth import OPS_ROLE, CurrentUser, require_roles
from service_defaults.errors import ProblemError
from service_defaults.logging import get_logger

log = get_logger("gateway.ops_history")

WINDOW_S = 15 * 60
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SAFE_Q = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


def _http_totals() -> tuple[dict[str, float], dict[str, float], dict[str, dict[float, float]]]:
    """Per service: requests, 5xx responses, cumulative latency buckets (le → count)."""
    requests: defaultdict[str, float] = defaultdict(float)
    errors: defaultdict[str, float] = defaultdict(float)
    buckets: dict[str, defaultdict[float, float]] = {}
    for family in REGISTRY.collect():
        if family.name == "nexo_http_requests":
            for s in family.samples:
                if s.name.endswith("_total"):
                    service = s.labels["service"]
                    requests[service] += s.value
                    if s.labels["status"].startswith("5"):
                        errors[service] += s.value
        elif family.name == "nexo_http_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    buckets.setdefault(s.labels["service"], defaultdict(float))[le] += s.value
    return dict(requests), dict(errors), {k: dict(v) for k, v in buckets.items()}


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile`` over cumulative bucket counts (linear within a bucket)."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


class History:
    """Ring buffer of board samples (see the module docstring)."""

    def __init__(self, ctx: OpsContext, interval: float = 5.0) -> None:
        self.ctx = ctx
        self.interval = interval
        self.samples: deque[dict[str, Any]] = deque(maxlen=max(2, int(WINDOW_S / interval)))
        self._task: asyncio.Task[None] | None = None
        self._last: tuple[float, Counter[str], Any] | None = None

    async def start(self) -> None:
        self._last = (time.monotonic(), Counter(self.ctx.feed.totals), _http_totals())
        self._task = asyncio.create_task(self._run(), name="gateway-ops-history")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample()
            except Exception as exc:  # a broker or service hiccup costs one sample, not the task
                log.warning("ops history sample failed", error=repr(exc))

    async def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        totals = Counter(self.ctx.feed.totals)
        http = _http_totals()
        last_t, last_totals, last_http = self._last or (now, totals, http)
        dt = max(now - last_t, 1e-3)
        self._last = (now, totals, http)
        topics, outbox = await asyncio.gather(
            asyncio.wait_for(self.ctx.topics(), 10), asyncio.wait_for(self.ctx.outbox(), 10)
        )
        lag: Counter[str] = Counter()
        for topic in topics["topics"]:
            for group, g in topic["groups"].items():
                if g.get("lag") is not None:
                    lag[group] += g["lag"]
        requests, errors, buckets = http
        last_requests, last_errors, last_buckets = last_http
        services: dict[str, dict[str, float | None]] = {}
        for service, count in requests.items():
            delta = {
                le: n - last_buckets.get(service, {}).get(le, 0.0)
                for le, n in buckets.get(service, {}).items()
            }
            p50, p99 = quantile(0.5, delta), quantile(0.99, delta)
            services[service] = {
                "rps": round((count - last_requests.get(service, 0.0)) / dt, 3),
                "errors_per_s": round(
                    (errors.get(service, 0.0) - last_errors.get(service, 0.0)) / dt, 3
                ),
                "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
                "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
            }
        sample = {
            "t": round(time.time(), 3),
            "events": {
                kind: round((n - last_totals.get(kind, 0)) / dt, 3) for kind, n in totals.items()
            },
            "lag": dict(lag),
            "outbox": {
                name: {"backlog": o.get("backlog"), "oldest_age_s": o.get("oldest_age_s")}
                for name, o in outbox["services"].items()
            },
            "http": services,
        }
        self.samples.append(sample)
        return sample


def _events_of(ctx: OpsContext, q: str) -> tuple[list[dict[str, Any]], set[str]]:
    """The kept events of the action `q` names (correlation id, event id or trace id) and
    their trace ids."""
    events = list(ctx.feed.events)
    first = [e for e in events if q in (e.get("id"), e.get("correlation_id"), e.get("trace_id"))]
    correlations = {e["correlation_id"] for e in first if e.get("correlation_id")}
    traces = {e["trace_id"] for e in first if e.get("trace_id")}
    related = [
        e
        for e in events
        if e in first or e.get("correlation_id") in correlations or e.get("trace_id") in traces
    ]
    traces |= {e["trace_id"] for e in related if e.get("trace_id")}
    if _TRACE_ID.match(q):
        traces.add(q)
    return related, traces


def _depth(parents: dict[str, str | None], span_id: str) -> int:
    d, seen = 0, set()
    while (p := parents.get(span_id)) and p in parents and p not in seen:
        seen.add(p)
        span_id, d = p, d + 1
    return d


def jaeger_timeline(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Jaeger's ``/api/traces/{id}`` answer as timeline rows (start order, with depth)."""
    out: list[dict[str, Any]] = []
    for trace in data.get("data") or []:
        processes = trace.get("processes", {})
        spans = trace.get("spans", [])
        parents: dict[str, str | None] = {}
        for span in spans:
            refs = [r for r in span.get("references", []) if r.get("refType") == "CHILD_OF"]
            parents[span["spanID"]] = refs[0]["spanID"] if refs else None

        for span in spans:
            tags = {t["key"]: t.get("value") for t in span.get("tags", [])}
            out.append(
                {
                    "trace_id": span["traceID"],
                    "span_id": span["spanID"],
                    "service": processes.get(span.get("processID"), {}).get("serviceName", "?"),
                    "name": span["operationName"],
                    "kind": tags.get("span.kind"),
                    "start_us": span["startTime"],
                    "duration_us": span.get("duration", 0),
                    "depth": _depth(parents, span["spanID"]),
                    "error": bool(tags.get("error")),
                }
            )
    out.sort(key=lambda s: (s["start_us"], s["depth"]))
    return out


def history_router(get_ctx: Callable[[Request], OpsContext]) -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["ops"])
    ops_user = Depends(require_roles(OPS_ROLE))
    ctx_dep = Depends(get_ctx)

    @router.get(
        "/api/history",
        summary="Board time series of the last 15 minutes",
        response_model=HistoryReport,
    )
    async def history(request: Request, user: CurrentUser = ops_user) -> dict[str, Any]:
        hist: History = request.app.state.ops_history
        return {"interval_s": hist.interval, "samples": list(hist.samples)}

    @router.get(
        "/api/trace",
        summary="Timeline of one action (correlation, event or trace id)",
        response_model=TraceTimeline,
    )
    async def trace(
        request: Request,
        q: str = Query(min_length=1, max_length=128),
        ctx: OpsContext = ctx_dep,
        user: CurrentUser = ops_user,
    ) -> dict[str, Any]:
        q = q.strip().lower() if _TRACE_ID.match(q.strip().lower()) else q.strip()
        if not _SAFE_Q.match(q):
            raise ProblemError(400, "bad-request", "Bad Request", "not an id")
        events, traces = _events_of(ctx, q)
        events.sort(key=lambda e: e["seq"])
        url = request.app.state.settings.traces_query_url
        spans: list[dict[str, Any]] = []
        backend_error = None
        if url and traces:
            try:
                async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                    for trace_id in sorted(traces):
                        r = await client.get(f"/api/traces/{trace_id}")
                        if r.status_code == 200:
                            spans += jaeger_timeline(r.json())
            except httpx.HTTPError as exc:
                backend_error = f"{type(exc).__name__}: {exc}"[:300]
        return {
            "q": q,
            "trace_ids": sorted(traces),
            "source": "jaeger" if spans else "board",
            "backend_error": backend_error,
            "spans": spans,
            "events": events,
        }

    return router
