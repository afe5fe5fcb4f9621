"""`python -m services.pulses`: run the pulses service."""

from services.app.runner import run

raise SystemExit(run(["pulses"]))
