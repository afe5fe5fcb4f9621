"""The `enerbox` command's own options."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from tests.conftest import ROOT


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "services.app.cli", "--version"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"enerbox {version('enerbox')}"
