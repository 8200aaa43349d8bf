"""What the server tells its operators: one JSON log line per request, and Prometheus metrics.

The log line (logger ``recsys.api.access``, which ``recsys serve`` writes to stderr) holds
the method, the path, the status, the latency in milliseconds and the name of the key
(never the key itself). The metrics, served at ``/metrics`` in Prometheus' text format,
count requests by method, route template and status and time them by route. An error
no route handled becomes a 500 ``internal_error`` here: its one-line reason goes to the
log, its traceback only at debug level, and the client never sees either.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from recsys.api.errors import ApiError
from recsys.api.limits import ASGIApp, Message, Receive, Scope, Send, send_error

access_log = logging.getLogger("recsys.api.access")
log = logging.getLogger("recsys.api")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The server's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "recsys_api_requests",
            "Requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_api_request_seconds",
            "Time from a request's arrival until its answer was sent, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "recsys_api_requests_in_flight", "Requests being answered now.", registry=self.registry
        )


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/v1/tracks/{track_id}``), so metrics stay bounded."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class Observe:
    """ASGI middleware, outermost: times each request, logs it as one JSON line, counts it."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500
        sent = False

        async def noted(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status, sent = int(message["status"]), True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, noted)
        except Exception as exc:  # the one place an unforeseen error becomes a 500: logged, never shown
            log.error(
                "internal error on %s %s: %s: %s", scope["method"], scope["path"], type(exc).__name__, exc
            )
            log.debug("traceback of the internal error", exc_info=True)
            if not sent:
                status = 500
                await send_error(
                    send, ApiError(500, "internal_error", "internal error: the server's log says more")
                )
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = route_of(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps(_line(scope, state, status, seconds), ensure_ascii=False))


def _line(scope: Scope, state: Any, status: int, seconds: float) -> dict[str, Any]:
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "latency_ms": round(seconds * 1000, 2),
        "key": state.get("key_name") if isinstance(state, dict) else None,
    }
