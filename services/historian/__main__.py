"""`python -m services.historian`: run the historian service."""

from services.core.service import run

raise SystemExit(run(["historian"]))
