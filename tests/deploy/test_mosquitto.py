"""The broker configuration the repo ships (mosquitto/), run for real.

mosquitto.conf and acl are used as they are, with only their paths and port rewritten in a
temporary copy; the password file holds every user that init-credentials.sh makes. A denied
publish is seen twice: the MQTT v5 PUBACK reason code 0x87 (not authorized) that mosquitto 2
answers at QoS 1, and a privileged subscriber that never receives it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.conftest import ROOT, free_port

MOSQ = ROOT / "mosquitto"
INIT_SCRIPT = MOSQ / "init-credentials.sh"
NOT_AUTHORIZED = 0x87


def _binary(name: str, sbin: str) -> str:
    found = shutil.which(name) or (sbin if Path(sbin).exists() else None)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make test`, which installs mosquitto")
    return found


def script_users() -> list[str]:
    """Every user init-credentials.sh makes (its `services` and `consumers` lists)."""
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    users: list[str] = []
    for var in ("services", "consumers"):
        match = re.search(rf'^{var}="([^"]*)"$', text, re.MULTILINE)
        assert match, f"init-credentials.sh has no {var}=\"...\" line"
        users += match.group(1).split()
    return users


def acl_users(text: str) -> list[str]:
    """Users named by `user` lines of an ACL file."""
    return re.findall(r"^user (\S+)$", text, re.MULTILINE)


def write_passwd(path: Path, passwords: dict[str, str]) -> None:
    """A mosquitto password file, made as the init script makes it (mosquitto_passwd -b)."""
    binary = _binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    for user, password in passwords.items():
        subprocess.run([binary, "-b", str(path), user, password], check=True,
                       capture_output=True)


def replace_once(text: str, old: str, new: str) -> str:
    """Replace a line of the shipped config; fail when it is no longer there (the test must
    change with the config, not silently test something else)."""
    assert text.count(old) == 1, f"expected {old!r} once in the shipped config"
    return text.replace(old, new)


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Wait until the broker accepts connections; fail with its log if it exits."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text() if log else ""
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {detail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not start on port {port}")


class SecureBroker:
    """mosquitto started from the repo's mosquitto.conf, paths and port rewritten."""

    def __init__(self, workdir: Path, passwd: Path, acl_text: str,
                 bridge_conf: str | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        (workdir / "data").mkdir()
        (workdir / "conf.d").mkdir()
        acl = workdir / "acl"
        acl.write_text(acl_text, encoding="utf-8")
        if bridge_conf is not None:
            (workdir / "conf.d" / "bridge.conf").write_text(bridge_conf, encoding="utf-8")
        conf = (MOSQ / "mosquitto.conf").read_text(encoding="utf-8")
        conf = replace_once(conf, "\nlistener 1883\n", f"\nlistener {self.port} 127.0.0.1\n")
        conf = replace_once(conf, "/secrets/passwd", str(passwd))
        conf = replace_once(conf, "/mosquitto/config/acl", str(acl))
        conf = replace_once(conf, "/mosquitto/data/", f"{workdir / 'data'}/")
        conf = replace_once(conf, "/mosquitto/config/conf.d", str(workdir / "conf.d"))
        if os.geteuid() == 0:
            # As root, mosquitto 2 drops to the `mosquitto` user before it reads the password
            # file, which then cannot enter a root-owned temporary directory.
            conf += "\nuser root\n"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf, encoding="utf-8")
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([_binary("mosquitto", "/usr/sbin/mosquitto"), "-c",
                                          str(self.conf)], stdout=log, stderr=log)
        wait_listening(self.port, self.proc, self.log)

    def stop(self) -> None:
        """Stop it."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@dataclass
class Received:
    """A message as a test client saw it."""

    topic: str
    payload: bytes
    retain: bool
    expiry_s: int | None


@dataclass
class Client:
    """A logged-in MQTT v5 client that records PUBACK reason codes and what it receives."""

    client: mqtt.Client
    connect_rc: ReasonCode | None = None
    acks: dict[int, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    event: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes, retain: bool = False,
                expiry_s: int | None = None) -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = expiry_s
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        with self.event:
            assert self.event.wait_for(lambda: info.mid in self.acks, 5), f"no PUBACK: {topic}"
            return self.acks[info.mid]

    def subscribe(self, topic_filter: str) -> int:
        """Subscribe at QoS 1; returns the SUBACK reason code."""
        codes: list[int] = []
        done = threading.Event()

        def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, rcs: list[ReasonCode],
                         _p: object) -> None:
            codes.extend(rc.value for rc in rcs)
            done.set()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe(topic_filter, qos=1)
        assert done.wait(5), "no SUBACK"
        return codes[0]

    def wait_for(self, topic: str, payload: bytes, timeout: float = 5.0) -> Received:
        """The first message with this topic and payload."""
        def find() -> Received | None:
            return next((m for m in self.received if m.topic == topic and m.payload == payload),
                        None)

        with self.event:
            assert self.event.wait_for(lambda: find() is not None, timeout), (
                f"{topic} {payload!r} never arrived; got {[m.topic for m in self.received]}")
            found = find()
            assert found is not None
            return found

    def got(self, payload: bytes) -> list[Received]:
        """Every message received with this payload."""
        with self.event:
            return [m for m in self.received if m.payload == payload]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def connect(port: int, user: str | None, password: str | None, **tls: str) -> Client:
    """A client logged in as ``user`` (None: anonymous); check ``connect_rc``."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{uuid.uuid4().hex[:8]}",
                       protocol=MQTTProtocolVersion.MQTTv5)
    c = Client(paho)
    if user is not None:
        paho.username_pw_set(user, password)
    if tls:
        paho.tls_set(ca_certs=tls["ca"])
    connected = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        c.connect_rc = rc
        connected.set()

    def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with c.event:
            c.acks[mid] = rc.value
            c.event.notify_all()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with c.event:
            props = getattr(msg, "properties", None)
            expiry = getattr(props, "MessageExpiryInterval", None) if props else None
            c.received.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), expiry))
            c.event.notify_all()

    paho.on_connect = on_connect
    paho.on_publish = on_publish
    paho.on_message = on_message
    # No reconnection loop: a refused login must show as a refusal, once.
    paho.connect("127.0.0.1", port)
    paho.loop_start()
    assert connected.wait(5), "no CONNACK"
    return c


