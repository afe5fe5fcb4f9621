"""The write token: configured, or generated once into the data directory."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


def load_token(configured: str | None, data_dir: Path) -> str:
    """The configured token, else the one in <data_dir>/api-token (made at first start).

    Never logged nor printed, here or by any caller: only the file's path is.
    """
    if configured:
        return configured
    path = data_dir / "api-token"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    # Only the path: logs end up in journald, docker logs and bug reports; the file is 0600.
    log.warning("service=api write token generated: read it in %s (owner only)", path)
    return token


def token_ok(header: str | None, token: str) -> bool:
    """'Bearer <token>' compared in constant time."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())
