"""`python -m services.<name>` and `enerbox run <name>` still reach the composition root."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.app.registry import SERVICES
from tests.conftest import ROOT


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_python_m_service_loads_the_configuration(name: str) -> None:
    # A bad value stops the service at start (exit 2) with the key named: the module ran
    # through the runner and the whole configuration, without a broker.
    env = {**os.environ, "ENERBOX_MQTT__PORT": "not-a-port", "ENERBOX_CONFIG": "/nonexistent"}
    result = subprocess.run([sys.executable, "-m", f"services.{name}"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "mqtt.port = 'not-a-port'" in result.stderr
