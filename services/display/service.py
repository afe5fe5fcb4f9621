"""display service: screens, indicator lamps and buttons on one thread; an MQTT client only.

Messages (device states, availabilities, services' status, relay and automation states) are
queued by paho's thread and fed to the ``BoxTracker`` by the display thread, which owns every
piece of state (the TM1638 driver is not thread-safe). Each step (``POLL_S``) reads the keys
and buttons and publishes their orders as ordinary ``relays/<id>/set`` commands, which the
relays service judges like the api's; each ``frame_s`` it draws every screen and sets every
lamp. A backend that cannot open is logged once and marked offline; the others carry on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract import Presence, Rejection, RelayReport, TopicKind
from services.core.service import Service
from services.display.backends import (
    Backend,
    BackendError,
    GpioLeds,
    LinesFactory,
    TM1638Backend,
    open_display,
)
from services.display.buttons import POLL_S, ButtonEvent, GpiodButtons, KeyPoller, RelayButtons
from services.display.config import DisplayConfig, DisplaySection
from services.display.indicators import Indicators
from services.display.model import BoxTracker, Device
from services.display.pages import Pager

log = logging.getLogger(__name__)


@dataclass
class Screen:
    """One configured display: its pager, and its backend once open (None: it could not)."""

    cfg: DisplayConfig
    pager: Pager
    backend: Backend | None = None
    failing: bool = False  # the last draw raised (logged once until one succeeds)


@dataclass
class Keys:
    """Buttons that steer relays: a TM1638 board's keys or GPIO push-buttons."""

    relays: RelayButtons
    board: TM1638Backend | None = None  # polled keys
    poller: KeyPoller | None = None
    gpio: GpiodButtons | None = None  # kernel edge events


