"""``enerbox sim ...``: device simulators for development and tests (``tic``, ``vedirect``,
``inverter``, ``aurora``, ``onewire``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from services.sim.counters import CounterFile
from services.sim.follow import RelayFollower, relay_powers
from services.sim.home import HOME_DAY_LENGTH_S, HOME_PV_KWC, HOME_START_HOUR, home_profile
from services.sim.profile import LoadProfile, Peak, default_profile
from services.sim.pty_port import PtyPort
from services.sim.stack import main as stack_main
from services.sim.tic import PARIS, Tariff, TicMeterSim, replay_chunks, sim_clock
from services.sim.vedirect import BAUDRATE as VEDIRECT_BAUDRATE
from services.sim.vedirect import check_field
from services.sim.vedirect_devices import BatteryMonitorSim, SolarChargerSim
from services.teleinfo.protocol import Mode

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
VeDirectSim = BatteryMonitorSim | SolarChargerSim
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# The worker's way to wake the main thread when it ends on its own (it never should).
_WORKER_ENDED = signal.SIGUSR1


def add_tic_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add the ``tic`` subcommand (a Linky on a pseudo-terminal) to ``subparsers``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "tic", help="simulate a Linky TIC output on a pseudo-terminal",
        description="Write Linky TIC frames to a pty at the real baud pace; services open "
        "--link as if it were the meter's serial adapter. Stops on SIGINT/SIGTERM.",
    )
    p.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.HISTORIQUE.value)
    p.add_argument("--phases", type=int, choices=[1, 3], default=1)
    p.add_argument("--tariff", choices=[t.value for t in Tariff], default=Tariff.BASE.value)
    p.add_argument("--producer", action="store_true", help="add PV production (injection)")
    p.add_argument("--kva", type=int, default=9, help="subscribed power (default 9)")
    p.add_argument("--link", type=Path, default=Path("run/sim/tic0"),
                   help="symlink to create, pointing at the pty (default ./run/sim/tic0)")
    p.add_argument("--replay", type=Path, metavar="FILE",
                   help="loop a raw capture byte for byte instead of generating frames")
    p.add_argument("--speed", type=_positive, default=1.0,
                   help="multiplier of the line pace and of simulated time (default 1)")
    _add_day_arguments(p)
    p.add_argument("--pv-kwc", type=float, default=None,
                   help="with --home: its PV in kWc (default 6)")
    p.add_argument("--follow", metavar="HOST:PORT", type=_host_port,
                   help="follow <prefix>/relays/+/state on this broker and draw the power of "
                   "every relay that is on (reconnects; no broker: nothing followed)")
    p.add_argument("--prefix", default="enerbox", help="topic prefix to follow (default enerbox)")
    p.add_argument("--config", type=Path,
                   help="with --follow: the relays' powers (automation power_w, else "
                   "shedding's, else 1000 W)")
    p.add_argument("--peak-at-s", type=float, default=120.0,
                   help="start of the daily power spike, seconds into the day (default 120)")
    p.add_argument("--peak-duration-s", type=float, default=30.0,
                   help="length of the spike; 0 for none (default 30)")
    p.add_argument("--peak-level", type=_positive, default=1.20,
                   help="spike power as a fraction of the subscribed power (default 1.20)")
    p.set_defaults(handler=run_tic)
    return p


def add_vedirect_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add the ``vedirect`` subcommand (a Victron device on a pseudo-terminal) to ``subparsers``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "vedirect", help="simulate a Victron VE.Direct device on a pseudo-terminal",
        description="Write VE.Direct text blocks to a pty at 19200 bd pace, one reading per "
        "simulated second; services open --link as if it were the VE.Direct USB cable. "
        "Stops on SIGINT/SIGTERM.",
    )
    p.add_argument("--device", choices=["bmv", "mppt"], default="bmv",
                   help="bmv: SmartShunt battery monitor; mppt: SmartSolar charger (default bmv)")
    p.add_argument("--serial", type=_ve_serial,
                   help="SER# to send (default HQ2231SIM01 for bmv, HQ2245SIM02 for mppt)")
    p.add_argument("--link", type=Path, default=Path("run/sim/vedirect0"),
                   help="symlink to create, pointing at the pty (default ./run/sim/vedirect0)")
    p.add_argument("--replay", type=Path, metavar="FILE",
                   help="loop a raw capture byte for byte (at line pace) instead of generating")
    p.add_argument("--speed", type=_positive, default=1.0,
                   help="multiplier of the line pace and of simulated time (default 1)")
    _add_day_arguments(p)
    p.set_defaults(handler=run_vedirect)
    return p


def _add_day_arguments(p: argparse.ArgumentParser) -> None:
    """The simulated day: its length, its start, and `make run`'s home; the counters' file."""
    p.add_argument("--state", type=Path, metavar="FILE",
                   help="keep the energy counters in this JSON file across restarts")
    p.add_argument("--day-length-s", type=_positive, default=None,
                   help=f"seconds of simulated time for a whole day (default 600; "
                   f"{HOME_DAY_LENGTH_S:g} with --home)")
    p.add_argument("--start-hour", type=float, default=None,
                   help=f"simulated time of day at start, in hours (default 0; "
                   f"{HOME_START_HOUR:g} with --home)")
    p.add_argument("--home", action="store_true",
                   help="the home of `make run` (services.sim.home): PV with a few clouds, a "
                   "light lunch, the day starting late in the morning; the Linky a producer")


def _day_profile(args: argparse.Namespace, phases: int = 1, kva: float = 9.0,
                 producer: bool = False, peak: Peak | None = None) -> LoadProfile:
    """The simulated day the arguments ask for: the home's (--home) or the default one."""
    if args.home:
        kwc = getattr(args, "pv_kwc", None)
        return home_profile(
            phases=phases, subscribed_kva=kva,
            pv_kwc=HOME_PV_KWC if kwc is None else kwc,
            day_length_s=args.day_length_s or HOME_DAY_LENGTH_S,
            start_hour=HOME_START_HOUR if args.start_hour is None else args.start_hour,
            peak=peak,
        )
    base = default_profile(phases, kva, producer, day_length_s=args.day_length_s or 600.0,
                           peak=peak)
    return replace(base, start_hour=args.start_hour or 0.0)


