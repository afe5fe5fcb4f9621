"""The `grafana` profile's secrets: mqtt-init's script (mosquitto/init-credentials.sh), run for
real in a temporary directory, makes InfluxDB's token and admin password and Grafana's admin
password when .env leaves them empty (the first start used to fail on empty values), keeps
them across runs, takes .env's when given, and every reader finds its file where
docker-compose.yml and the Grafana provisioning look for it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from services.historian.config import InfluxConfig
from tests.deploy.test_mosquitto import INIT_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("influxdb-token", "influxdb-admin-password", "grafana-admin-password",
           "grafana-influxdb-token")
ENV = ("INFLUXDB_TOKEN", "INFLUXDB_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD")


def compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(
        (ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    return services


def run_init(secrets: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The script as mqtt-init runs it, with the environment compose gives it."""
    base = {k: v for k, v in os.environ.items() if k not in ENV}
    base["PATH"] = f"{os.environ.get('PATH', '')}:/usr/bin:/usr/sbin"
    result = subprocess.run(["sh", str(INIT_SCRIPT), str(secrets)], capture_output=True,
                            text=True, env={**base, **env}, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result


def _defaults(environment: dict[str, str]) -> dict[str, str]:
    """${VAR:-default} with an empty .env: the default."""
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in environment.items()}


def test_empty_env_makes_the_secrets_once(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    # Exactly what compose passes with .env.example's empty values.
    env = _defaults(compose()["mqtt-init"]["environment"])
    assert set(env) == set(ENV) and set(env.values()) == {""}
    first = run_init(secrets, **env)
    made = {name: (secrets / name).read_text() for name in SECRETS}
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", v) for v in made.values()), made
    assert made["grafana-influxdb-token"] == made["influxdb-token"]
    assert len({made[n] for n in SECRETS[:3]}) == 3
    assert all((secrets / n).stat().st_mode & 0o777 == 0o400 for n in SECRETS)
    assert "new influxdb-token" in first.stdout
    if os.geteuid() == 0:  # the readers' uids: the historian, Grafana
        assert (secrets / "influxdb-token").stat().st_uid == 1000
        assert (secrets / "grafana-influxdb-token").stat().st_uid == 472
        assert (secrets / "grafana-admin-password").stat().st_uid == 472
    second = run_init(secrets, **env)
    assert {name: (secrets / name).read_text() for name in SECRETS} == made
    assert "new influxdb" not in second.stdout


def test_env_values_win(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    run_init(secrets)
    run_init(secrets, INFLUXDB_TOKEN="my-own-token", GRAFANA_ADMIN_PASSWORD="s3cret pw")
    assert (secrets / "influxdb-token").read_text() == "my-own-token"
    assert (secrets / "grafana-influxdb-token").read_text() == "my-own-token"
    assert (secrets / "grafana-admin-password").read_text() == "s3cret pw"


def test_each_reader_gets_its_secret(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    run_init(secrets)
    token = (secrets / "influxdb-token").read_text()
    services = compose()
    # The historian: its token file, through the secrets volume's mount.
    path = services["historian"]["environment"]["ENERBOX_HISTORIAN__INFLUXDB__TOKEN_FILE"]
    local = secrets / Path(path).relative_to("/run/secrets/mqtt")
    config = InfluxConfig(token_file=local)
    assert config.token == SecretStr(token)
    # InfluxDB's setup: its entrypoint line, with the image's entrypoint replaced by `env`.
    argv = services["influxdb"]["entrypoint"]
    assert argv[:2] == ["/bin/sh", "-c"]
    line = argv[2].replace("$$", "$").replace("/secrets/", f"{secrets}/")
    line = line.replace("exec /entrypoint.sh influxd", "exec env")
    out = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True).stdout
    assert f"DOCKER_INFLUXDB_INIT_ADMIN_TOKEN={token}\n" in out
    password = (secrets / "influxdb-admin-password").read_text()
    assert f"DOCKER_INFLUXDB_INIT_PASSWORD={password}\n" in out
    # Grafana: its admin password file and the datasource's $__file{} token.
    grafana = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert (secrets / Path(grafana).name).exists() and grafana.startswith("/secrets/")
    datasource = (ROOT / "grafana" / "provisioning" / "datasources" / "influxdb.yaml").read_text()
    (file_name,) = re.findall(r"\$__file\{/secrets/([^}]+)\}", datasource)
    assert (secrets / file_name).read_text() == token
