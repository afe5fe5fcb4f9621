"""schemathesis against the live OpenAPI: no generated request makes the API fail (5xx),
and every answer (errors included) matches the schema the OpenAPI declares for it.

Every operation, the relay command too: the token goes along, so generated bodies get
past auth to validation and to the relays service. Run through schemathesis' command
line: its pytest plugin does not load under pytest 9.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.api.conftest import Stack


def test_no_server_error(stack: Stack, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run",
         f"{stack.url}/openapi.json", "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", "25", "--max-time", "15",
         "--header", f"Authorization: Bearer {stack.token}",
         "--request-timeout", "15", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-4000:]
    assert "passed" in report.lower(), report[-4000:]