# -- one broker with the shipped config, every user logged in ------------------------------

@dataclass
class Box:
    """The broker and one client per user of the init script."""

    broker: SecureBroker
    passwords: dict[str, str]
    clients: dict[str, Client]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    workdir = tmp_path_factory.mktemp("box")
    passwords = {user: uuid.uuid4().hex for user in script_users()}
    write_passwd(workdir / "passwd", passwords)
    broker = SecureBroker(workdir, workdir / "passwd", (MOSQ / "acl").read_text())
    broker.start()
    clients: dict[str, Client] = {}
    try:
        for user, password in passwords.items():
            clients[user] = client = connect(broker.port, user, password)
            assert client.connect_rc is not None and not client.connect_rc.is_failure, user
        # Privileged watchers: everything under enerbox/, and Home Assistant's tree.
        assert clients["historian"].subscribe("enerbox/#") < 0x80
        assert clients["homeassistant"].subscribe("homeassistant/#") < 0x80
        yield Box(broker, passwords, clients)
    finally:
        for client in clients.values():
            client.close()
        broker.stop()


def test_every_user_of_the_init_script_has_acl_rules() -> None:
    assert sorted(script_users()) == sorted(acl_users((MOSQ / "acl").read_text()))


def test_anonymous_and_wrong_password_are_refused(box: Box) -> None:
    for user, password in ((None, None), ("teleinfo", "wrong"), ("nobody", "x")):
        client = connect(box.broker.port, user, password)
        try:
            assert client.connect_rc is not None and client.connect_rc.is_failure, user
        finally:
            client.close()


