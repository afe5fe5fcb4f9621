"""bench_page fails loudly when the stack's api never answers (it used to wait 60 s, then
score Chrome's error page)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_page import StackDownError, wait_healthy
from bench.net import free_port


def test_a_stack_that_exited_is_reported_with_its_logs(tmp_path: Path) -> None:
    (tmp_path / "api.log").write_text("OSError: [Errno 98] address already in use\n")
    stack = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    stack.wait(10)
    with pytest.raises(StackDownError, match=r"exited with code 3(.|\n)*address already in use"):
        wait_healthy(f"http://127.0.0.1:{free_port()}/", stack, tmp_path)


def test_an_api_that_never_answers_fails(tmp_path: Path) -> None:
    # A stack that runs and never serves: it waits on its stdin until the test kills it.
    stack = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        with pytest.raises(StackDownError, match="never answered"):
            wait_healthy(f"http://127.0.0.1:{free_port()}/", stack, tmp_path, timeout=1.0)
    finally:
        stack.kill()
        stack.wait(10)
        if stack.stdin is not None:
            stack.stdin.close()
