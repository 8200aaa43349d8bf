"""The Spotify Web API through spotipy: client construction, bounded rate-limit waits, paging, errors.

Every request goes through spotipy on a ``requests`` session whose adapter retries
429 (waiting out ``Retry-After``, up to ``RetryPolicy.max_wait_s`` per wait) and 5xx
answers (exponential backoff). What spotipy does not say clearly becomes a named error:

- ``SpotifyRefused``: a 403 or 404 for one resource (an endpoint Spotify has closed, a
  playlist the user neither owns nor collaborates on, an id that does not exist); the
  caller reports it for that input and goes on with the others;
- ``RecordError``: an answer that is not valid JSON (spotipy alone would return None);
- ``SourceError``: anything that stops the whole run (no credentials accepted, the API
  unreachable, a rate limit longer than the allowed wait or retries exhausted).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError
from urllib3.util.retry import Retry

from recsys.config import SPOTIFY_API_BASE, Settings
from recsys.errors import ConfigError, RecordError, SourceError

RETRY_STATUSES = (429, 500, 502, 503, 504)

# spotipy logs every HTTP error at ERROR level; ingestion reports them itself, in one line per input.
logging.getLogger("spotipy").addHandler(logging.NullHandler())


@dataclass
class RetryPolicy:
    """How long and how often to wait for the Web API before giving up on a run."""

    max_retries: int = 5  # per request, for 429 and 5xx answers
    max_wait_s: float = 60.0  # the longest single Retry-After this run waits out
    backoff_s: float = 0.5  # exponential backoff factor for 5xx answers without Retry-After
    timeout_s: float = 20.0  # per request
    sleep: Callable[[float], None] = time.sleep
    waits: list[float] = field(default_factory=list)  # every rate-limit wait taken, in seconds


class BoundedRetry(Retry):
    """urllib3's Retry that waits out ``Retry-After`` only up to a bound, and records each wait.

    A ``Retry-After`` longer than the bound stops the run at once with a clear message
    (waiting less and retrying early only earns another 429).
    """

    def __init__(self, *args: Any, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy or RetryPolicy()

    def new(self, **kw: Any) -> BoundedRetry:
        fresh = super().new(**kw)
        fresh.policy = self.policy
        return fresh

    def sleep_for_retry(self, response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is None:
            return False
        if retry_after > self.policy.max_wait_s:
            raise SourceError(
                f"Spotify rate limit: the Web API asks to wait {retry_after:.0f} s (Retry-After), more than "
                f"the allowed {self.policy.max_wait_s:.0f} s; run again later (what was ingested is kept)"
            )
        if retry_after > 0:
            self.policy.waits.append(retry_after)
            self.policy.sleep(retry_after)
        return True


def _session(policy: RetryPolicy) -> requests.Session:
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
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class SpotifyApi:
    """The few Web API reads ingestion needs, each returning parsed JSON or raising a named error."""

    def __init__(self, settings: Settings, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self.base = settings.spotify_api_base
        session = _session(self.policy)
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
        except SpotifyOauthError as exc:
            raise SourceError(
                f"Spotify refused the client credentials ({exc.error or 'no error code'}) at the token URL: "
                f"{exc.error_description or exc}"
            ) from None
        except requests.RequestException as exc:
            raise SourceError(f"cannot reach the Spotify Web API at {self.base} ({what}): {exc}") from None
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
                return SourceError(
                    f"Spotify rate limit: still answering 429 for {what} after {self.policy.max_retries} "
                    "retries; run again later (what was ingested is kept)"
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
