"""`python -m services.teleinfo`: run the teleinfo service."""

from services.core.service import run

raise SystemExit(run(["teleinfo"]))
