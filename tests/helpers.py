"""Small shared test helpers: a valid base instance, writers for instance and study
files, and the CLI run in-process.

Import with ``from helpers import base_instance, write_instance`` (pytest puts the
tests folder on ``sys.path``). Every test builds its own variant of the base by
editing a fresh copy, so cases never leak into each other.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

TUTORIAL = Path(__file__).resolve().parents[1] / "instances" / "tutorial.yaml"
GENERATOR = TUTORIAL.parents[1] / "scripts" / "generate_campus.py"

_BASE: dict[str, Any] = {
    "format_version": 1,
    "name": "base",
    "halls": {
        "H1": {
            "rows": {
                "L": {
                    "slots": 2,
                    "slot": {
                        "liquid": True,
                        "cdu": "CDU1",
                        "air_zone": "Z1",
                        "floor_kg": 2000,
                        "feeds": ["PDU-A1", "PDU-B1"],
                    },
                },
                "A": {
                    "slots": 2,
                    "origin_m": [0.0, 3.6],
                    "slot": {
                        "air_zone": "Z1",
                        "floor_kg": 1200,
                        "air_kw_max": 60,
                        "feeds": ["PDU-A1", "PDU-B1"],
                    },
                },
            }
        }
    },
    "power": {
        "devices": {
            "UPS-A": {"kind": "ups", "rating_kw": 500},
            "UPS-B": {"kind": "ups", "rating_kw": 500},
            "PDU-A1": {"kind": "pdu", "parent": "UPS-A", "rating_kw": 400},
            "PDU-B1": {"kind": "pdu", "parent": "UPS-B", "rating_kw": 400},
        }
    },
    "cooling": {
        "cdus": {"CDU1": {"unit_kw": 250, "unit_flow_lpm": 400, "units": 2}},
        "air_zones": {"Z1": {"crah_kw": 100, "units": 3}},
    },
    "rack_types": {"gb300-nvl72": {}, "dgx-b300-rack": {}},
    "demand": {"gb300-nvl72": {"max": 2}, "dgx-b300-rack": {"max": 2}},
}


def base_instance() -> dict[str, Any]:
    """A fresh copy of a small valid instance: one hall with a liquid row (H1-L-01..02)
    and an air row (H1-A-01..02), 2N UPS with one PDU each, one CDU group, one air zone."""
    return copy.deepcopy(_BASE)


def write_instance(
    directory: Path, data: dict[str, Any] | list[Any] | str, name: str = "instance.yaml"
) -> Path:
    """Write ``data`` (a dict/list dumped as YAML, or raw YAML text) to ``directory/name``."""
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def write_study(
    folder: Path, study: dict[str, Any], name: str = "study.yaml", base: Path = TUTORIAL
) -> Path:
    """Write a study file over a copy of ``base`` (the tutorial hall by default) beside it
    in ``folder`` (a study reads only its own folder tree)."""
    shutil.copyfile(base, folder / base.name)
    path = folder / name
    path.write_text(
        yaml.safe_dump({"format_version": 1, "base": base.name, **study}, sort_keys=False),
        encoding="utf-8",
    )
    return path


def run(*args: Any) -> Result:
    """``rackopt ARGS...`` in this process; every argument is turned into text."""
    from optimizer.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def local_cluster(protocol: str = "tcp://", security: Any = None, workers: int = 1) -> Any:
    """A dask cluster of ``workers`` workers (one by default) inside this process, on the
    loopback interface."""
    import distributed

    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=False,
        protocol=protocol,
        host="127.0.0.1",
        dashboard_address=None,
        security=security,
    )


def solved_tutorial(folder: Path) -> Path:
    """The tutorial instance solved into ``folder/tutorial.nc``."""
    out = folder / "tutorial.nc"
    result = run("solve", TUTORIAL, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def generated_hall(path: Path, *args: str) -> Path:
    """Write the hall or campus ``scripts/generate_campus.py`` makes from ``args`` (the
    halls of docs/benchmarks.md) to ``path``, and return ``path``."""
    command = [sys.executable, str(GENERATOR), *args, "-o", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path
