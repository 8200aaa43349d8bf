"""Who may ask: the API key on each request, checked against the catalog's hashes, and its rate.

A key comes as ``Authorization: Bearer <secret>`` or ``X-API-Key: <secret>``. Health
needs none; every other route needs a key that exists and is not revoked, unless the
server runs with ``--no-auth`` (a local-only server: no key, no rate limit). The name
of the key (never the secret) is noted on the request for the access log.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recsys.api.errors import ApiError
from recsys.api.limits import RateLimiter, retry_after
from recsys.api.services import Services
from recsys.catalog.api_keys import check_key

_BEARER = HTTPBearer(auto_error=False, description="An API key made with `recsys api-key create NAME`.")
_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same key, in a header of its own."
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
NO_AUTH_NAME = "-"  # what the access log shows for requests to a server without keys


@dataclass
class Gate:
    """The server's access rules: whether keys are required, and the rate limiter."""

    auth: bool
    limiter: RateLimiter


def authorised(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Security(_BEARER),
    header: str | None = Security(_HEADER),
) -> str:
    """The name of the key the request bears (a 401 or 429 ``ApiError`` when it may not be served)."""
    gate: Gate = request.app.state.gate
    if not gate.auth:
        request.state.key_name = NO_AUTH_NAME
        return NO_AUTH_NAME
    secret = (bearer.credentials if bearer is not None else header or "").strip()
    if not secret:
        raise ApiError(
            401,
            "missing_key",
            "this route needs an API key: send `Authorization: Bearer <key>` "
            "(make one with `recsys api-key create NAME`)",
            headers=_CHALLENGE,
        )
    services: Services = request.app.state.services
    found = check_key(services.engine(), secret)
    if found.name is None:
        raise ApiError(401, "invalid_key", "the API key is not known", headers=_CHALLENGE)
    request.state.key_name = found.name
    if found.revoked:
        raise ApiError(401, "revoked_key", f"the API key {found.name!r} was revoked", headers=_CHALLENGE)
    wait = gate.limiter.take(found.name, rate=found.rate_per_s, burst=found.burst)
    if wait > 0:
        rate = found.rate_per_s or gate.limiter.rate
        after = retry_after(wait)
        raise ApiError(
            429,
            "rate_limited",
            f"the API key {found.name!r} is over its rate of {rate:g} requests per second: "
            f"retry after {after} s",
            headers={"Retry-After": after},
        )
    return found.name