class DisplayService(Service[DisplaySection]):
    """The screens, lamps and buttons of DESIGN.md's "Local display and buttons"."""

    name = "display"
    announces = False  # no HA discovery

    def __init__(self, config: Settings[DisplaySection], bus: Bus, *,
                 lines: LinesFactory | None = None) -> None:
        """``lines``: how a TM1638's lines are made (tests pass FakeLines; default gpiod)."""
        super().__init__(config, bus)
        sec = config.section
        self.frames_dir = sec.frames_path(Path(config.general.data_dir))
        self.tracker = BoxTracker(sec.stale_after_s)
        self.indicators = Indicators(sec.indicators)
        self.signals: dict[str, tuple[Device, str]] = {
            name: ((ref.source.split("/")[0], ref.source.split("/")[1]), ref.field)
            for name, ref in sec.signals.items()}
        self.inbox: queue.SimpleQueue[tuple[str, bytes, float]] = queue.SimpleQueue()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="display", daemon=True)
        self._lines = lines
        self.screens: list[Screen] = []
        self.keys: list[Keys] = []
        self.leds: GpioLeds | None = None
        self.orders_sent = 0
        self.frames = 0
        self.last_frame_s = 0.0  # how long the last frame took to build and draw
        for kind in (TopicKind.STATE, TopicKind.AVAILABILITY):
            bus.subscribe(bus.topics.any_device(kind), self._inbound)
        bus.subscribe(bus.topics.any_service(TopicKind.STATUS), self._inbound)
        if not sec.displays and not sec.indicators:
            log.info("service=display nothing configured: idle")

    def start(self) -> None:
        """The display thread (it opens the backends: luma and gpiod load slowly)."""
        self.thread.start()

    def stop(self) -> None:
        """Stop the thread; screens blank, lamps off, displays offline."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def healthy(self) -> bool:
        """The display thread runs."""
        return self.stop_event.is_set() or self.thread.is_alive()

    def _inbound(self, topic: str, payload: bytes) -> None:
        self.inbox.put((topic, payload, time.time()))

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        self._open()
        frame_s = self.config.section.frame_s
        next_frame = time.monotonic()
        while not self.stop_event.is_set():
            step = time.monotonic()
            self._drain()
            self._poll(step)
            if step >= next_frame:
                self._frame(time.time())
                self.last_frame_s = time.monotonic() - step
                next_frame = max(next_frame + frame_s, step)
            self.stop_event.wait(max(0.0, step + POLL_S - time.monotonic()))
        self._close()

    def _open(self) -> None:
        sec = self.config.section
        now = time.time()
        for cfg in sec.displays:
            screen = Screen(cfg, Pager(cfg.pages, cfg.page_s, cfg.dim_after_s,
                                       cfg.blank_after_s, now))
            self.screens.append(screen)
            try:
                screen.backend = open_display(cfg, self.frames_dir, self._lines)
            except BackendError as exc:
                log.error("service=display display=%s cannot open: %s", cfg.id, exc)
                self._availability(cfg.id, False)
                continue
            self._availability(cfg.id, True)
            if isinstance(screen.backend, TM1638Backend):
                board = screen.backend
                assert cfg.tm1638 is not None
                self.keys.append(Keys(RelayButtons(cfg.tm1638.keys), board=board,
                                      poller=KeyPoller(board.keys)))
        if any(i.gpio is not None for i in sec.indicators):
            try:
                self.leds = GpioLeds(sec.gpio_chip, sec.indicators)
            except BackendError as exc:
                log.error("service=display indicators: %s", exc)
        if sec.buttons is not None:
            b = sec.buttons
            try:
                gpio = GpiodButtons(b.chip, b.lines, bias=b.bias, active_low=b.active_low)
            except Exception as exc:  # gpiod missing, no chip, lines busy
                log.error("service=display buttons on %s: %s", b.chip, exc)
            else:
                self.keys.append(Keys(RelayButtons(b.relays), gpio=gpio))
        log.info("service=display %d display(s) open, frames in %s",
                 sum(s.backend is not None for s in self.screens), self.frames_dir)

    def _availability(self, display: str, online: bool) -> None:
        self.bus.publish_retained(self.bus.topics.availability(display),
                                  Presence(online).encode())

    def _close(self) -> None:
        for screen in self.screens:
            if screen.backend is not None:
                try:
                    screen.backend.close()
                except Exception as exc:  # a bus gone: nothing more to do for it
                    log.warning("service=display display=%s close: %s", screen.cfg.id, exc)
                self._availability(screen.cfg.id, False)
        for keys in self.keys:
            if keys.gpio is not None:
                keys.gpio.close()
        if self.leds is not None:
            self.leds.close()

    def _drain(self) -> None:
        """Every queued message into the tracker; relay states to the buttons too."""
        while True:
            try:
                topic, payload, received = self.inbox.get_nowait()
            except queue.Empty:
                return
            parsed = self.bus.topics.parse(topic)
            if parsed is None or parsed.service == self.name:
                continue
            rejected = self.tracker.feed(parsed, payload, received)
            if rejected is not None:
                log.debug("service=display %s rejected: %s", topic, rejected.reason)
            if (parsed.service == "relays" and parsed.kind == TopicKind.STATE
                    and parsed.device is not None and payload):
                report = RelayReport.decode(payload)
                if not isinstance(report, Rejection):
                    for keys in self.keys:
                        keys.relays.observe(parsed.device, report)

    # -- buttons ------------------------------------------------------------------------------

    def _poll(self, now: float) -> None:
        """Read keys and buttons once; publish the orders; presses wake the screens."""
        for keys in self.keys:
            events: list[ButtonEvent] = []
            if keys.poller is not None:
                try:
                    events = keys.poller.poll()
                except Exception as exc:  # a line lost mid-run: no keys this step
                    log.debug("service=display keys: %s", exc)
            elif keys.gpio is not None:
                events = keys.gpio.read(0)
            orders = [o for e in events if (o := keys.relays.handle(e)) is not None]
            orders += keys.relays.tick(now)
            for event in events:
                if event.pressed:
                    self._press(keys, event.key)
            for order in orders:
                self.bus.publish(self.bus.topics.relay_set(order.relay),
                                 order.command.encode(), qos=1)
                self.orders_sent += 1
                log.info("service=display key=%d relay=%s mode=%s", order.key + 1,
                         order.relay, order.command.mode)

    def _press(self, keys: Keys, key: int) -> None:
        """A press wakes every screen; a key without a relay also turns the page."""
        now = time.time()
        relays = keys.relays.relays
        steers = 0 <= key < len(relays) and relays[key] is not None
        for screen in self.screens:
            if steers:  # a relay key neither turns the page nor holds off the alerts
                screen.pager.wake(now)
            else:
                screen.pager.button(now)

    # -- frames -------------------------------------------------------------------------------

    def _frame(self, now: float) -> None:
        view = self.tracker.view(now)
        alerts = [a.key for a in view.alerts]
        for screen in self.screens:
            shown = screen.pager.tick(now, alerts)
            if screen.backend is None:
                continue
            try:
                screen.backend.draw(view, shown)
            except Exception as exc:  # an I2C glitch: logged once, tried again next frame
                if not screen.failing:
                    log.error("service=display display=%s draw failed: %s", screen.cfg.id, exc)
                    self._availability(screen.cfg.id, False)
                screen.failing = True
            else:
                if screen.failing:
                    log.info("service=display display=%s drawing again", screen.cfg.id)
                    self._availability(screen.cfg.id, True)
                screen.failing = False
        self.frames += 1
        self._lamps(now)

    def _lamps(self, now: float) -> None:
        sec = self.config.section
        if not sec.indicators:
            return
        lit = self.indicators.evaluate(self.tracker.snapshot(now, self.signals))
        if self.leds is not None:
            self.leds.set(lit)
        mask = 0
        for ind in sec.indicators:
            if ind.tm1638_led is not None and lit.get(ind.name):
                mask |= 1 << (ind.tm1638_led - 1)
        board = next((k.board for k in self.keys if k.board is not None), None)
        if board is not None:
            board.leds(mask)
