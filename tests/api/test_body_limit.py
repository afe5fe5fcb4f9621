"""The body limit holds for streamed bodies too, before auth, through a real socket."""

from __future__ import annotations

from pathlib import Path

from tests.api.alone import run_api
from tests.api.rawhttp import post_chunked, send_head
from tests.conftest import Broker

MB = 1024 * 1024


def test_chunked_body_is_cut_at_the_limit_before_auth(broker: Broker, prefix: str,
                                                      tmp_path: Path) -> None:
    with run_api(tmp_path, broker, prefix, {"token": "t0ken-t0ken"}) as api:
        before = api.rss_kib()
        answer = post_chunked(api.port, "/api/relays/living", 64 * MB)  # no token
        grown_mb = (api.rss_kib() - before) / 1024
        assert answer.status == 413, answer
        assert set(answer.json()) >= {"detail"}
        assert "16384 bytes" in answer.json()["detail"]
        assert answer.headers.get("connection") == "close"
        assert answer.sent < 8 * MB, "the server kept reading after the limit"
        assert grown_mb < 16, f"RSS grew {grown_mb:.1f} MB"
        assert api.proc.poll() is None


def test_declared_length_over_the_limit_is_refused_before_the_body(
        broker: Broker, prefix: str, tmp_path: Path) -> None:
    with run_api(tmp_path, broker, prefix, {"token": "t0ken-t0ken"}) as api:
        for path in ("/api/relays/living", "/nowhere", "/api/health"):
            answer = send_head(api.port, f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\nContent-Length: 999999\r\n\r\n")
            assert answer.status == 413, (path, answer)
            assert isinstance(answer.json()["detail"], str)
