"""One error body for every failure: the ``Error`` model, whoever raised it.

FastAPI's own 422 (a list under ``detail``, echoing the input: NaN in it made the answer
itself fail with a 500), starlette's 404 and 405, our HTTPExceptions, the body limit's 413
and any unexpected 500 all answer ``{"detail": "<sentence>", "errors": [...]}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.models import Error, FieldError

log = logging.getLogger(__name__)

# Declared on every route, so the OpenAPI says what each error answer looks like.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Error} for code in (400, 401, 404, 405, 409, 413, 422, 500, 503, 504)
}


def error_json(status: int, detail: str, errors: list[FieldError] | None = None,
               headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An ``Error`` answer."""
    body = Error(detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(mode="json"), status, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    # Never the input: it may be NaN (not JSON) or a secret somebody mistyped.
    return [FieldError(loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                       msg=str(e.get("msg", "")), type=str(e.get("type", "")))
            for e in exc.errors()]


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    detail = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors)
    return error_json(422, detail or "invalid request", errors)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_json(exc.status_code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("service=api %s %s failed: %r", request.method, request.url.path, exc)
    return error_json(500, "internal error (logged)")


def install(app: FastAPI) -> None:
    """Register the handlers."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
