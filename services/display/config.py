"""Configuration section of the display service: screens and indicator lamps.

Buttons and the TM1638 board's keys are the buttons helper's keys (services/display/buttons.py);
this section has what the pages, the renderer and the indicators use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from services.automation.conditions import AnyOf
from services.core.config import Section
from services.core.contract.topics import slug

Backend = Literal["oled-ssd1306", "oled-sh1106", "tm1638", "dummy"]
Size = Literal["128x64", "128x32"]
PageName = Literal["grid", "solar", "battery", "tariff", "relays"]
PAGES: tuple[PageName, ...] = ("grid", "solar", "battery", "tariff", "relays")
I2C_ADDRESSES = (0x3C, 0x3D)


def _int_any_base(value: object) -> object:
    """``0x3C`` as YAML reads it (60) or as a string ("0x3C")."""
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return value
    return value


I2CAddress = Annotated[int, BeforeValidator(_int_any_base)]


def _slug(value: str) -> str:
    if value != slug(value):
        raise ValueError(f"must be a slug such as {slug(value)!r}")
    return value


class TM1638Config(Section):
    """The TM1638 board's three GPIO lines, its brightness and which relay each key steers."""

    chip: str = Field("pinctrl-rp1", description="GPIO chip: a path, a name or a label "
                      "(pinctrl-rp1 on a Pi 5, pinctrl-bcm2711 on a Pi 4).")
    stb: int = Field(ge=0, description="Line offset of STB.", examples=[22])
    clk: int = Field(ge=0, description="Line offset of CLK.", examples=[27])
    dio: int = Field(ge=0, description="Line offset of DIO.", examples=[17])
    brightness: int = Field(2, ge=0, le=7, description="Digits' brightness when awake (0-7).")
    keys: tuple[str | None, ...] = Field((), max_length=8, description="Relay id steered by "
                                         "key S1, S2... (null: that key jumps pages).",
                                         examples=[["water-heater", None, "heat-pump"]])


class ButtonsConfig(Section):
    """GPIO push-buttons: button *i* on ``lines[i]`` steers ``relays[i]`` like a TM1638 key."""

    chip: str = Field("pinctrl-rp1", description="GPIO chip: a path, a name or a label.")
    lines: tuple[int, ...] = Field(min_length=1, max_length=8, description="Line offsets of "
                                   "the buttons.", examples=[[5, 6]])
    relays: tuple[str | None, ...] = Field((), max_length=8, description="Relay id steered "
                                           "by each button (null or missing: it jumps pages).")
    bias: Literal["pull-up", "pull-down", "disabled"] = Field("pull-up", description="Bias.")
    active_low: bool = Field(True, description="A press pulls the line low (to ground).")


