"""`make install`'s systemd unit runs the whole stack with the paths the docs promise."""

from __future__ import annotations

import configparser
import subprocess

from tests.conftest import ROOT


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "config" / "enerbox.service", encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"] == "/opt/enerbox/bin/enerbox run all"
    assert service["User"] == "enerbox" and service["ReadWritePaths"] == "/var/lib/enerbox"
    text = (ROOT / "config" / "enerbox.service").read_text(encoding="utf-8")
    assert "Environment=ENERBOX_CONFIG=/etc/enerbox/enerbox.yaml" in text
    assert "Environment=ENERBOX_GENERAL__DATA_DIR=/var/lib/enerbox" in text
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_make_install_plan() -> None:
    plan = subprocess.run(["make", "-n", "install"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    assert "/etc/systemd/system/enerbox.service" in plan
    assert "/etc/enerbox/enerbox.yaml" in plan and "/var/lib/enerbox" in plan
