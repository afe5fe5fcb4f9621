"""The API's port already taken: the process says so and exits non-zero (it used to stay
``online`` serving nothing)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.api.alone import write_config
from tests.conftest import ROOT, Broker, free_port


def test_port_taken_exits_non_zero_and_says_so(broker: Broker, prefix: str,
                                               tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        config = write_config(tmp_path, broker, prefix, port, {"token": "t0ken-t0ken"})
        result = subprocess.run(
            [sys.executable, "-m", "services.app.cli", "run", "api", "--config", str(config)],
            cwd=ROOT, env={**os.environ, "ENERBOX_CONFIG": str(config)},
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode != 0, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