class DisplayConfig(Section):
    """One screen: an OLED on I2C, a TM1638 board's digits, or frames written as PNG files."""

    id: str = Field(description="Display id (a slug), in topics and the api's preview.",
                    examples=["hall"])
    backend: Backend = Field("dummy", description="oled-ssd1306, oled-sh1106 (I2C OLEDs), "
                             "tm1638 (8 digits) or dummy (frames as PNG files, make run).")
    size: Size = Field("128x64", description="OLED size in pixels (width x height).")
    i2c_bus: int = Field(1, ge=0, description="I2C bus number of an OLED (/dev/i2c-<n>).")
    i2c_address: I2CAddress = Field(0x3C, description="I2C address of an OLED: 0x3C, or 0x3D "
                                    "when its address pad is bridged.")
    page_s: float = Field(5.0, gt=0, description="Each page shows this long in the rotation.")
    dim_after_s: float | None = Field(60.0, gt=0, description="Dim this long after the last "
                                      "button or alert (null: never).")
    blank_after_s: float | None = Field(600.0, gt=0, description="Blank the screen this long "
                                        "after the last button or alert, against OLED "
                                        "burn-in (null: never).")
    contrast: int = Field(255, ge=0, le=255, description="OLED contrast when awake.")
    dim_contrast: int = Field(16, ge=0, le=255, description="OLED contrast when dimmed.")
    pages: tuple[PageName, ...] = Field(PAGES, min_length=1, description="Pages in rotation "
                                        "order; the alerts page preempts them while an "
                                        "alert stands.")
    language: Literal["fr", "en"] = Field("fr", description="Labels' language.")
    tm1638: TM1638Config | None = Field(None, description="The lines of a tm1638 backend.")

    _id = field_validator("id")(_slug)

    @field_validator("i2c_address")
    @classmethod
    def _address(cls, value: int) -> int:
        if value not in I2C_ADDRESSES:
            raise ValueError(f"0x{value:X} is not an SSD1306/SH1106 address (0x3C or 0x3D)")
        return value

    @field_validator("pages")
    @classmethod
    def _unique(cls, value: tuple[PageName, ...]) -> tuple[PageName, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"a page is listed twice: {list(value)}")
        return value

    @model_validator(mode="after")
    def _timers(self) -> DisplayConfig:
        dim, blank = self.dim_after_s, self.blank_after_s
        if dim is not None and blank is not None and blank <= dim:
            raise ValueError(f"blank_after_s ({blank}) must be above dim_after_s ({dim})")
        if (self.backend == "tm1638") != (self.tm1638 is not None):
            raise ValueError("the tm1638 key goes with backend: tm1638 (and only with it)")
        return self

    @property
    def width_height(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        width, height = self.size.split("x")
        return int(width), int(height)


class SignalRef(Section):
    """A device field an indicator's ``signal`` key reads (as the automation's signals)."""

    source: str = Field(description='"<service>/<device>".', examples=["vedirect/bmv"])
    field: str = Field(description="A field of that device's state.", examples=["soc_pct"])

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        service, sep, device = value.partition("/")
        if not sep or service != slug(service) or device != slug(device) or not device:
            raise ValueError(f"{value!r} is not '<service>/<device>'")
        return value


class IndicatorConfig(Section):
    """A lamp (a GPIO LED or a TM1638 LED) lit while a condition holds."""

    id: str | None = Field(None, description="Indicator id (a slug); default gpio<pin> or "
                           "led<n>.", examples=["ejp"])
    when: AnyOf = Field(description="The automation's condition grammar: a map (all of its "
                        "keys) or a list of maps (any of them).",
                        examples=[{"ejp": "notice"}, [{"ejp": "notice"}, {"ejp": "peak"}]])
    gpio: int | None = Field(None, ge=0, le=53, description="BCM pin of a GPIO LED.")
    tm1638_led: int | None = Field(None, ge=1, le=8, description="LED 1-8 of the TM1638 "
                                   "board (of the display whose backend is tm1638).")
    active_high: bool = Field(True, description="A GPIO LED is lit by a high level.")
    when_stale: Literal["off", "on"] = Field("off", description="The lamp while the "
                                             "condition's inputs are stale.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return None if value is None else _slug(value)

    @model_validator(mode="after")
    def _one_output(self) -> IndicatorConfig:
        if (self.gpio is None) == (self.tm1638_led is None):
            raise ValueError("give one of gpio (a BCM pin) or tm1638_led (1-8)")
        return self

    @property
    def name(self) -> str:
        """Its id, or one made from its output."""
        if self.id is not None:
            return self.id
        return f"gpio{self.gpio}" if self.gpio is not None else f"led{self.tm1638_led}"


class DisplaySection(Section):
    """The display service: screens and indicator lamps."""

    displays: tuple[DisplayConfig, ...] = Field((), description="Screens.")
    indicators: tuple[IndicatorConfig, ...] = Field((), description="Indicator lamps.")
    signals: dict[str, SignalRef] = Field({}, description="Named device fields the "
                                          "indicators' ``signal`` key reads.")
    stale_after_s: float = Field(60.0, gt=0, description="A value older than this shows "
                                 "----; an offline device's at once.")
    frame_s: float = Field(0.5, ge=0.05, description="A frame is drawn this often.")
    frames_dir: Path | None = Field(None, description="Where dummy displays write <id>.png "
                                    "(the api serves them); default <data_dir>/display.")
    gpio_chip: str = Field("pinctrl-rp1", description="GPIO chip of the indicators' LEDs: a "
                           "label (pinctrl-rp1 on a Pi 5, pinctrl-bcm2711 on a Pi 4) or a path.")
    buttons: ButtonsConfig | None = Field(None, description="GPIO push-buttons.")

    @model_validator(mode="after")
    def _ids(self) -> DisplaySection:
        for what, ids in (("display", [d.id for d in self.displays]),
                          ("indicator", [i.name for i in self.indicators])):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{what} id given twice: {', '.join(twice)}")
        for ind in self.indicators:
            for cond in ind.when:
                if cond.signal is not None and cond.signal not in self.signals:
                    raise ValueError(f"indicator {ind.name!r} reads signal {cond.signal!r}, "
                                     "which is not under display.signals")
        return self

    def frames_path(self, data_dir: Path) -> Path:
        """Where dummy displays' frames go (the display service writes, the api reads)."""
        return self.frames_dir if self.frames_dir is not None else data_dir / "display"
