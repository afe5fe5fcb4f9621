"""`python -m services.vedirect`: run the vedirect service."""

from services.core.service import run

raise SystemExit(run(["vedirect"]))
