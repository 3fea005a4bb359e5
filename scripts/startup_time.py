"""Start-up times of the rackopt commands a planner runs most, each in a fresh process.

Why: a command that does not solve should answer at once, and every solve pays its
imports before any work starts (issue 14). This measures process start to exit, as a
user waits, with medians over ``--repeats`` runs: the bare interpreter, ``--help``,
``--version``, ``verify`` of each shipped instance against its solved layout,
``compare`` of two layouts, and the import of the solve pipeline (Pyomo and HiGHS) that
only ``solve`` pays. For ``verify`` it also splits one cold process into its parts:
imports, YAML parsing, instance validation and site building, reading the layout, the
check. Each row gives wall seconds and CPU seconds (user plus system of the child): on a
shared machine the wall time grows with the load, the CPU time much less. ``dask`` (the
``study`` extra) makes xarray import ``dask.array`` whenever it opens a file; ``verify``
reads its layout without xarray, and is also timed with dask hidden, as a plain install
runs it, to show that dask no longer costs it anything (``compare`` still opens
Datasets). Output is a
Markdown table for docs/benchmarks.md, headed by the CPU (``lscpu``).

Usage: python scripts/startup_time.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ("tutorial", "gb300-hall", "retrofit-hall", "air-hall")
RACKOPT = str(Path(sys.executable).parent / "rackopt")

PARTS = """
import json, sys, time
t0 = time.perf_counter()
import yaml
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site
from optimizer.results.reader import read_layout
from optimizer.verify.check import check_layout
t1 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
t2 = time.perf_counter()
site = build_site(load_instance(sys.argv[1]))
t3 = time.perf_counter()
layout = read_layout(site, sys.argv[2])
t4 = time.perf_counter()
check_layout(site, layout.placement, layout.su, layout.su_network_slot)
t5 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "yaml": t2 - t1, "load and site": t3 - t2,
                  "read layout": t4 - t3, "check": t5 - t4}))
"""


def cpu_name() -> str:
    """The CPU model as lscpu names it, with the number of CPUs."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU (no lscpu)"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs"


WITHOUT_DASK = (
    "import sys; sys.modules['dask'] = None; sys.argv[0] = 'rackopt'; "
    "from optimizer.cli import main; main()"
)
"""``rackopt`` as in an install without the ``study`` extra: ``dask`` cannot be imported."""


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds from process start to exit of ``command``."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, started = _cpu_s(), time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu_s() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def verify_parts(instance: Path, layout: Path, repeats: int) -> dict[str, float]:
    """Median seconds of each part of a cold ``verify`` process."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PARTS, str(instance), str(layout)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(repeats)
    ]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        layouts = {}
        for name in INSTANCES:
            layouts[name] = Path(folder) / f"{name}.nc"
            instance = ROOT / "instances" / f"{name}.yaml"
            subprocess.run([RACKOPT, "solve", instance, "-o", layouts[name], "-q"], check=True)

        def verify_args(name: str) -> list[str | Path]:
            return [f"instances/{name}.yaml", layouts[name]]

        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("rackopt --help", [RACKOPT, "--help"]),
            ("rackopt --version", [RACKOPT, "--version"]),
            *(
                (f"rackopt verify {name}", [RACKOPT, "verify", *verify_args(name)])
                for name in layouts
            ),
            (
                "rackopt verify gb300-hall, without dask",
                [sys.executable, "-c", WITHOUT_DASK, "verify", *verify_args("gb300-hall")],
            ),
            (
                "rackopt compare (2 layouts)",
                [RACKOPT, "compare", layouts["gb300-hall"], layouts["air-hall"]],
            ),
            (
                "import the solve pipeline (Pyomo, HiGHS)",
                [sys.executable, "-c", "import optimizer.solve.pipeline"],
            ),
        ]
        print(f"CPU: {cpu_name()}; medians of {args.repeats} runs, process start to exit.\n")
        print("| command | wall s | CPU s |\n|---|---|---|")
        for label, command in rows:
            wall, cpu = timed([str(c) for c in command], args.repeats)
            print(f"| {label} | {wall:.2f} | {cpu:.2f} |")
        name = "gb300-hall"
        parts = verify_parts(ROOT / "instances" / f"{name}.yaml", layouts[name], args.repeats)
        print(f"\n`verify {name}` in one cold process:\n")
        print("| part | seconds |\n|---|---|")
        for key, seconds in parts.items():
            print(f"| {key} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
