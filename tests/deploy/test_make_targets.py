"""What `make run`, `make test` and `make install` install, read from `make -n` (nothing runs),
the `pi` extra, and the systemd unit's working directory."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import tomllib
from pathlib import Path

from tests.conftest import ROOT


def plan(target: str, venv: Path) -> str:
    """The commands `make -n target` would run with the venv at ``venv``."""
    return subprocess.run(["make", "-n", f"VENV={venv}", target], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_make_run_installs_the_runtime_only(tmp_path: Path) -> None:
    run = plan("run", tmp_path / "venv")
    assert "pip install -q -e ." in run
    assert "[dev]" not in run
    for tool in ("chromium", "docker-compose", "victoria-metrics", "openssl"):
        assert tool not in run, tool
    assert "mosquitto" in run
    test = plan("test", tmp_path / "venv")
    assert "pip install -q -e '.[dev]'" in test
    assert all(tool in test for tool in ("chromium", "victoria-metrics", "openssl"))


def test_make_run_after_make_test_installs_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # what `make test`'s install leaves behind
    (venv / ".installed-run").touch()
    newer = (ROOT / "pyproject.toml").stat().st_mtime + 10
    for stamp in (".installed", ".installed-run"):
        os.utime(venv / stamp, (newer, newer))
    run = plan("run", venv)
    assert "pip install" not in run
    assert "sim stack" in run


def test_pi_extra_is_pinned_and_installed_on_a_pi_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pi = project["optional-dependencies"]["pi"]
    names = {re.split(r"==", req)[0] for req in pi}
    assert names == {"lgpio", "gpiod"}
    assert all(re.fullmatch(r"[\w.-]+==[\w.]+", req) for req in pi), pi
    # gpiod is also a runtime dependency (the display): one version in both places.
    assert next(r for r in pi if r.startswith("gpiod==")) in project["dependencies"]
    install = subprocess.run(["make", "-n", "install"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert re.search(r"Raspberry Pi.*/proc/device-tree/model.*\.\[pi\]", install, re.DOTALL)
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'TARGETARCH.*arm\*\) target="\.\[pi\]"', docker, re.DOTALL)


def test_systemd_unit_runs_in_a_writable_directory() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "config" / "enerbox.service", encoding="utf-8")
    service = unit["Service"]
    # lgpio (Pi 5) writes in the working directory; / is read-only (ProtectSystem=strict).
    assert service["WorkingDirectory"] == "/var/lib/enerbox"
    assert service["WorkingDirectory"] in service["ReadWritePaths"].split()
    assert service["ProtectSystem"] == "strict"
