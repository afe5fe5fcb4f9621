"""One whole stack (broker, simulators, every service, the api) for the API and page tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

TOKEN = "test-token-0123456789"


@dataclass
class Stack:
    """Where the running stack answers."""

    url: str
    mqtt_port: int
    run_dir: Path
    token: str = TOKEN

    @property
    def auth(self) -> dict[str, str]:
        """Headers for writes."""
        return {"Authorization": f"Bearer {self.token}"}


def wait_until(check: object, timeout: float = 30.0) -> None:
    """Poll ``check()`` until it is truthy."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, KeyError, IndexError, TypeError) as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"condition not met in {timeout} s ({last!r})")


# The api tests' whole stack (`make run`), shared by tests/api and stopped after them: left
# running for the rest of the session it loaded the box under every later test (the fault
# runs' timings among them).
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("stack")
    mqtt_port, api_port = free_port(), free_port()
    env = {**os.environ, "ENERBOX_API__PORT": str(api_port), "ENERBOX_API__TOKEN": TOKEN,
           "ENERBOX_HISTORIAN__FLUSH_INTERVAL_S": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.app.cli", "sim", "stack", "--port", str(mqtt_port),
         "--run-dir", str(run_dir)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    stack = Stack(f"http://127.0.0.1:{api_port}", mqtt_port, run_dir)
    try:
        wait_until(lambda: httpx.get(f"{stack.url}/api/health", timeout=2).status_code == 200)
        wait_until(lambda: any(d["service"] == "teleinfo" and d["state"]
                               for d in httpx.get(f"{stack.url}/api/state").json()["devices"]))
        yield stack
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``after_first_minute`` go last among the api tests: the local history
    writes closed minutes only, so by then the stack's first minute has closed and they do
    not sit waiting for it (about 30 s of make test). The package's stack fixture still
    serves them: they stay inside the package's block of tests."""
    api = [i for i, item in enumerate(items) if "tests/api/" in item.nodeid]
    if not api:
        return
    block = items[api[0]:api[-1] + 1]
    late = [item for item in block if item.get_closest_marker("after_first_minute")]
    if late:
        rest = [item for item in block if item not in late]
        items[api[0]:api[-1] + 1] = rest + late
