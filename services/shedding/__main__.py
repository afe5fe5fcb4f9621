"""`python -m services.shedding`: run the shedding service."""

from services.core.service import run

raise SystemExit(run(["shedding"]))
