"""Configuration section of the api service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr

from services.core.config import Section, read_secret
from services.core.history.tariffs import TariffBook


class ApiConfig(Section):
    """REST API, WebSocket and web page."""

    host: str = Field("0.0.0.0", description="Address to listen on (0.0.0.0: the LAN).")  # noqa: S104
    port: int = Field(8080, ge=1, le=65535, description="HTTP port.")
    token: SecretStr | None = Field(
        None, description="Bearer token for writes; default: generated at first start into "
        "<data_dir>/api-token (mode 0600); the log gives only that path.",
    )
    token_file: Path | None = Field(None, description="File holding the token.")
    read_requires_token: bool = Field(False, description="Reads need the token too.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser "
        "page of theirs; none by default.",
    )
    max_body_bytes: int = Field(16384, ge=256, description="Largest request body accepted.")
    max_points: int = Field(10000, ge=10, description="Most points one history call returns.")
    command_timeout_s: float = Field(3.0, gt=0, description="Wait for the relays' answer.")
    stale_after_s: float = Field(30.0, gt=0, description="A device state older is 'stale'.")

    def model_post_init(self, _context: Any) -> None:
        """Resolve the token file."""
        object.__setattr__(self, "token", read_secret(self.token, self.token_file, "api.token"))


@dataclass(frozen=True)
class RelayRef:
    """A relay as the api shows it (from the relays section)."""

    id: str
    name: str | None
    kind: Literal["switch", "fil_pilote"]
    automated: bool = False  # a load of the automation section: its card keeps room for it


@dataclass(frozen=True)
class DisplayRef:
    """A display of the display service (the api serves a dummy one's frames)."""

    id: str
    backend: str
    size: str


@dataclass(frozen=True)
class ApiInputs:
    """What the api reads, built by the composition root: its own section, the relays
    it shows and commands, and the history file it serves (with the tariffs to price it)."""

    api: ApiConfig
    relays: tuple[RelayRef, ...]
    history_db: Path
    tariffs: TariffBook
    displays: tuple[DisplayRef, ...] = ()
    frames_dir: Path = Path("data/display")  # where the display service writes <id>.png
    timezone: str = "Europe/Paris"  # the ledger's local days (historian.timezone)
