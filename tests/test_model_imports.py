"""models/ reads the site it is given and nothing else of rackopt: it imports only the site
arrays module, which in turn knows neither the instance format nor a solver."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE_ARRAYS = "optimizer.site.arrays"


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_models_import_only_the_site_arrays():
    for path in sorted((ROOT / "models").glob("*.py")):
        rackopt = {m for m in _imported_modules(path) if m.split(".")[0] == "optimizer"}
        assert rackopt <= {SITE_ARRAYS}, f"{path.name} imports {sorted(rackopt)}"


def _loaded_after(statement: str) -> set[str]:
    """Modules loaded by a fresh interpreter that runs ``statement``."""
    script = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(result.stdout.split())


def test_the_site_arrays_import_no_instance_format_and_no_solver():
    loaded = _loaded_after(f"import {SITE_ARRAYS}")
    assert SITE_ARRAYS in loaded
    forbidden = ("optimizer.instance", "optimizer.solve", "pyomo", "highspy", "pydantic", "models")
    assert not {m for m in loaded if m.split(".")[0] in forbidden or m.startswith(forbidden)}
    rackopt = {m for m in _loaded_after("import models.build") if m.startswith("optimizer.")}
    assert rackopt <= {
        "optimizer.errors",
        "optimizer.objectives",
        "optimizer.site",
        SITE_ARRAYS,
        "optimizer.site.cabling",
        "optimizer.site.power_tree",
    }
