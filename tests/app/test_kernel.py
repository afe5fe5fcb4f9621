"""services/core is the kernel: it imports no service, not even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

CORE = ROOT / "services" / "core"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module imported anywhere in the file (top level, functions, TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if node.module == "services" and not a.name.startswith("_")]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "." * node.level + (node.module or "")))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def _foreign(module: str) -> bool:
    if module.startswith("."):
        return module.startswith("..")  # relative imports may not leave core
    parts = module.split(".")
    return parts[0] == "services" and len(parts) > 1 and parts[1] != "core"


def test_core_imports_no_service() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    bad = [f"{path.relative_to(ROOT)}:{line}: {module}" for path in files
           for line, module in _imports(path) if _foreign(module)]
    assert not bad, "services/core must import no service:\n" + "\n".join(bad)


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from services.teleinfo import fields\n"
                      "    import services.app.cli\n"
                      "    importlib.import_module('services.relays.config')\n"
                      "from services import api\nfrom services.core import bus\n",
                      encoding="utf-8")
    foreign = sorted(m for _, m in _imports(sample) if _foreign(m))
    assert foreign == ["services.api", "services.app.cli", "services.relays.config",
                       "services.teleinfo"]
