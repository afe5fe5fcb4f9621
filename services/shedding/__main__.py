"""`python -m services.shedding`: run the shedding service."""

from services.app.runner import run

raise SystemExit(run(["shedding"]))