ALLOWED = [
    ("teleinfo", "enerbox/teleinfo/linky/state"),
    ("teleinfo", "enerbox/teleinfo/status"),
    ("teleinfo", "homeassistant/device/enerbox_teleinfo_linky/config"),
    ("vedirect", "enerbox/vedirect/hq2231sim01/state"),
    ("relays", "enerbox/relays/living/state"),
    ("relays", "enerbox/relays/living/journal"),
    ("relays", "enerbox/relays/events"),
    ("relays", "enerbox/relays/status"),
    ("relays", "homeassistant/device/enerbox_relays_living/config"),
    ("relays", "enerbox/relays/heartbeat"),
    ("relays", "enerbox/api/replies"),  # the answer to a command, on its response topic
    ("shedding", "enerbox/shedding/heartbeat"),
    ("shedding", "enerbox/relays/living/shed"),
    ("shedding", "enerbox/shedding/linky/state"),
    ("shedding", "enerbox/shedding/events"),
    ("historian", "enerbox/historian/events"),
    ("api", "enerbox/relays/living/set"),
    ("api", "enerbox/api/status"),
    ("enerbox", "enerbox/relays/living/shed"),
    ("homeassistant", "enerbox/relays/living/set"),
    ("homeassistant", "homeassistant/status"),
    ("nodered", "enerbox/relays/living/set"),
    # The automation: its wishes, its own tree, its HA discovery.
    ("automation", "enerbox/relays/living/auto"),
    ("automation", "enerbox/automation/living/state"),
    ("automation", "enerbox/automation/status"),
    ("automation", "enerbox/automation/events"),
    ("automation", "homeassistant/device/enerbox_automation_living/config"),
    # A load's "automation enabled" switch: the web page, HA's switch, Node-RED.
    ("api", "enerbox/automation/living/set"),
    ("homeassistant", "enerbox/automation/living/set"),
    ("nodered", "enerbox/automation/living/set"),
]

DENIED = [
    # Only shedding writes shed flags; only api and the consumers send commands.
    ("teleinfo", "enerbox/relays/living/shed"),
    ("teleinfo", "enerbox/relays/living/set"),
    ("relays", "enerbox/relays/living/shed"),
    ("relays", "enerbox/relays/living/set"),
    ("shedding", "enerbox/relays/living/set"),
    ("historian", "enerbox/relays/living/shed"),
    ("api", "enerbox/relays/living/shed"),
    ("homeassistant", "enerbox/relays/living/shed"),
    ("nodered", "enerbox/relays/living/shed"),
    # Only the automation (the run-all user until it has its own) writes auto wishes.
    ("relays", "enerbox/relays/living/auto"),
    ("api", "enerbox/relays/living/auto"),
    ("homeassistant", "enerbox/relays/living/auto"),
    ("nodered", "enerbox/relays/living/auto"),
    ("shedding", "enerbox/relays/living/auto"),
    ("historian", "enerbox/relays/living/auto"),
    # The automation asks through its wish: no command, no shed flag, no other tree.
    ("automation", "enerbox/relays/living/set"),
    ("automation", "enerbox/relays/living/shed"),
    ("automation", "enerbox/relays/living/state"),
    ("automation", "enerbox/teleinfo/linky/state"),
    ("automation", "homeassistant/status"),
    # A service writes only its own tree.
    ("teleinfo", "enerbox/vedirect/hq2231sim01/state"),
    ("vedirect", "enerbox/teleinfo/linky/state"),
    ("relays", "enerbox/shedding/status"),
    ("shedding", "enerbox/teleinfo/linky/state"),
    ("shedding", "enerbox/relays/living/state"),
    ("historian", "enerbox/teleinfo/linky/state"),
    ("api", "enerbox/relays/living/state"),
    ("teleinfo", "homeassistant/status"),
    # Consumers publish nothing else under enerbox/; grafana nothing at all.
    ("homeassistant", "enerbox/teleinfo/linky/state"),
    ("homeassistant", "enerbox/homeassistant/status"),
    ("nodered", "enerbox/relays/living/state"),
    ("nodered", "enerbox/nodered/status"),
    ("grafana", "enerbox/relays/living/set"),
    ("grafana", "enerbox/relays/living/shed"),
    ("grafana", "enerbox/teleinfo/linky/state"),
    ("grafana", "enerbox/grafana/status"),
    ("grafana", "homeassistant/status"),
    ("grafana", "enerbox/automation/living/set"),
    ("relays", "enerbox/automation/living/set"),
    ("teleinfo", "enerbox/automation/living/set"),
]


