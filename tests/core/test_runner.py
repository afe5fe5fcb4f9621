"""The runner never leaves a process online and deaf: a service whose worker died makes it
stop every service (safe states) and exit 1."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.core.bus import Bus
from services.core.config import GeneralConfig, HomeAssistantConfig, MqttConfig, Settings
from services.core.service import Service, run
from tests.conftest import Broker, Watcher


@dataclass
class Root:
    general: GeneralConfig = field(default_factory=GeneralConfig)


class Dying(Service[None]):
    """A service whose worker thread raises once it has started."""

    name = "dying"

    def __init__(self, config: Settings[None], bus: Bus) -> None:
        super().__init__(config, bus)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._work, daemon=True)

    def _work(self) -> None:
        raise RuntimeError("a bug in the worker")

    def start(self) -> None:
        self.thread.start()

    def healthy(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self.stopped.set()  # where a control service puts its loads in their safe state


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_stops_the_process_with_code_1(
    broker: Broker, prefix: str, watch: Callable[[str], Watcher]
) -> None:
    w = watch(f"{prefix}/dying/status")
    mqtt = MqttConfig(host=broker.host, port=broker.port, prefix=prefix)
    built: list[Dying] = []

    def build(_name: str, _root: Root) -> Service[Any]:
        settings = Settings(GeneralConfig(), mqtt, HomeAssistantConfig(discovery=False), None)
        built.append(Dying(settings, Bus(mqtt, "dying")))
        return built[0]

    code = run(["dying"], load_config=lambda _f: Root(), build=build)
    assert code == 1
    assert built[0].stopped.is_set()
    w.payload(f"{prefix}/dying/status", b"offline")
