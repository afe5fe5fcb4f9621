"""The FastAPI application: REST under /api, the WebSocket, and the web page at /."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.websockets import WebSocketDisconnect

from services.api import docs, errors
from services.api.config import ApiInputs
from services.api.errors import ERRORS
from services.api.headers import SecurityHeaders
from services.api.labels import field_labels
from services.api.limits import BodyLimit
from services.api.live import Live
from services.api.models import (
    AutomationSwitch,
    AutomationSwitchResult,
    AutomationView,
    CommandResult,
    DayEnergy,
    DeviceView,
    DisplayView,
    Health,
    HistorySeries,
    HourEnergyView,
    HourlyEnergy,
    RelayCommand,
    RelayView,
    StateView,
)
from services.api.replies import TooManyPendingError
from services.api.security import token_ok
from services.core.bus import Bus
from services.core.config import Settings
from services.core.contract import ORDERS, Rejection
from services.core.contract import AutomationSwitch as ContractSwitch
from services.core.contract import RelayCommand as ContractCommand
from services.core.history.hourly import HourlyReader
from services.core.history.ledger_read import LedgerReader
from services.core.history.tariffs import TariffBook

STATIC = Path(__file__).parent / "static"
LAST_EPOCH_S = 4102444800.0  # 2100-01-01: a history bound no real query passes


class Gateway(FastAPI):
    """FastAPI with the body limit and the security headers outside every other layer.

    Outside starlette's error middleware too: its 500 page gets the headers, and nothing
    the application does after a 413 (its own error answer) reaches the client.
    """

    max_body_bytes = 16384

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, wrapped."""
        return SecurityHeaders(BodyLimit(super().build_middleware_stack(), self.max_body_bytes))


class HistoryFile(HourlyReader, LedgerReader):
    """The historian's SQLite file, opened read-only."""

    def __init__(self, path: Path, tariffs: TariffBook) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.db_lock = threading.RLock()
        self.tariffs = tariffs


