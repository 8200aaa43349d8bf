"""What a request may cost: a rate per key (token buckets) and a cap on the bytes of a body.

Rates are kept in the serving process: with ``--workers N`` each worker holds its own
buckets, so a key may make up to N times its rate in all.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from recsys.api.errors import ApiError, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets, one per key: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError(
                f"a rate limit needs a rate above 0 and a burst of at least 1, not {rate}, {burst}"
            )
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, rate: float | None = None, burst: int | None = None) -> float:
        """Spend one request of ``key``'s bucket: 0.0 when allowed, else the seconds until it would be."""
        rate = rate or self.rate
        burst = burst or self.burst
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


def retry_after(wait_s: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))


class BodyTooLarge(ApiError):
    def __init__(self, code: str, limit: int) -> None:
        what = "video upload" if code == "upload_too_large" else "request body"
        super().__init__(413, code, f"the {what} is larger than {_size(limit)}")


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n / 2**10:g} KiB"


class BodyLimit:
    """ASGI middleware: a body over its cap is refused with 413, by its ``Content-Length`` before
    a byte is read, or, sent in chunks, as soon as the bytes read pass the cap.

    Paths in ``uploads`` (the video upload) have ``upload_bytes`` (plus room for the form's
    other fields); every other path ``body_bytes``."""

    FORM_ROOM = 64 * 1024  # the multipart framing and the form's small fields beside the file

    def __init__(self, app: ASGIApp, *, body_bytes: int, upload_bytes: int, uploads: tuple[str, ...]) -> None:
        self.app, self.body_bytes, self.upload_bytes, self.uploads = app, body_bytes, upload_bytes, uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.uploads:
            code, shown, limit = "upload_too_large", self.upload_bytes, self.upload_bytes + self.FORM_ROOM
        else:
            code, shown, limit = "body_too_large", self.body_bytes, self.body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_error(send, BodyTooLarge(code, shown))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(code, shown)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error_body(error.code, error.message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
