"""The Spotify Web API through spotipy: client construction, bounded rate-limit waits, paging, errors.

Every request goes through spotipy on a ``requests`` session whose adapter retries
429 (waiting out ``Retry-After``, up to ``RetryPolicy.max_wait_s`` per wait) and 5xx
answers (exponential backoff). A ``Retry-After`` that is neither a number of seconds
nor an HTTP date is waited out as the default backoff instead (and said so). Each
attempt has a deadline (``RECSYS_SPOTIFY_DEADLINE_S``, 60 s): the per-read timeout
alone lets a server that sends a byte every few seconds hold a request for ever, so
at the deadline the request's socket is shut, whatever it was waiting for (the
headers or the body). Rate-limit and backoff waits between attempts do not count.
An answer is read with the ingest's input limits before spotipy parses it: one larger
than ``RECSYS_MAX_INPUT_BYTES`` (counted as it arrives, decompressed) or nested deeper
than ``RECSYS_MAX_JSON_DEPTH`` is refused for its input, which costs one line.
What spotipy does not say clearly becomes a named error:

- ``SpotifyRefused``: a 403 or 404 for one resource (an endpoint Spotify has closed, a
  playlist the user neither owns nor collaborates on, an id that does not exist); the
  caller reports it for that input and goes on with the others;
- ``RecordError``: an answer that is not valid JSON (spotipy alone would return None), or
  beyond the input limits;
- ``SourceError``: anything that stops the whole run (no credentials accepted, the API
  or the token endpoint unreachable (each named as such), a request past its deadline,
  a rate limit longer than the allowed wait or retries exhausted).
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from pipelines.ingest.guards import InputLimits, json_depth
from recsys.config import SPOTIFY_API_BASE, Settings
from recsys.errors import ConfigError, RecordError, SourceError

RETRY_STATUSES = (429, 500, 502, 503, 504)

# spotipy logs every HTTP error at ERROR level; ingestion reports them itself, in one line per input.
logging.getLogger("spotipy").addHandler(logging.NullHandler())
log = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    """How long and how often to wait for the Web API before giving up on a run."""

    max_retries: int = 5  # per request, for 429 and 5xx answers
    max_wait_s: float = 60.0  # the longest single Retry-After this run waits out
    backoff_s: float = 0.5  # exponential backoff factor for 5xx answers and invalid Retry-After values
    timeout_s: float = 20.0  # per read
    deadline_s: float | None = None  # per attempt, however slowly the answer comes (None: the setting)
    sleep: Callable[[float], None] = time.sleep
    waits: list[float] = field(default_factory=list)  # every rate-limit wait taken, in seconds
    invalid_retry_after: list[str] = field(default_factory=list)  # Retry-After values that were not valid


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` asks to wait (a number of seconds or an HTTP date); None when it is invalid.

    Unlike urllib3's, the value is not cut to six hours: a message reports what the server asked.
    """
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class DeadlineExceeded(requests.Timeout):
    """One attempt at a request took longer than its deadline."""

    def __init__(self, url: str, deadline_s: float) -> None:
        super().__init__(f"{url} took longer than its {deadline_s:g} s deadline")
        self.url, self.deadline_s = url, deadline_s


class AnswerRefused(Exception):
    """An answer beyond the input limits (too large, or nested too deep): read no further, never parsed."""


def read_answer(response: requests.Response, limits: InputLimits) -> None:
    """Read ``response``'s body, at most ``limits.max_input_bytes`` of it once decompressed, and check
    its nesting before anyone parses it; AnswerRefused (the response closed) when it is beyond them."""
    body = bytearray()
    for chunk in response.iter_content(1 << 16):
        body += chunk
        if len(body) > limits.max_input_bytes:
            response.close()
            raise AnswerRefused(f"of more than {limits.max_input_bytes:,} bytes (RECSYS_MAX_INPUT_BYTES)")
    if json_depth(bytes(body), stop=limits.max_json_depth) > limits.max_json_depth:
        response.close()
        raise AnswerRefused(f"nested more than {limits.max_json_depth:,} levels deep (RECSYS_MAX_JSON_DEPTH)")
    response._content = bytes(body)  # what requests' own ``content`` would hold
    response._content_consumed = True


