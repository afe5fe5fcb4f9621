"""`python -m services.vedirect`: run the vedirect service."""

from services.app.runner import run

raise SystemExit(run(["vedirect"]))
