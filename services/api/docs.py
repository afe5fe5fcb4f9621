"""/docs: Swagger UI from vendored files, under a CSP that allows its one inline script.

FastAPI's default /docs loads Swagger UI from a CDN: it fails offline, and it runs a
third party's script in the origin that keeps the write token. The start-up script is
inline in the page FastAPI makes; its SHA-256 goes into the page's own CSP.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor/swagger-ui"
_INLINE = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_csp(html: str) -> str:
    """The CSP of a page whose inline scripts are exactly those of ``html``."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE.findall(html))
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def install(app: FastAPI) -> None:
    """Serve /docs (the app must be made with ``docs_url=None``, ``redoc_url=None``)."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
        swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui.css", swagger_favicon_url="data:,",
        # No validator badge: it would send the schema to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    ).body
    html = bytes(page).decode()
    headers = {"Content-Security-Policy": docs_csp(html)}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)