class _Watch:
    """The deadline of one request: when it passes, the request's socket is shut, which ends any read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.restart()

    def restart(self) -> None:
        """Give the next attempt the whole deadline (after a wait between attempts)."""
        self.pause()
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def pause(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.expired and sock is not None:
                _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
        self.pause()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


# The watch of the request this thread is sending, for the connection that carries it.
_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("spotify_request_watch", default=None)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)
        watch = _WATCH.get()
        if watch is not None:
            watch.watch(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)
        watch = _WATCH.get()
        if watch is not None:
            watch.watch(self.sock)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """``requests``' adapter with a deadline on each attempt, body included, however slowly it arrives,
    and the input limits on the body (:func:`read_answer`)."""

    def __init__(self, deadline_s: float, limits: InputLimits | None = None, **kwargs: Any) -> None:
        self.deadline_s = deadline_s
        self.limits = limits or InputLimits()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        stream = bool(kwargs.pop("stream", args[0] if args else False))
        args = args[1:]
        watch = _Watch(self.deadline_s)
        token = _WATCH.set(watch)
        try:
            response = super().send(request, True, *args, **kwargs)
            if not stream:
                read_answer(response, self.limits)  # the body, read while the deadline is watched
        except requests.RequestException:
            if watch.expired:
                raise DeadlineExceeded(str(request.url), self.deadline_s) from None
            raise
        finally:
            watch.finish()
            _WATCH.reset(token)
        if watch.expired:
            response.close()
            raise DeadlineExceeded(str(request.url), self.deadline_s)
        return response


class BoundedRetry(Retry):
    """urllib3's Retry that waits out ``Retry-After`` only up to a bound, and records each wait.

    A ``Retry-After`` longer than the bound stops the run at once with a clear message
    (waiting less and retrying early only earns another 429); an invalid one is waited
    out as the default backoff. Waits between attempts do not count against an
    attempt's deadline.
    """

    def __init__(self, *args: Any, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy or RetryPolicy()

    def new(self, **kw: Any) -> BoundedRetry:
        fresh = super().new(**kw)
        fresh.policy = self.policy
        return fresh

    def sleep(self, response: Any = None) -> None:
        watch = _WATCH.get()
        if watch is not None:
            watch.pause()
        try:
            super().sleep(response)
        finally:
            if watch is not None:
                watch.restart()

    def sleep_for_retry(self, response: Any) -> bool:
        header = response.headers.get("Retry-After")
        if header is None:
            return False
        retry_after = parse_retry_after(header)
        if retry_after is None:
            wait = self.policy.backoff_s * 2 ** max(len(self.history) - 1, 0)
            self.policy.invalid_retry_after.append(header)
            log.info("invalid Retry-After %r: waiting the default backoff of %g s", header, wait)
            self.policy.sleep(wait)
            return True
        if retry_after > self.policy.max_wait_s:
            raise SourceError(
                f"Spotify rate limit: the Web API asks to wait {retry_after:.0f} s (Retry-After), more than "
                f"the allowed {self.policy.max_wait_s:.0f} s; run again later (what was ingested is kept)"
            )
        if retry_after > 0:
            self.policy.waits.append(retry_after)
            log.info("rate limited: waiting %g s (Retry-After)", retry_after)
            self.policy.sleep(retry_after)
        return True


def _session(policy: RetryPolicy, deadline_s: float, limits: InputLimits) -> requests.Session:
    retry = BoundedRetry(
        total=policy.max_retries,
        connect=2,
        read=False,
        status=policy.max_retries,
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=policy.backoff_s,
        respect_retry_after_header=True,
        policy=policy,
    )
    session = requests.Session()
    adapter = DeadlineAdapter(deadline_s, limits, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def invalid_retry_after_note(policy: RetryPolicy) -> str | None:
    """What was done about invalid ``Retry-After`` values, for the report; None when there was none."""
    if not policy.invalid_retry_after:
        return None
    values = ", ".join(repr(v) for v in dict.fromkeys(policy.invalid_retry_after))
    return (
        f"spotify: {len(policy.invalid_retry_after)} rate-limit answer(s) with an invalid Retry-After ({values}): "
        "waited the default backoff instead"
    )


def _reason(exc: BaseException) -> str:
    """The innermost reason of a ``requests`` error, without urllib3's pool and retry wrapping."""
    inner: Any = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None) or inner
    text = str(reason)
    return text.split("): ", 1)[1] if "): " in text else text


