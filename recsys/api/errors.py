"""Errors of the HTTP API: every one is JSON ``{"error": {"code", "message"}}``, never a traceback.

The codes are stable (clients branch on them); the message is one line a person reads.
The library's named errors map to codes here, once, as the command line and the UI map
them to a line and a message:

========================  ======  ==========================================================
code                      status  when
========================  ======  ==========================================================
``missing_key``           401     no ``Authorization: Bearer …`` or ``X-API-Key`` header
``invalid_key``           401     a key no one made
``revoked_key``           401     a key revoked with ``recsys api-key revoke``
``rate_limited``          429     the key is over its rate (``Retry-After`` says when to retry)
``malformed_body``        400     the body is not JSON
``invalid_request``       422     a field is missing, of the wrong type or out of range
``bad_input``             400     the library refused a value (an unknown method, a bad filter)
``not_found``             404     an unknown track, playlist, vector or route
``method_not_allowed``    405     a route asked with the wrong HTTP method
``body_too_large``        413     a request body over the API's cap (``RECSYS_API_MAX_BODY_KB``)
``upload_too_large``      413     a video over the UI's cap (``RECSYS_UI_MAX_UPLOAD_MB``)
``invalid_video``         422     an upload that is not a decodable video, or runs too long
``not_ready``             503     what the request needs is not built yet (no model, no vectors)
``busy``                  503     another process holds a lock this request needs
``catalog_unavailable``   503     the catalog database cannot be reached or read
``store_unavailable``     503     the vector store cannot be reached
``internal_error``        500     anything else (logged by the server, never shown)
========================  ======  ==========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.exceptions import StarletteHTTPException as HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from recsys.errors import (
    CatalogError,
    ConfigError,
    InputError,
    LockedError,
    NotFoundError,
    RecordError,
    RecsysError,
    VectorStoreError,
    VideoError,
)

log = logging.getLogger("recsys.api")

RETRY_BUSY_S = 5  # Retry-After of a 503 for a lock another process holds


class ApiError(HTTPException):
    """An answer other than success: its status, stable code and one-line message.

    A subclass of Starlette's ``HTTPException``, so that one raised while the framework
    reads a body (the body cap) reaches its handler unchanged."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers or {}))
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error.code, error.message), error.status_code, headers=error.headers)


def from_library(exc: RecsysError | SQLAlchemyError) -> ApiError:
    """The API's answer to a named error of the library (or of the database driver)."""
    if isinstance(exc, SQLAlchemyError):
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return ApiError(503, "catalog_unavailable", f"the catalog database cannot be read: {first}")
    message = " ".join(str(exc).split())
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", message)
    if isinstance(exc, VideoError):
        return ApiError(422, "invalid_video", message)
    if isinstance(exc, InputError | RecordError):
        return ApiError(400, "bad_input", message)
    if isinstance(exc, LockedError):
        return ApiError(503, "busy", message, headers={"Retry-After": str(RETRY_BUSY_S)})
    if isinstance(exc, ConfigError):
        return ApiError(503, "not_ready", message)
    if isinstance(exc, CatalogError):
        return ApiError(503, "catalog_unavailable", message)
    if isinstance(exc, VectorStoreError):
        return ApiError(503, "store_unavailable", message)
    return ApiError(500, "internal_error", message)


def not_ready(exc: RecsysError | SQLAlchemyError) -> ApiError:
    """A service the request needs cannot be built: 503 ``not_ready`` (a missing model is no 404)."""
    error = from_library(exc)
    if error.code in ("not_found", "bad_input", "internal_error"):
        return ApiError(503, "not_ready", error.message)
    return error


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "form")]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> ApiError:
    """A body that is not JSON → ``malformed_body``; a wrong field → ``invalid_request`` naming it."""
    errors = list(exc.errors())
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        reason = (broken.get("ctx") or {}).get("error") or broken.get("msg") or "invalid JSON"
        return ApiError(400, "malformed_body", f"the request body is not valid JSON: {reason}")
    described = [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return ApiError(422, "invalid_request", "; ".join(described) + more)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def install(app: FastAPI) -> None:
    """The handlers that turn every error the routes meet into the JSON error body."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if not isinstance(exc, ApiError):
            code = _HTTP_CODES.get(
                exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error"
            )
            detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
            if exc.status_code == 404 and detail == "Not Found":
                detail = "no such route: see /docs for the API's routes"
            elif exc.status_code == 405:
                detail = "this route does not take that method: see /docs"
            exc = ApiError(exc.status_code, code, detail, headers=exc.headers)
        return error_response(exc)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc))

    async def library(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RecsysError | SQLAlchemyError)
        error = from_library(exc)
        if error.status_code >= 500:
            log.warning("%s: %s", error.code, error.message)
        return error_response(error)

    app.add_exception_handler(HTTPException, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(RecsysError, library)
    app.add_exception_handler(SQLAlchemyError, library)
