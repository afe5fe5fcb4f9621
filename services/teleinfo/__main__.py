"""`python -m services.teleinfo`: run the teleinfo service."""

from services.app.runner import run

raise SystemExit(run(["teleinfo"]))