def _watcher(box: Box, topic: str) -> Client:
    return box.clients["homeassistant" if topic.startswith("homeassistant/") else "historian"]


@pytest.mark.parametrize(("user", "topic"), ALLOWED)
def test_user_may_publish(box: Box, user: str, topic: str) -> None:
    payload = uuid.uuid4().bytes
    rc = box.clients[user].publish(topic, payload)
    assert rc < 0x80, f"{user} -> {topic}: reason code {rc:#x}"
    _watcher(box, topic).wait_for(topic, payload)


@pytest.mark.parametrize(("user", "topic"), DENIED)
def test_user_may_not_publish(box: Box, user: str, topic: str) -> None:
    payload = uuid.uuid4().bytes
    assert box.clients[user].publish(topic, payload) == NOT_AUTHORIZED, f"{user} -> {topic}"
    # The broker routes a publish before it answers it: once a later marker from an allowed
    # user has arrived, the denied message would have arrived before it.
    watcher = _watcher(box, topic)
    marker = uuid.uuid4().bytes
    marker_topic = ("homeassistant/test/marker" if watcher is box.clients["homeassistant"]
                    else "enerbox/historian/test/marker")
    writer = box.clients["homeassistant" if marker_topic.startswith("homeassistant/")
                         else "historian"]
    assert writer.publish(marker_topic, marker) < 0x80
    watcher.wait_for(marker_topic, marker)
    assert watcher.got(payload) == []


