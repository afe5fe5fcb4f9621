"""What a screen or a lamp is drawn on: luma's dummy device saving PNG frames, an I2C OLED,
a TM1638 board, GPIO LEDs. Hardware libraries are imported only by the backend that needs
them; a backend that cannot open raises ``BackendError`` with a sentence for the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from services.display.config import DisplayConfig, IndicatorConfig, TM1638Config
from services.display.indicators import level
from services.display.lines import GpiodLines, Lines
from services.display.model import BoxView, Reading
from services.display.pages import ALERTS, Light, Screen
from services.display.render import STALE, render, show
from services.display.tm1638 import TM1638

LinesFactory = Callable[[TM1638Config], Lines]


class BackendError(Exception):
    """A backend could not open (no I2C bus, no GPIO chip, no line)."""


class Backend(Protocol):
    """One screen."""

    def draw(self, view: BoxView, screen: Screen) -> None:
        """Show ``screen`` of ``view``."""
        ...

    def close(self) -> None:
        """Blank and release."""
        ...


class PixelBackend:
    """An OLED or luma's dummy device: the frame rendered by ``render``."""

    def __init__(self, cfg: DisplayConfig, device: Any) -> None:
        self.cfg = cfg
        self.device = device

    def draw(self, view: BoxView, screen: Screen) -> None:
        """Render and hand the frame to the device."""
        image = render(view, screen, self.cfg.width_height, self.cfg.language)
        show(self.device, image, screen.light, self.cfg.contrast, self.cfg.dim_contrast)

    def close(self) -> None:
        """Blank the screen (OLED burn-in) and let luma release the bus."""
        try:
            self.device.hide()
        finally:
            self.device.cleanup()


class DummyBackend(PixelBackend):
    """luma's dummy device; each frame that differs from the last is saved as
    ``<frames_dir>/<id>.png`` atomically (temp + rename: the api never serves half a file)."""

    def __init__(self, cfg: DisplayConfig, frames_dir: Path) -> None:
        from luma.core.device import dummy  # noqa: PLC0415 (luma loads slowly)

        width, height = cfg.width_height
        super().__init__(cfg, dummy(width=width, height=height, mode="1"))
        self.path = frames_dir / f"{cfg.id}.png"
        self._last: bytes | None = None
        self.saved = 0  # frames written
        try:
            frames_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create {frames_dir}: {exc}") from exc

    def draw(self, view: BoxView, screen: Screen) -> None:
        """Render; save the PNG when the pixels changed."""
        super().draw(view, screen)
        pixels = self.device.image.tobytes()
        if pixels == self._last:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.device.image.save(tmp, format="PNG")
        tmp.replace(self.path)
        self._last = pixels
        self.saved += 1

    def close(self) -> None:
        """Nothing to release (the last frame stays for the api)."""


def open_oled(cfg: DisplayConfig) -> PixelBackend:
    """An SSD1306 or SH1106 on /dev/i2c-<bus> (luma.oled)."""
    from luma.core.interface.serial import i2c  # noqa: PLC0415 (only where the hardware is)
    from luma.oled.device import sh1106, ssd1306  # noqa: PLC0415

    width, height = cfg.width_height
    kind = sh1106 if cfg.backend == "oled-sh1106" else ssd1306
    try:
        serial = i2c(port=cfg.i2c_bus, address=cfg.i2c_address)
        device = kind(serial, width=width, height=height)
    except Exception as exc:  # luma raises its own DeviceNotFoundError, OSError, ...
        raise BackendError(f"no {cfg.backend} at 0x{cfg.i2c_address:X} on /dev/i2c-"
                           f"{cfg.i2c_bus}: {exc}") from exc
    return PixelBackend(cfg, device)


def _value(r: Reading, prefix: str, decimals: int = 0) -> str:
    if not r.shown or r.value is None:
        return f"{prefix}{STALE}"
    return f"{prefix}{r.value:.{decimals}f}"


def _tariff(view: BoxView) -> str:
    period = view.tariff_period
    if period.stale or period.value is None:
        return f"t {STALE}"
    return period.value.replace("_", " ")[:8]


def _relays(view: BoxView) -> str:
    # One digit per relay: 1 on, 0 off, - unknown.
    marks = "".join("-" if r.stale or r.output is None else
                    ("0" if r.output in ("off", "0") else "1") for r in view.relays)
    return f"r {marks}"[:8]


