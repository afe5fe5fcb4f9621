"""Settings: YAML + ENERBOX_* overrides + secret files; errors name the key and the value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from services.app.root_config import load_config
from services.core.config import ConfigError, MqttConfig, Section, env_overrides, is_secret
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "enerbox.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "enerbox.yaml")
    assert config.teleinfo.meters[0].port.startswith("/dev/serial/by-id/")
    assert config.mqtt.prefix == "enerbox"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.mqtt.port == 1883 and config.teleinfo.offline_after_s == 10


def test_errors_name_key_value_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  port: 70000\nteleinfo:\n  meters:\n    - id: Mon Linky\n"
                           "      mode: turbo\n  offline_after_s: nope\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = "\n".join(err.value.problems)
    assert "mqtt.port = 70000: Input should be less than or equal to 65535" in problems
    assert (
        "teleinfo.meters.0.mode = 'turbo': Input should be 'auto', 'historique' or 'standard'"
        in problems
    )
    assert "teleinfo.meters.0.id = 'Mon Linky': must be a slug such as 'mon-linky'" in problems
    assert "teleinfo.offline_after_s = 'nope'" in problems


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "teleinfo:\n  ofline_after_s: 3\ntelinfo: {}\n"))
    assert "teleinfo.ofline_after_s: unknown key" in err.value.problems
    assert any(p.startswith("telinfo: unknown key (known sections:") for p in err.value.problems)


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "mqtt:\n  host: [oops\n"))
    assert "line 3" in err.value.problems[0] or "line 2" in err.value.problems[0]


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "mqtt:\n  host: broker.lan\n  port: 1884\n")
    monkeypatch.setenv("ENERBOX_MQTT__PORT", "1999")
    monkeypatch.setenv("ENERBOX_TELEINFO__METERS", '[{"id": "linky2", "port": "/tmp/tic"}]')
    config = load_config(path)
    assert (config.mqtt.host, config.mqtt.port) == ("broker.lan", 1999)
    assert config.teleinfo.meters[0].id == "linky2"


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENERBOX_MQTT__PORT", "abc")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, ""))
    assert "(from ENERBOX_MQTT__PORT)" in err.value.problems[0]


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    monkeypatch.setenv("ENERBOX_MQTT__PASSWORD_FILE", str(secret))
    config = load_config(write(tmp_path, "mqtt:\n  username: teleinfo\n"))
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config.mqtt)


def test_unreadable_secret_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERBOX_MQTT__PASSWORD_FILE", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"cannot read mqtt\.password from"):
        load_config(write(tmp_path, ""))


def test_bad_prefix_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt.prefix = 'enerbox/#': .*non-empty slug"):
        load_config(write(tmp_path, "mqtt:\n  prefix: enerbox/#\n"))


def test_config_check_command(tmp_path: Path) -> None:
    bad = write(tmp_path, "teleinfo:\n  meters:\n    - mode: fast\n")
    cmd = [sys.executable, "-m", "services.app.cli", "config", "check"]
    result = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "teleinfo.meters.0.mode = 'fast'" in result.stderr
    ok = subprocess.run([*cmd, str(ROOT / "config" / "enerbox.yaml")], capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0, ok.stderr


def test_bad_json_in_environment_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERBOX_TELEINFO__METERS", '[{"id": "linky",}]')
    with pytest.raises(ConfigError, match="ENERBOX_TELEINFO__METERS: not valid JSON"):
        load_config(write(tmp_path, ""))


def test_unknown_section_from_environment_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENERBOX_TELEINFOO__PORT", "/dev/ttyUSB0")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, ""))
    assert any("teleinfoo" in p and "ENERBOX_TELEINFOO__PORT" in p for p in err.value.problems)


def test_env_value_is_json_only_for_lists_and_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A password starting with '[' used to be parsed as JSON and stop every service.
    monkeypatch.setenv("ENERBOX_MQTT__PASSWORD", "[abc")
    monkeypatch.setenv("ENERBOX_MQTT__HOST", '{"not": "json here"}')
    monkeypatch.setenv("ENERBOX_API__CORS_ORIGINS", '["http://a.lan"]')
    config = load_config(write(tmp_path, ""))
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "[abc"
    assert config.mqtt.host == '{"not": "json here"}'
    assert config.api.cors_origins == ["http://a.lan"]


def test_env_overrides_look_the_key_up_in_the_model() -> None:
    class Inner(Section):
        names: tuple[str, ...] = ()
        label: str = ""
        pair: tuple[int, int] | None = None
        extra: dict[str, int] | None = None

    class Root(BaseModel):
        inner: Inner = Inner()

    env = {"ENERBOX_INNER__NAMES": '["a"]', "ENERBOX_INNER__LABEL": '["a"]',
           "ENERBOX_INNER__PAIR": "[1, 2]", "ENERBOX_INNER__EXTRA": '{"a": 1}',
           "ENERBOX_UNKNOWN__KEY": "[1"}
    tree = env_overrides(env, Root)
    assert tree == {"inner": {"names": ["a"], "label": '["a"]', "pair": [1, 2],
                              "extra": {"a": 1}},
                    "unknown": {"key": "[1"}}


@pytest.mark.parametrize(("yaml_text", "secret"), [
    ("mqtt:\n  password: [hunter2-x]\n", "hunter2-x"),
    ("api:\n  token: 12345678987654321\n", "12345678987654321"),
    ("historian:\n  influxdb:\n    token: [influx-tok-x]\n", "influx-tok-x"),
    ("historian:\n  emoncms:\n    apikey: {k: emon-key-x}\n", "emon-key-x"),
    ("historian:\n  emoncms:\n    apikey: 98765432123456789\n", "98765432123456789"),
])
def test_a_mistyped_secret_is_never_echoed(tmp_path: Path, yaml_text: str, secret: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, yaml_text))
    report = err.value.report()
    assert secret not in report and secret not in str(err.value)
    assert "'***'" in report or ": Input should be" in report


def test_a_secret_from_the_environment_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENERBOX_HISTORIAN__INFLUXDB__TOKEN", '["tok-from-env"]')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "api:\n  port: nope\n"))
    report = err.value.report()
    assert "api.port = 'nope'" in report  # ordinary values are still shown
    assert "tok-from-env" not in report


def test_is_secret_by_type_and_by_name() -> None:
    assert is_secret(MqttConfig, ("password",))
    assert not is_secret(MqttConfig, ("host",))
    assert is_secret(BaseModel, ("relay_apikey",))