# What each service subscribes to in its code (services/*/service.py, api/live.py), and a
# publisher allowed to write there: the ACL must deliver it.
READS = [
    ("relays", "enerbox/relays/+/set", "api", "enerbox/relays/living/set"),
    ("relays", "enerbox/relays/+/set", "nodered", "enerbox/relays/living/set"),
    ("relays", "enerbox/relays/+/shed", "shedding", "enerbox/relays/living/shed"),
    ("relays", "enerbox/shedding/status", "shedding", "enerbox/shedding/status"),
    ("relays", "enerbox/shedding/heartbeat", "shedding", "enerbox/shedding/heartbeat"),
    ("relays", "enerbox/shedding/+/state", "shedding", "enerbox/shedding/linky/state"),
    ("relays", "enerbox/relays/+/auto", "enerbox", "enerbox/relays/living/auto"),
    ("relays", "enerbox/relays/+/auto", "automation", "enerbox/relays/living/auto"),
    ("relays", "enerbox/automation/status", "automation", "enerbox/automation/status"),
    # The automation follows every device state, the relays' real outputs included.
    ("automation", "enerbox/#", "teleinfo", "enerbox/teleinfo/linky/state"),
    ("automation", "enerbox/+/+/state", "relays", "enerbox/relays/living/state"),
    ("automation", "enerbox/+/+/state", "vedirect", "enerbox/vedirect/hq2231sim01/state"),
    ("automation", "homeassistant/status", "homeassistant", "homeassistant/status"),
    ("automation", "enerbox/automation/+/set", "api", "enerbox/automation/living/set"),
    ("automation", "enerbox/automation/+/set", "homeassistant",
     "enerbox/automation/living/set"),
    ("api", "enerbox/api/replies", "relays", "enerbox/api/replies"),
    ("shedding", "enerbox/teleinfo/status", "teleinfo", "enerbox/teleinfo/status"),
    ("relays", "homeassistant/status", "homeassistant", "homeassistant/status"),
    ("teleinfo", "homeassistant/status", "homeassistant", "homeassistant/status"),
    ("vedirect", "homeassistant/status", "homeassistant", "homeassistant/status"),
    ("shedding", "enerbox/teleinfo/linky/state", "teleinfo", "enerbox/teleinfo/linky/state"),
    ("shedding", "enerbox/teleinfo/linky/availability", "teleinfo",
     "enerbox/teleinfo/linky/availability"),
    ("historian", "enerbox/+/+/journal", "vedirect", "enerbox/vedirect/hq2245sim02/journal"),
    ("historian", "enerbox/+/+/journal", "relays", "enerbox/relays/living/journal"),
    ("historian", "enerbox/+/+/journal", "shedding", "enerbox/shedding/linky/journal"),
    # The journal waits for the historian's status (services/core/journal.py).
    ("teleinfo", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("vedirect", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("relays", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("shedding", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("inverter", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("pulses", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("temperature", "enerbox/historian/status", "historian", "enerbox/historian/status"),
    ("historian", "enerbox/+/+/journal", "inverter", "enerbox/inverter/roof/journal"),
    ("historian", "enerbox/+/+/journal", "pulses", "enerbox/pulses/heater/journal"),
    ("historian", "enerbox/+/+/journal", "temperature", "enerbox/temperature/tank/journal"),
    # pulses: calibration, its own retained state after an unclean stop, the sim's relay
    ("pulses", "enerbox/pulses/+/set", "api", "enerbox/pulses/heater/set"),
    ("pulses", "enerbox/pulses/+/state", "pulses", "enerbox/pulses/heater/state"),
    ("pulses", "enerbox/relays/+/state", "relays", "enerbox/relays/water-heater/state"),
    ("inverter", "homeassistant/status", "homeassistant", "homeassistant/status"),
    ("temperature", "homeassistant/status", "homeassistant", "homeassistant/status"),
    ("api", "enerbox/+/+/state", "relays", "enerbox/relays/living/state"),
    ("api", "enerbox/+/status", "shedding", "enerbox/shedding/status"),
    ("api", "enerbox/+/events", "relays", "enerbox/relays/events"),
    # display: every state, availability and status; its key presses reach the relays.
    ("display", "enerbox/+/+/state", "teleinfo", "enerbox/teleinfo/linky/state"),
    ("display", "enerbox/+/+/state", "relays", "enerbox/relays/water-heater/state"),
    ("display", "enerbox/+/+/availability", "inverter", "enerbox/inverter/roof/availability"),
    ("display", "enerbox/+/status", "automation", "enerbox/automation/status"),
    ("relays", "enerbox/relays/+/set", "display", "enerbox/relays/water-heater/set"),
    ("api", "enerbox/+/+/availability", "display", "enerbox/display/hall/availability"),
    ("grafana", "enerbox/#", "teleinfo", "enerbox/teleinfo/linky/apparent_power_va"),
    ("nodered", "enerbox/#", "vedirect", "enerbox/vedirect/hq2231sim01/soc_pct"),
    ("homeassistant", "enerbox/#", "teleinfo", "enerbox/teleinfo/linky/state"),
]


@pytest.mark.parametrize(("reader", "topic_filter", "writer", "topic"), READS)
def test_reader_receives_what_it_may_read(
    box: Box, reader: str, topic_filter: str, writer: str, topic: str
) -> None:
    client = connect(box.broker.port, reader, box.passwords[reader])
    try:
        assert client.subscribe(topic_filter) < 0x80
        payload = uuid.uuid4().bytes
        assert box.clients[writer].publish(topic, payload) < 0x80
        client.wait_for(topic, payload)
    finally:
        client.close()


def test_reader_does_not_receive_what_it_may_not_read(box: Box) -> None:
    # teleinfo reads nothing under enerbox/; shedding reads only teleinfo's tree.
    teleinfo = connect(box.broker.port, "teleinfo", box.passwords["teleinfo"])
    shedding = connect(box.broker.port, "shedding", box.passwords["shedding"])
    try:
        teleinfo.subscribe("enerbox/#")
        shedding.subscribe("enerbox/#")
        secret, visible = uuid.uuid4().bytes, uuid.uuid4().bytes
        assert box.clients["api"].publish("enerbox/relays/living/set", secret) < 0x80
        assert box.clients["teleinfo"].publish("enerbox/teleinfo/linky/state", visible) < 0x80
        shedding.wait_for("enerbox/teleinfo/linky/state", visible)
        box.clients["historian"].wait_for("enerbox/relays/living/set", secret)
        assert shedding.got(secret) == []
        assert teleinfo.got(secret) == [] and teleinfo.got(visible) == []
    finally:
        teleinfo.close()
        shedding.close()


# -- the credentials init script --------------------------------------------------------------

def run_init(secrets: Path) -> subprocess.CompletedProcess[str]:
    # The script finds mosquitto_passwd on PATH, as in the eclipse-mosquitto image.
    env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/bin:/usr/sbin"}
    return subprocess.run(["sh", str(INIT_SCRIPT), str(secrets)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def test_init_script_makes_every_user_once(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "nodered").write_text("chosen-by-me\n")  # given before the first start: kept
    first = run_init(secrets)
    assert first.returncode == 0, first.stderr
    users = script_users()
    passwords = {u: (secrets / u).read_text() for u in users}
    assert passwords["nodered"] == "chosen-by-me\n"
    generated = [p for u, p in passwords.items() if u != "nodered"]
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", p) for p in generated)
    assert len(set(generated)) == len(generated)
    hashed = dict(line.split(":", 1) for line in (secrets / "passwd").read_text().splitlines())
    assert sorted(hashed) == sorted(users)
    assert all(h.startswith("$7$") for h in hashed.values())  # PBKDF2-SHA512, never clear
    for user in users:
        assert (secrets / user).stat().st_mode & 0o777 == 0o400
    assert (secrets / "passwd").stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:  # owners as the images need them: enerbox uid 1000, mosquitto 1883
        assert (secrets / "api").stat().st_uid == 1000
        assert (secrets / "homeassistant").stat().st_uid == 0
        assert (secrets / "passwd").stat().st_uid == 1883

    (secrets / "grafana").unlink()  # how a password is changed: delete it, run again
    second = run_init(secrets)
    assert second.returncode == 0, second.stderr
    for user in users:
        if user != "grafana":
            assert (secrets / user).read_text() == passwords[user], f"{user} was overwritten"
    assert (secrets / "grafana").read_text() != passwords["grafana"]
    assert "new password for grafana" in second.stdout
    assert "new password for" not in second.stdout.replace("new password for grafana", "")


def test_init_script_passwords_open_the_broker(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    assert run_init(secrets).returncode == 0
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = SecureBroker(workdir, secrets / "passwd", (MOSQ / "acl").read_text())
    broker.start()
    try:
        for user in script_users():
            client = connect(broker.port, user, (secrets / user).read_text().strip())
            try:
                assert client.connect_rc is not None and not client.connect_rc.is_failure, user
            finally:
                client.close()
    finally:
        broker.stop()


# -- healthchecks of docker-compose.yml, run here ----------------------------------------------

def compose_healthchecks() -> dict[str, list[str]]:
    import yaml

    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {name: svc["healthcheck"]["test"] for name, svc in doc["services"].items()
            if "healthcheck" in svc}


def test_service_healthcheck_sees_the_broker_connection(box: Box) -> None:
    test = compose_healthchecks()["teleinfo"]
    assert test[:3] == ["CMD", "python", "-c"]
    env = {**os.environ, "ENERBOX_MQTT__PORT": str(box.broker.port)}
    # This test's clients are connected to the broker's port: healthy.
    assert subprocess.run([sys.executable, "-c", test[3]], env=env, check=False).returncode == 0
    # Nobody is connected to a port no broker listens on: unhealthy.
    env["ENERBOX_MQTT__PORT"] = str(free_port())
    assert subprocess.run([sys.executable, "-c", test[3]], env=env, check=False).returncode == 1


def test_mosquitto_healthcheck_logs_in(box: Box, tmp_path: Path) -> None:
    test = compose_healthchecks()["mosquitto"]
    assert test[0] == "CMD-SHELL"
    (tmp_path / "grafana").write_text(box.passwords["grafana"])
    command = test[1].replace("$$", "$")  # compose's escape for a literal $
    command = replace_once(command, "/secrets/grafana", str(tmp_path / "grafana"))
    command = replace_once(command, "-p 1883", f"-p {box.broker.port}")
    path = f"{os.environ.get('PATH', '')}:/usr/bin"
    ok = subprocess.run(["sh", "-c", command], env={**os.environ, "PATH": path},
                        capture_output=True, timeout=15, check=False)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "grafana").write_text("wrong")
    refused = subprocess.run(["sh", "-c", command], env={**os.environ, "PATH": path},
                             capture_output=True, timeout=15, check=False)
    assert refused.returncode != 0


# -- a fleet: a box bridged to a central broker (bridge.conf.example) --------------------------

SITE = "site-a"


def make_ca(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it: the bridge checks it (TLS)."""
    ca_key, ca_crt = workdir / "ca.key", workdir / "ca.crt"
    key, csr, crt = workdir / "server.key", workdir / "server.csr", workdir / "server.crt"

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(ca_key), "-out", str(ca_crt))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    ext = workdir / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca_crt, crt, key


@dataclass
class Fleet:
    """A box and the central broker it bridges to, with their passwords."""

    box: SecureBroker
    central_port: int
    box_passwords: dict[str, str]
    central_passwords: dict[str, str]
    ca: Path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (Debian package openssl)")
    workdir = tmp_path_factory.mktemp("fleet")
    ca, crt, key = make_ca(workdir)

    # Central: TLS listener, its password file and the example ACL as shipped.
    central_dir = workdir / "central"
    central_dir.mkdir()
    central_pw = {SITE: uuid.uuid4().hex, "site-b": uuid.uuid4().hex,
                  "fleet-reader": uuid.uuid4().hex, "fleet-operator": uuid.uuid4().hex}
    write_passwd(central_dir / "passwd", central_pw)
    (central_dir / "acl").write_text((MOSQ / "central.acl.example").read_text())
    central_port = free_port()
    (central_dir / "mosquitto.conf").write_text(
        f"listener {central_port} 127.0.0.1\ncertfile {crt}\nkeyfile {key}\n"
        f"allow_anonymous false\npassword_file {central_dir / 'passwd'}\n"
        f"acl_file {central_dir / 'acl'}\npersistence false\nset_tcp_nodelay true\n"
        + ("user root\n" if os.geteuid() == 0 else ""))
    with (central_dir / "log").open("ab") as log:
        central = subprocess.Popen([_binary("mosquitto", "/usr/sbin/mosquitto"), "-c",
                                    str(central_dir / "mosquitto.conf")], stdout=log, stderr=log)
    box: SecureBroker | None = None
    try:
        # Up before the box starts: a bridge that fails its first try waits 5 to 60 s.
        wait_listening(central_port, central)

        # The box: the shipped config, the ACL with the fleet prefix as acl's header says
        # (sed 's#enerbox/#enerbox/site-a/#g'), and the bridge example filled in.
        box_dir = workdir / "box"
        box_dir.mkdir()
        box_pw = {user: uuid.uuid4().hex for user in script_users()}
        write_passwd(box_dir / "passwd", box_pw)
        acl = (MOSQ / "acl").read_text().replace("enerbox/", f"enerbox/{SITE}/")
        bridge = (MOSQ / "bridge.conf.example").read_text()
        bridge = bridge.replace("site-42", SITE)
        bridge = replace_once(bridge, "address central.example.net:8883",
                              f"address 127.0.0.1:{central_port}")
        bridge = replace_once(bridge, "remote_password CHANGE-ME",
                              f"remote_password {central_pw[SITE]}")
        bridge = replace_once(bridge, "/mosquitto/config/certs/central-ca.crt", str(ca))
        box = SecureBroker(box_dir, box_dir / "passwd", acl, bridge_conf=bridge)
        box.start()
        reader = connect(central_port, "fleet-reader", central_pw["fleet-reader"], ca=str(ca))
        try:
            # The bridge is up when its retained notification says 1.
            assert reader.subscribe(f"enerbox/{SITE}/bridge/status") < 0x80
            reader.wait_for(f"enerbox/{SITE}/bridge/status", b"1", timeout=15)
        finally:
            reader.close()
        yield Fleet(box, central_port, box_pw, central_pw, ca)
    finally:
        if box is not None:
            box.stop()
        central.terminate()
        central.wait(5)


def test_box_reading_arrives_on_central(fleet: Fleet) -> None:
    topic = f"enerbox/{SITE}/teleinfo/linky/state"
    payload = b'{"apparent_power_va": 1630, "ts": "%s"}' % uuid.uuid4().hex.encode()
    reader = connect(fleet.central_port, "fleet-reader", fleet.central_passwords["fleet-reader"],
                     ca=str(fleet.ca))
    teleinfo = connect(fleet.box.port, "teleinfo", fleet.box_passwords["teleinfo"])
    try:
        assert reader.subscribe(f"enerbox/{SITE}/#") < 0x80
        assert teleinfo.publish(topic, payload, retain=True, expiry_s=300) < 0x80
        live = reader.wait_for(topic, payload)
        assert live.retain is False  # delivered live: not flagged as retained
    finally:
        reader.close()
        teleinfo.close()
    # The retained flag crossed the bridge: a dashboard connecting later gets the last state.
    late = connect(fleet.central_port, "fleet-reader", fleet.central_passwords["fleet-reader"],
                   ca=str(fleet.ca))
    try:
        late.subscribe(topic)
        kept = late.wait_for(topic, payload)
        assert kept.retain is True
        # ...with its message expiry (MQTT v5 bridge): a dead box's state vanishes there too.
        assert kept.expiry_s is not None and 0 < kept.expiry_s <= 300
    finally:
        late.close()


def test_central_command_arrives_on_box_once(fleet: Fleet) -> None:
    topic = f"enerbox/{SITE}/relays/living/set"
    payload = b'{"mode": "on", "for_s": %d}' % (time.time_ns() % 3600)
    relays = connect(fleet.box.port, "relays", fleet.box_passwords["relays"])
    operator = connect(fleet.central_port, "fleet-operator",
                       fleet.central_passwords["fleet-operator"], ca=str(fleet.ca))
    try:
        assert relays.subscribe(f"enerbox/{SITE}/relays/+/set") < 0x80
        assert operator.subscribe(f"enerbox/{SITE}/relays/+/set") < 0x80
        assert operator.publish(topic, payload) < 0x80
        relays.wait_for(topic, payload)
        time.sleep(1.0)  # a loop between the two brokers would have repeated it by now
        assert len(relays.got(payload)) == 1
        assert len(operator.got(payload)) == 1  # not echoed back to central by the `out` rule
    finally:
        relays.close()
        operator.close()


def test_central_acl_keeps_each_box_in_its_prefix(fleet: Fleet) -> None:
    site_b = connect(fleet.central_port, "site-b", fleet.central_passwords["site-b"],
                     ca=str(fleet.ca))
    try:
        assert site_b.publish("enerbox/site-b/teleinfo/linky/state", b"{}") < 0x80
        assert site_b.publish(f"enerbox/{SITE}/teleinfo/linky/state", b"{}") == NOT_AUTHORIZED
        assert site_b.publish(f"enerbox/{SITE}/relays/living/set", b"ON") == NOT_AUTHORIZED
    finally:
        site_b.close()