def build_parser() -> argparse.ArgumentParser:
    """Parser for ``enerbox sim``: one subcommand per simulated device."""
    parser = argparse.ArgumentParser(
        prog="enerbox sim", description="Device simulators for development and tests."
    )
    subparsers = parser.add_subparsers(dest="sim", required=True, metavar="DEVICE")
    add_tic_parser(subparsers)
    add_vedirect_parser(subparsers)
    # Parsed by their own modules (main below hands them the rest of the line).
    subparsers.add_parser("inverter", add_help=False,
                          help="simulate a SunSpec inverter and grid meter (Modbus TCP server)")
    subparsers.add_parser("aurora", add_help=False,
                          help="simulate an ABB/Power-One PVI inverter (Aurora) on a pty")
    subparsers.add_parser("onewire", add_help=False,
                          help="simulate DS18B20 probes in a fake 1-Wire sysfs tree")
    stack = subparsers.add_parser(
        "stack", help="broker + simulators + services, as `make run` runs them",
        description="Start mosquitto (unless one listens already), the device simulators and "
        "the services; Ctrl-C stops them all.",
    )
    stack.add_argument("--port", type=int, default=1883, help="MQTT port (default 1883)")
    stack.add_argument("--run-dir", type=Path, default=Path("run"),
                       help="where logs and the simulators' ports go (default ./run)")
    stack.add_argument("--single-process", action="store_true",
                       help="run every service in one process (enerbox run all)")
    stack.set_defaults(handler=_run_stack)
    return parser


def _run_stack(args: argparse.Namespace) -> int:
    return stack_main(args.port, args.run_dir, args.single_process)


