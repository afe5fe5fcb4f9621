"""`python -m services.api`: run the api service."""

from services.core.service import run

raise SystemExit(run(["api"]))