HEADLINES: dict[str, Callable[[BoxView], str]] = {
    "grid": lambda v: _value(v.grid_va, "P "),
    "solar": lambda v: _value(v.pv_w, "PU "),
    "battery": lambda v: _value(v.soc_pct, "bAt "),
    "tariff": _tariff,
    "relays": _relays,
    ALERTS: lambda v: f"AL {len(v.alerts)}",
}


def headline(view: BoxView, page: str) -> str:
    """The one value eight 7-segment digits show for a page (``----`` when stale)."""
    make = HEADLINES.get(page)
    return STALE if make is None else make(view)


class TM1638Backend:
    """A TM1638 board: the page's headline on the digits, indicators on the LEDs, keys."""

    def __init__(self, cfg: DisplayConfig, lines: LinesFactory | None = None) -> None:
        assert cfg.tm1638 is not None  # the config's validator says so
        self.cfg, self.board_cfg = cfg, cfg.tm1638
        make = lines or _gpiod_lines
        try:
            self.board = TM1638(make(cfg.tm1638), cfg.tm1638.brightness)
        except Exception as exc:  # gpiod missing, no chip, lines busy
            raise BackendError(f"no TM1638 on {cfg.tm1638.chip}: {exc}") from exc
        self._shown: tuple[str, Light] | None = None
        self._leds: int | None = None

    def draw(self, view: BoxView, screen: Screen) -> None:
        """The headline; dim is brightness 0, blank the display off (only changes are sent:
        the bit-banged bus is slow)."""
        text = "" if screen.light is Light.BLANK else headline(view, screen.page)
        if (text, screen.light) == self._shown:
            return
        if screen.light is Light.BLANK:
            self.board.off()
        else:
            self.board.brightness(0 if screen.light is Light.DIM else self.board_cfg.brightness)
            self.board.show(text)
        self._shown = (text, screen.light)

    def leds(self, mask: int) -> None:
        """LED k+1 lit for bit k."""
        if mask != self._leds:
            self.board.leds(mask)
            self._leds = mask

    def keys(self) -> int:
        """The keys down now."""
        return self.board.keys()

    def close(self) -> None:
        """Display off, lines released."""
        self.board.close()


def _gpiod_lines(cfg: TM1638Config) -> Lines:
    return GpiodLines(cfg.chip, cfg.stb, cfg.clk, cfg.dio)


def open_display(cfg: DisplayConfig, frames_dir: Path,
                 lines: LinesFactory | None = None) -> Backend:
    """The configured backend of one display (BackendError when it cannot open)."""
    if cfg.backend == "dummy":
        return DummyBackend(cfg, frames_dir)
    if cfg.backend == "tm1638":
        return TM1638Backend(cfg, lines)
    return open_oled(cfg)


class GpioLeds:
    """Indicator LEDs on GPIO output lines of one chip (gpiod 2.x), all off at start."""

    def __init__(self, chip: str, indicators: Sequence[IndicatorConfig]) -> None:
        try:
            import gpiod  # noqa: PLC0415 (only where the hardware is)
            from gpiod.line import Direction, Value  # noqa: PLC0415

            from services.core.gpio import find_chip  # noqa: PLC0415

            self._on, self._off = Value.ACTIVE, Value.INACTIVE
            self._pins = {i.name: (i.gpio, i) for i in indicators if i.gpio is not None}
            config: dict[Any, Any] = {pin: gpiod.LineSettings(direction=Direction.OUTPUT,
                                              output_value=self._value(level(ind, False)))
                      for pin, ind in self._pins.values()}
            self._req: Any = gpiod.request_lines(find_chip(chip), consumer="enerbox-display",
                                                 config=config)
        except Exception as exc:
            raise BackendError(f"cannot drive indicator LEDs on {chip}: {exc}") from exc

    def _value(self, high: bool) -> Any:
        return self._on if high else self._off

    def set(self, lit: Mapping[str, bool]) -> None:
        """Each lamp lit or not (its level from active_high)."""
        for name, (pin, ind) in self._pins.items():
            if name in lit:
                self._req.set_value(pin, self._value(level(ind, lit[name])))

    def close(self) -> None:
        """Lamps off, lines released."""
        self.set(dict.fromkeys(self._pins, False))
        self._req.release()
