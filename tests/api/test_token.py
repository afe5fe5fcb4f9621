"""The write token never reaches a log: it is written to an owner-only file, whose path is."""

from __future__ import annotations

import logging
import stat
import subprocess
from pathlib import Path

import pytest

from services.api.security import load_token
from tests.api.alone import run_api
from tests.conftest import Broker


def test_generated_token_goes_to_a_private_file_not_to_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    token = load_token(None, tmp_path)
    path = tmp_path / "api-token"
    assert path.read_text(encoding="utf-8").strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    out = capsys.readouterr()
    assert token not in caplog.text + out.out + out.err
    assert str(path) in caplog.text
    assert load_token(None, tmp_path) == token  # kept across restarts


def test_running_api_logs_no_secret(broker: Broker, prefix: str, tmp_path: Path) -> None:
    log_file = tmp_path / "stderr.log"
    with log_file.open("wb") as stderr, run_api(tmp_path, broker, prefix, stderr=stderr) as api:
        token = (api.data_dir / "api-token").read_text(encoding="utf-8").strip()
    text = log_file.read_text(encoding="utf-8")
    assert token and token not in text
    assert str(api.data_dir / "api-token") in text


def test_stderr_never_carries_the_configured_token(broker: Broker, prefix: str,
                                                    tmp_path: Path) -> None:
    secret = "s3cret-t0ken-never-logged"
    with run_api(tmp_path, broker, prefix, {"token": secret},
                 stderr=subprocess.PIPE) as api:
        pass
    assert api.proc.stderr is not None
    assert secret not in api.proc.stderr.read().decode()