def create_app(config: Settings[ApiInputs], bus: Bus, live: Live, token: str) -> FastAPI:
    """The application for one box."""
    cfg = config.section.api
    app = Gateway(title="enerbox", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Live state, relay control and history of an enerbox.")
    app.max_body_bytes = cfg.max_body_bytes
    errors.install(app)
    docs.install(app)
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization",
                                                                         "Content-Type"])
    relays_cfg = {r.id: r for r in config.section.relays}
    db_path = config.section.history_db
    tariffs = config.section.tariffs
    holder: dict[str, HistoryFile] = {}

    def history() -> HistoryFile:
        if "db" not in holder:
            if not db_path.exists():
                raise HTTPException(503, "no history yet: the historian has not written any")
            holder["db"] = HistoryFile(db_path, tariffs)
        return holder["db"]

    @app.on_event("startup")
    async def _loop() -> None:
        live.loop = asyncio.get_running_loop()

    def need_token(request: Request) -> None:
        if not token_ok(request.headers.get("authorization"), token):
            raise HTTPException(401, "a valid 'Authorization: Bearer <token>' is needed",
                                headers={"WWW-Authenticate": "Bearer"})

    def reader(request: Request) -> None:
        if cfg.read_requires_token:
            need_token(request)

    read = [Depends(reader)]
    write = [Depends(need_token)]

    def relay_view(relay_id: str) -> RelayView:
        rc = relays_cfg[relay_id]
        with live.lock:
            state = live.relays.get(relay_id)
        automation = live.automation_view(relay_id)
        return RelayView(id=rc.id, name=rc.name or rc.id, kind=rc.kind,
                         options=list(ORDERS) if rc.kind == "fil_pilote" else ["on", "off"],
                         state=state, automated=rc.automated or automation is not None,
                         automation=None if automation is None else AutomationView(**automation))

    def state_view() -> StateView:
        snap = live.snapshot()
        return StateView(services=snap["services"], devices=snap["devices"],
                         relays=[relay_view(r) for r in relays_cfg], shedding=snap["shedding"])

    @app.get("/api/state", responses=ERRORS, dependencies=read)
    async def get_state() -> StateView:
        """The live state of every device and relay."""
        return state_view()

    @app.get("/api/devices/{service}/{device}", responses=ERRORS, dependencies=read)
    def get_device(service: str, device: str) -> DeviceView:
        """One device."""
        with live.lock:
            found = live.devices.get((service, device))
        if found is None:
            raise HTTPException(404, f"no device {service}/{device}")
        return DeviceView(**live.device_view(found))

    @app.get("/api/relays", responses=ERRORS, dependencies=read)
    async def get_relays() -> list[RelayView]:
        """Every relay and radiator with its mode and source."""
        return [relay_view(r) for r in relays_cfg]

    # The configured ids, as documentation only: an unknown one still gets its 404. A default,
    # not Annotated: annotations are strings here, and this is a local.
    RELAY_ID = PathParam(json_schema_extra={"enum": list(relays_cfg)})

    @app.post("/api/relays/{relay_id}", responses=ERRORS, dependencies=write)
    async def command(body: RelayCommand, relay_id: str = RELAY_ID) -> CommandResult:
        """Send a command; answers with the relays service's verdict."""
        if relay_id not in relays_cfg:
            raise HTTPException(404, f"unknown relay {relay_id!r}")
        # The contract decides what a command is (the relays service applies the same rules).
        command = ContractCommand.from_mapping(body.model_dump(exclude_none=True))
        if isinstance(command, Rejection):
            raise HTTPException(422, command.reason)
        wrong_kind = command.check_kind(relays_cfg[relay_id].kind)
        if wrong_kind is not None:
            raise HTTPException(422, wrong_kind.reason)
        try:
            reply = await live.replies.send(relay_id, command, cfg.command_timeout_s)
        except TimeoutError:
            raise HTTPException(504, "the relays service did not answer (is it running?)") from None
        except TooManyPendingError as exc:
            raise HTTPException(503, str(exc)) from None
        if not reply.accepted:
            raise HTTPException(400, reply.reason or "refused by the relays service")
        # relays publishes the relay's new state before its answer: live already holds it.
        return CommandResult(accepted=True, applied=reply.applied, relay=relay_view(relay_id))

    @app.post("/api/relays/{relay_id}/automation", responses=ERRORS, dependencies=write)
    async def switch_automation(body: AutomationSwitch,
                                relay_id: str = RELAY_ID) -> AutomationSwitchResult:
        """Switch the load's automation on or off (off: the relay goes to its default).
        Answers once the automation's state confirms it, or after the command timeout with
        ``applied: false``."""
        if relay_id not in relays_cfg:
            raise HTTPException(404, f"unknown relay {relay_id!r}")
        view = relay_view(relay_id)
        if not view.automated:
            raise HTTPException(409, f"no automation drives {relay_id!r}")
        switch = ContractSwitch(body.enabled)
        bus.publish(bus.topics.automation_set(relay_id), switch.encode(), qos=1)
        applied = await live.wait_enabled(relay_id, body.enabled, cfg.command_timeout_s)
        return AutomationSwitchResult(sent=True, applied=applied, relay=relay_view(relay_id))

    @app.get("/api/history", responses=ERRORS, dependencies=read)
    def get_history(
        service: str, device: str, field: str,
        start: Annotated[float, Query(ge=0, le=LAST_EPOCH_S, allow_inf_nan=False,
                                      description="epoch seconds")],
        end: Annotated[float, Query(ge=0, le=LAST_EPOCH_S, allow_inf_nan=False,
                                    description="epoch seconds")],
        step: Annotated[int, Query(ge=60, le=86400 * 31, multiple_of=60,
                                   description="seconds, multiple of 60")]
        = 60,
        phase: str | None = None, index: str | None = None,
    ) -> HistorySeries:
        """min/mean/max of a field at a step over a range (from the local history)."""
        if end <= start:
            raise HTTPException(400, "end must be after start")
        if (end - start) / step > cfg.max_points:
            raise HTTPException(400, f"range too large: more than {cfg.max_points} points at "
                                     f"{step} s; use a larger step")
        tags = {"device": device} | ({"phase": phase} if phase else {}) | (
            {"index": index} if index else {})
        points = history().series(service, field, start, end, step, tags=tags)
        return HistorySeries(points=points)

    @app.get("/api/energy/daily", responses=ERRORS, dependencies=read)
    def get_daily(start: date, end: date, meter: str | None = None) -> list[DayEnergy]:
        """Daily energy and costs per meter (from the historian's ledger)."""
        if end < start:
            raise HTTPException(400, "end is before start")
        if (end - start).days > 3660:
            raise HTTPException(400, "range too large: at most 10 years")
        rows = history().daily(start, end, meter)
        return [DayEnergy(**dataclasses.asdict(r)) for r in rows]

    @app.get("/api/energy/hourly", responses=ERRORS, dependencies=read)
    def get_hourly(
        day: Annotated[str, Query(alias="date", description="local day, YYYY-MM-DD")],
    ) -> HourlyEnergy:
        """Energy per local hour of a day (import, export, production, self-consumption),
        from the energy counters' minute history; null where a counter has no reading."""
        try:
            wanted = date.fromisoformat(day)
        except ValueError:
            raise HTTPException(400, f"date must be a day as YYYY-MM-DD, got {day!r}") from None
        hours = history().hourly(wanted, config.section.timezone)
        return HourlyEnergy(date=wanted, timezone=config.section.timezone,
                            hours=[HourEnergyView(**dataclasses.asdict(h)) for h in hours])

    @app.get("/api/fields", responses=ERRORS, dependencies=read)
    def get_fields() -> dict[str, dict[str, str]]:
        """Each service's field names in words (service -> field -> label)."""
        return field_labels()

    @app.get("/api/events", responses=ERRORS, dependencies=read)
    async def get_events(limit: Annotated[int, Query(ge=1, le=200)] = 50
                   ) -> list[dict[str, Any]]:
        """Recent events (sheds, restores, rejected commands, devices lost), oldest first."""
        return live.recent_events(limit)

    @app.get("/api/health", responses=ERRORS)
    async def get_health() -> Health:
        """Broker connection, each service's status, data freshness."""
        snap = live.snapshot()
        stale = [f"{d['service']}/{d['device']}" for d in snap["devices"] if d["stale"]]
        connected = bus.connected.is_set()
        services = snap["services"]
        return Health(ok=connected and all(v == "online" for v in services.values())
                      and not stale, broker_connected=connected, services=services,
                      stale_devices=stale, history_available=db_path.exists())

    displays = {d.id: d for d in config.section.displays}
    frames_dir = config.section.frames_dir

    def frame_url(display_id: str) -> str | None:
        return f"/api/display/{display_id}.png" if displays[display_id].backend == "dummy" \
            else None

    # Documentation only, as RELAY_ID (an empty enum would be a schema nothing satisfies).
    DISPLAY_ID = PathParam(json_schema_extra={"enum": list(displays)} if displays else None)

    @app.get("/api/display", responses=ERRORS, dependencies=read)
    async def get_displays() -> list[DisplayView]:
        """The displays of the box, each with the URL of its current frame."""
        return [DisplayView(id=d.id, backend=d.backend, size=d.size,
                            frame_url=frame_url(d.id)) for d in displays.values()]

    @app.get("/api/display/{display_id}.png", dependencies=read, response_class=Response,
             responses={200: {"content": {"image/png": {}},
                              "description": "the newest frame"}, **ERRORS})
    def get_frame(display_id: str = DISPLAY_ID) -> Response:
        """The newest frame the display service wrote for a display, as PNG."""
        # Only a configured id names a file: nothing else of the disk is reachable.
        if display_id not in displays:
            raise HTTPException(404, f"unknown display {display_id!r}")
        if frame_url(display_id) is None:
            raise HTTPException(404, f"display {display_id!r} writes no frame "
                                f"(backend {displays[display_id].backend})")
        try:
            # Read whole (a frame is ~1 KB): the service replaces the file at any time, and
            # a streamed file could change under its Content-Length.
            png = (frames_dir / f"{display_id}.png").read_bytes()
        except OSError:
            raise HTTPException(404, f"no frame yet for {display_id!r} (is the display "
                                "service running?)") from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.websocket("/api/ws")
    async def websocket(ws: WebSocket) -> None:
        if cfg.read_requires_token and not token_ok(
                f"Bearer {ws.query_params.get('token', '')}", token):
            await ws.close(code=4401)
            return
        await ws.accept()
        queue = live.subscribe()
        try:
            await ws.send_json({"type": "snapshot", "state": state_view().model_dump(mode="json"),
                                "events": live.recent_events(50)})
            while (message := await queue.get()) is not None:
                if message.get("type") == "relay":
                    if message.get("id") not in relays_cfg:
                        continue  # a state for a relay this box does not have
                    message = {"type": "relay",
                               "relay": relay_view(message["id"]).model_dump(mode="json")}
                await ws.send_json(message)
            await ws.close(code=1013)  # too slow: dropped
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            live.unsubscribe(queue)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