def main(argv: list[str] | None = None) -> int:
    """Run ``enerbox sim`` with ``argv`` (the arguments after ``sim``); return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["inverter"]:
        from services.sim import inverter  # noqa: PLC0415  (pymodbus: only when asked)

        return inverter.main(argv[1:])
    if argv[:1] == ["aurora"]:
        from services.sim import aurora  # noqa: PLC0415

        return aurora.main(argv[1:])
    if argv[:1] == ["onewire"]:
        from services.sim import onewire  # noqa: PLC0415

        return onewire.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    handler: Handler = args.handler
    return handler(args)


def run_tic(args: argparse.Namespace) -> int:
    """Serve TIC frames (or a replayed capture) on a pty until SIGINT/SIGTERM."""
    mode = Mode(args.mode)
    stop = threading.Event()
    if args.replay is not None and not (args.replay.is_file() and args.replay.stat().st_size):
        log.error("cannot replay %s: not a non-empty file", args.replay)
        return 2
    follower: RelayFollower | None = None
    sim: TicMeterSim | None = None
    state = CounterFile(args.state)
    with PtyPort(args.link, mode.baudrate, speed=args.speed) as port:
        if args.replay is not None:
            what = f"replay of {args.replay} ({mode} pace)"
            source = replay_chunks(args.replay)
        else:
            what = f"{mode} {args.phases}-phase"
            peak = Peak(args.peak_at_s, args.peak_duration_s, args.peak_level)
            producer = args.producer or args.home
            profile = _day_profile(args, args.phases, args.kva, producer, peak)
            sim = TicMeterSim(mode, args.phases, args.tariff, producer, args.kva,
                              profile=profile)
            sim.restore(state.load())
            follower = _follower(args)
            source = _frames(sim, args.speed, follower, state)
        print(f"TIC simulator: {what} on {args.link.absolute()} -> {port.slave_name}", flush=True)
        try:
            signalled = _serve(source, port, stop, "TIC simulator")
        finally:
            if follower is not None:
                follower.stop()
            if sim is not None:  # the worker has stopped: the counters hold still
                state.save(sim.counters())
    log.info("TIC simulator stopped")
    return 0 if signalled else 1


def run_vedirect(args: argparse.Namespace) -> int:
    """Serve VE.Direct readings (or a replayed capture) on a pty until SIGINT/SIGTERM."""
    stop = threading.Event()
    if args.replay is not None and not (args.replay.is_file() and args.replay.stat().st_size):
        log.error("cannot replay %s: not a non-empty file", args.replay)
        return 2
    sim: VeDirectSim | None = None
    state = CounterFile(args.state)
    with PtyPort(args.link, VEDIRECT_BAUDRATE, speed=args.speed) as port:
        if args.replay is not None:
            what = f"replay of {args.replay}"
            source = replay_chunks(args.replay)
        else:
            sim = _vedirect_device(args)
            sim.restore(state.load())
            what = f"{sim.product_name} ({sim.serial})"
            source = _readings(sim, args.speed, stop, state)
        print(f"VE.Direct simulator: {what} on {args.link.absolute()} -> {port.slave_name}",
              flush=True)
        signalled = _serve(source, port, stop, "VE.Direct simulator")
        if sim is not None:  # the worker has stopped: the counters hold still
            state.save(sim.counters())
    log.info("VE.Direct simulator stopped")
    return 0 if signalled else 1


def _follower(args: argparse.Namespace) -> RelayFollower | None:
    """The relay follower --follow asks for, started (None without --follow)."""
    if args.follow is None:
        return None
    powers = relay_powers(args.config)
    host, port = args.follow
    return RelayFollower(host, port, prefix=args.prefix, powers=powers).start()


def _vedirect_device(args: argparse.Namespace) -> VeDirectSim:
    """The simulated device the arguments ask for."""
    profile = _day_profile(args)
    length = profile.day_length_s
    if args.device == "mppt":
        if args.serial is None:
            return SolarChargerSim(day_length_s=length, profile=profile)
        return SolarChargerSim(args.serial, day_length_s=length, profile=profile)
    if args.serial is None:
        return BatteryMonitorSim(day_length_s=length, profile=profile)
    return BatteryMonitorSim(args.serial, day_length_s=length, profile=profile)


def _readings(sim: VeDirectSim, speed: float, stop: threading.Event,
              state: CounterFile | None = None) -> Iterator[bytes]:
    """One reading per simulated second, its blocks back to back, as a real device sends them."""
    start = time.monotonic()
    slot = 0
    while True:
        yield b"".join(sim.blocks_at((time.monotonic() - start) * speed))
        if state is not None:
            state.tick(sim.counters)
        # The next reading starts on the next simulated second; after a stall (a paused
        # process) the missed ones are skipped, not burst out.
        slot = max(slot + 1, math.floor((time.monotonic() - start) * speed))
        if stop.wait(max(0.0, start + slot / speed - time.monotonic())):
            return


def _frames(sim: TicMeterSim, speed: float, follower: RelayFollower | None = None,
            state: CounterFile | None = None) -> Iterator[bytes]:
    """Frames back to back, each built when the previous one has gone out, with the power of
    the followed relays that are on. DATE shows the simulated clock (today, at the simulated
    hour): the time the tariff periods follow, which the page shows as the meter's."""
    start = time.monotonic()
    day0 = datetime.now(PARIS).date()
    while True:
        steered = 0.0 if follower is None else follower.steered_va()
        t_s = (time.monotonic() - start) * speed
        yield sim.frame_at(t_s, sim_clock(sim.profile, t_s, day0), steered)
        if state is not None:
            state.tick(sim.counters)


