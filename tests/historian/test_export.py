"""`enerbox history export`: a flat, rounded ledger CSV, `--excel-fr`, and where it finds the
history (`make run` keeps it in run/data)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from services.historian.ledger import Ledger
from services.teleinfo.fields import normalize
from services.teleinfo.protocol import Decoder
from tests.conftest import ROOT, tic_fixture

PARIS = ZoneInfo("Europe/Paris")
D = date(2024, 3, 12)
CONFIG = """\
general:
  data_dir: {data}
historian:
  timezone: Europe/Paris
  tariffs:
    - valid_from: 2024-01-01
      subscription_eur_per_day: 0.52
      prices_eur_per_kwh: {{blue_hc: 0.1296, blue_hp: 0.1609, white_hc: 0.1486,
                           white_hp: 0.1894, red_hc: 0.1568, red_hp: 0.7562}}
"""


def fill(db: Path) -> None:
    """A day of a real Tempo capture in the ledger: 20 Wh on blue_hc."""
    from services.core.history.tariffs import TariffBook

    led = Ledger(db, TariffBook(tariffs=[]))
    for i, frame in enumerate(Decoder().feed(tic_fixture("hist_mono_tempo_pyteleinfo.bin")
                                             .read_bytes())):
        state = normalize(frame)
        ts = datetime.combine(D, time(), PARIS).timestamp() + (1 + 2.5 * i) * 3600
        led.observe_meter("linky", ts, state["energy_import_by_index_wh"], None, None)
    led.flush()


def enerbox(*args: str, cwd: Path, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENERBOX_")}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "services.app.cli", *args], cwd=cwd,
                          env={**clean, **(env or {})}, capture_output=True, check=False)


def export(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    data = tmp_path / "data"
    fill(data / "history.sqlite3")
    (tmp_path / "box.yaml").write_text(CONFIG.format(data=data), encoding="utf-8")
    return enerbox("history", "export", "--from", D.isoformat(), "--to", D.isoformat(),
                   "--ledger", "--config", str(tmp_path / "box.yaml"), *extra, cwd=tmp_path)


def test_ledger_csv_is_flat_and_rounded(tmp_path: Path) -> None:
    done = export(tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8"))))
    [row] = rows
    assert row["day"] == "2024-03-12" and row["meter"] == "linky"
    assert row["import_wh_blue_hc"] == "20" and row["import_wh_red_hp"] == "0"
    assert row["import_cost_eur_blue_hc"] == "0.00"  # 20 Wh x 0.1296 EUR: a quarter cent
    assert row["subscription_eur"] == "0.52" and row["total_cost_eur"] == "0.52"
    assert row["import_wh"] == "20" and row["flags"] == "0"
    assert not any("{" in cell for cell in row.values())


def test_ledger_csv_for_a_french_spreadsheet(tmp_path: Path) -> None:
    done = export(tmp_path, "--excel-fr", "--output", str(tmp_path / "ledger.csv"))
    assert done.returncode == 0, done.stderr
    raw = (tmp_path / "ledger.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    [row] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert row["subscription_eur"] == "0,52" and row["import_wh_blue_hc"] == "20"
    assert row["day"] == "2024-03-12"
    (tmp_path / "stdout").mkdir()
    to_stdout = export(tmp_path / "stdout", "--excel-fr")
    assert to_stdout.stdout == raw


def test_export_finds_make_runs_history(tmp_path: Path) -> None:
    # The checkout after `make run`: the stack's data in run/data, no config given.
    fill(tmp_path / "run" / "data" / "history.sqlite3")
    done = enerbox("history", "export", "--from", D.isoformat(), "--to", D.isoformat(),
                   "--ledger", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"run/data/history.sqlite3" in done.stderr
    assert b"linky" in done.stdout


def test_export_says_where_it_looked(tmp_path: Path) -> None:
    done = enerbox("history", "export", "--from", D.isoformat(), "--to", D.isoformat(),
                   cwd=tmp_path)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert str(tmp_path / "data" / "history.sqlite3") in err and "run/data" in err
