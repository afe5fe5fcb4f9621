"""Hostile or odd requests: NaN and infinities, one error body for every 4xx, security
headers, and /docs served from the box itself."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import Stack


def assert_error_model(r: httpx.Response, status: int) -> dict[str, Any]:
    """The documented Error body: a sentence, and a list of field errors."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    for e in body["errors"]:
        assert set(e) == {"loc", "msg", "type"}, e
    return body


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "0.5", "0", "31708800.5",
                                   "1e400"])
def test_for_s_must_be_finite_and_between_a_second_and_a_year(stack: Stack, value: str) -> None:
    r = httpx.post(f"{stack.url}/api/relays/water-heater",
                   content=f'{{"mode": "on", "for_s": {value}}}',
                   headers={**stack.auth, "Content-Type": "application/json"}, timeout=10)
    body = assert_error_model(r, 422)
    assert any(e["loc"] == ["body", "for_s"] for e in body["errors"]), body


@pytest.mark.parametrize(("start", "end"), [("nan", "1"), ("1", "inf"), ("-inf", "1"),
                                            ("1", "1e400"), ("-5", "1")])
def test_history_bounds_must_be_finite(stack: Stack, start: str, end: str) -> None:
    r = httpx.get(f"{stack.url}/api/history", params={
        "service": "teleinfo", "device": "linky", "field": "apparent_power_va",
        "start": start, "end": end})
    body = assert_error_model(r, 422)
    assert body["errors"][0]["loc"][0] == "query"


def test_every_error_answer_has_the_same_shape(stack: Stack) -> None:
    url = stack.url
    assert_error_model(httpx.get(f"{url}/nowhere"), 404)
    assert_error_model(httpx.get(f"{url}/api/devices/teleinfo/nope"), 404)
    r = httpx.delete(f"{url}/api/state")
    assert_error_model(r, 405)
    assert "GET" in r.headers["allow"]
    r = httpx.post(f"{url}/api/relays/living", json={"mode": "on"}, timeout=10)
    assert_error_model(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(f"{url}/api/relays/living", content=b"{not json", timeout=10,
                   headers={**stack.auth, "Content-Type": "application/json"})
    assert_error_model(r, 422)
    assert_error_model(httpx.get(f"{url}/api/events", params={"limit": 0}), 422)
    now = time.time()
    r = httpx.get(f"{url}/api/history", params={"service": "teleinfo", "device": "linky",
                                               "field": "x", "start": now, "end": now - 1})
    assert_error_model(r, 400)
    r = httpx.post(f"{url}/api/relays/living", content=b"x" * 20000, timeout=10,
                   headers={"Content-Type": "application/json"})
    assert "16384" in assert_error_model(r, 413)["detail"]


def test_openapi_declares_the_error_model_on_every_route(stack: Stack) -> None:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    assert set(spec["components"]["schemas"]["Error"]["properties"]) == {"detail", "errors"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status in ("404", "422", "413"):
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/Error"), (method, path, status)


@pytest.mark.parametrize("path", ["/", "/api/health", "/nowhere", "/static/app.js", "/docs"])
def test_security_headers_on_every_answer(stack: Stack, path: str) -> None:
    r = httpx.get(f"{stack.url}{path}")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_docs_work_offline(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/docs")
    assert r.status_code == 200
    assert not re.search(r"https?://", r.text), "the page loads something from elsewhere"
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        if not asset.startswith("data:"):
            assert httpx.get(f"{stack.url}{asset}").status_code == 200, asset
    assert httpx.get(f"{stack.url}/redoc").status_code == 404
