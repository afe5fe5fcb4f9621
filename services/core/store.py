"""Small JSON state files that survive power cuts: write to a temp file, fsync, rename.

A cut during the write leaves the previous file whole (rename is atomic on POSIX); a
leftover temp file is ignored and replaced by the next write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def save_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    payload = json.dumps(data, indent=1, sort_keys=True).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)  # the bytes are on disk before the name points at them
    finally:
        os.close(fd)
    tmp.replace(path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # and the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def load_json(path: Path) -> Any | None:
    """The saved data, or None when there is none; a corrupt file is kept aside, not lost."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        aside = path.with_name(path.name + ".corrupt")
        with contextlib.suppress(OSError):
            path.replace(aside)
        log.error("state file %s is corrupt (%s); kept as %s", path, exc, aside)
        return None