class SpotifyApi:
    """The few Web API reads ingestion needs, each returning parsed JSON or raising a named error."""

    def __init__(self, settings: Settings, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self.base = settings.spotify_api_base
        self.token_url = settings.spotify_token_url
        self.deadline_s = self.policy.deadline_s or settings.spotify_deadline_s
        self.limits = InputLimits.from_settings(settings)
        session = _session(self.policy, self.deadline_s, self.limits)
        self._last: requests.Response | None = None
        session.hooks["response"].append(self._remember)
        token = settings.spotify_access_token
        secret = settings.spotify_client_secret
        self.user_token = token is not None
        if token is not None:
            self.sp = spotipy.Spotify(
                auth=token.get_secret_value(),
                requests_session=session,
                requests_timeout=self.policy.timeout_s,
            )
        elif settings.spotify_client_id and secret is not None:
            manager = SpotifyClientCredentials(
                client_id=settings.spotify_client_id,
                client_secret=secret.get_secret_value(),
                requests_session=session,
                requests_timeout=self.policy.timeout_s,
                cache_handler=MemoryCacheHandler(),
            )
            manager.OAUTH_TOKEN_URL = settings.spotify_token_url
            self.sp = spotipy.Spotify(
                auth_manager=manager, requests_session=session, requests_timeout=self.policy.timeout_s
            )
        else:
            raise ConfigError(
                "no Spotify credentials: set RECSYS_SPOTIFY_ACCESS_TOKEN (a user token), or "
                "RECSYS_SPOTIFY_CLIENT_ID and RECSYS_SPOTIFY_CLIENT_SECRET"
            )
        self.sp.prefix = self.base

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = response

    # ------------------------------------------------------------------ calls

    def get(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one spotipy call; ``what`` names the resource in messages ("playlist 37i9…")."""
        self._last = None
        try:
            result = call(*args, **kwargs)
        except spotipy.SpotifyException as exc:
            raise self._translate(what, exc) from None
        except AnswerRefused as exc:
            raise RecordError(f"{what}: answer {exc}") from None
        except SpotifyOauthError as exc:
            raise SourceError(
                f"Spotify's token endpoint {self.token_url} refused the client credentials "
                f"({exc.error or 'no error code'}): {exc.error_description or exc}"
            ) from None
        except DeadlineExceeded as exc:
            raise SourceError(
                f"Spotify request {exc.url} ({what}) was not answered within its {exc.deadline_s:g} s deadline "
                "(RECSYS_SPOTIFY_DEADLINE_S): the server sends too slowly; run again later (what was ingested "
                "is kept)"
            ) from None
        except requests.RequestException as exc:
            url = str(getattr(exc.request, "url", "") or "")
            if url.startswith(self.token_url):
                raise SourceError(
                    f"cannot get a token from the Spotify token endpoint {self.token_url} ({what}): {_reason(exc)}"
                ) from None
            raise SourceError(
                f"cannot reach the Spotify Web API at {self.base} ({what}): {_reason(exc)}"
            ) from None
        if not isinstance(result, dict):
            raise RecordError(f"{what}: {self._bad_body()}")
        return result

    def follow(self, what: str, url: str) -> dict[str, Any]:
        """GET a paging ``next`` URL, pointed at the configured API base when it names the official one."""
        if self.base != SPOTIFY_API_BASE and url.startswith(SPOTIFY_API_BASE):
            url = self.base + url[len(SPOTIFY_API_BASE) :]
        return self.get(what, self.sp._get, url)

    def pages(self, what: str, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """``first`` and every page after it, following ``next`` links."""
        page: dict[str, Any] | None = first
        seen: set[str] = set()
        while page is not None:
            yield page
            nxt = page.get("next")
            if not isinstance(nxt, str) or not nxt or nxt in seen:
                return
            seen.add(nxt)
            page = self.follow(what, nxt)

    def _bad_body(self) -> str:
        response = self._last
        if response is None or not response.text.strip():
            return "invalid answer: empty body"
        try:
            json.loads(response.text)
        except ValueError as exc:
            return f"invalid JSON in the answer ({exc})"
        return "invalid answer: not a JSON object"

    @property
    def last_body(self) -> str | None:
        return None if self._last is None else self._last.text

    def _translate(self, what: str, exc: spotipy.SpotifyException) -> Exception:
        status = exc.http_status
        message = str(exc.msg).split("\n", 1)[-1].strip() or "no message"
        if status in (403, 404):
            return SpotifyRefused(what, status, message)
        if status == 401:
            return SourceError(
                f"Spotify rejected the access token (401) for {what}: {message}; "
                "set a fresh RECSYS_SPOTIFY_ACCESS_TOKEN or check the client credentials"
            )
        if status == 429 and str(exc.msg).endswith("Max Retries"):
            # spotipy reports every exhausted retry as a 429; the reason says which status it was.
            reason = str(exc.reason or "")
            if "429" in reason or not reason:
                invalid = self.policy.invalid_retry_after
                waited = (
                    f" (its Retry-After {invalid[-1]!r} is invalid: the default backoff was waited instead)"
                    if invalid
                    else ""
                )
                return SourceError(
                    f"Spotify rate limit: still answering 429 for {what} after {self.policy.max_retries} "
                    f"retries{waited}; run again later (what was ingested is kept)"
                )
            return SourceError(
                f"Spotify Web API kept failing for {what} after {self.policy.max_retries} retries ({reason})"
            )
        if status == 429:
            return SourceError(f"Spotify rate limit for {what}: {message}; run again later")
        return SourceError(f"Spotify Web API error {status} for {what}: {message}")


class SpotifyRefused(SourceError):
    """A 403 or 404 for one resource: reported for that input, the others go on."""

    def __init__(self, what: str, status: int, message: str) -> None:
        self.what, self.status, self.message = what, status, message
        hint = {
            403: "Spotify answers 403 for endpoints closed to this app and for playlists the user neither "
            "owns nor collaborates on",
            404: "not found, or an endpoint Spotify has closed",
        }.get(status, "invalid request")
        super().__init__(f"{what}: HTTP {status} {message} ({hint})")