def _pump(source: Iterator[bytes], port: PtyPort, stop: threading.Event, main: int) -> None:
    """Write the source to the port until ``stop`` is set; wake ``main`` when done."""
    try:
        for data in source:
            if stop.is_set():
                return
            port.write_paced(data, stop)
    finally:
        signal.pthread_kill(main, _WORKER_ENDED)


def _serve(source: Iterator[bytes], port: PtyPort, stop: threading.Event, what: str) -> bool:
    """Pump ``source`` from a thread until SIGINT/SIGTERM (True) or the thread dies (False)."""
    worker = threading.Thread(target=_pump, args=(source, port, stop, threading.get_ident()),
                              name=what, daemon=True)
    with _signals_blocked():
        worker.start()
        try:
            return _wait_for_stop(worker, what)
        finally:  # whatever happens here, the worker must not outlive us
            stop.set()
            worker.join()


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block the stop signals (the worker thread inherits it) so only ``sigwait`` sees them."""
    # Waiting for signals synchronously avoids running a handler at an arbitrary point of the
    # main thread (e.g. inside Event.wait, which would deadlock on the Event's own lock).
    # The worker's wake-up may still be pending when the mask is restored: a no-op handler
    # takes it (its default action would kill the process; SIG_IGN would discard it unseen).
    old_handler = signal.signal(_WORKER_ENDED, lambda _signo, _frame: None)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {*_STOP_SIGNALS, _WORKER_ENDED})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        signal.signal(_WORKER_ENDED, old_handler)


def _wait_for_stop(worker: threading.Thread, what: str) -> bool:
    """True on SIGINT/SIGTERM; False when the worker died first (its traceback is printed)."""
    # sigwait, not sigtimedwait: CPython's sigtimedwait returns garbage siginfo when a
    # SIGSTOP outlasts its timeout (EINTR past the deadline), which crashed `kill -STOP`.
    while True:
        signo = signal.sigwait({*_STOP_SIGNALS, _WORKER_ENDED})
        if signo in _STOP_SIGNALS:
            log.info("signal %s: stopping", signal.Signals(signo).name)
            return True
        if signo == _WORKER_ENDED:
            worker.join(timeout=1.0)  # it sends this on its way out
            if not worker.is_alive():  # (and not someone's stray SIGUSR1)
                log.error("%s worker stopped unexpectedly", what)
                return False


def _ve_serial(text: str) -> str:
    """argparse type: a serial number that fits in a VE.Direct field."""
    try:
        check_field("SER#", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _host_port(text: str) -> tuple[str, int]:
    """argparse type: HOST:PORT."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def _positive(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value
