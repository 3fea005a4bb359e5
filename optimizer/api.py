"""rackopt from Python, for notebooks and scripts: the same pipeline as the command line.

>>> from optimizer import api
>>> ds = api.solve("instances/tutorial.yaml")        # the checked layout, an xarray Dataset
>>> api.save(ds, "tutorial.nc")                       # what `rackopt solve -o` writes
>>> api.tables(ds)["devices"]                         # one DataFrame per entity, kW, rounded
>>> api.verify("instances/tutorial.yaml", "slots.csv").ok

Every function raises the errors the command line reports (:mod:`optimizer.errors`):
``InstanceError`` for bad input, ``InfeasibleError`` when the demand cannot be met, and
so on; their text is the one line the command line prints. docs/api.md has a longer,
notebook-style example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.instance.loader import load_instance
from optimizer.results.reader import open_layout as _open_layout
from optimizer.results.reader import read_layout
from optimizer.site.arrays import Site
from optimizer.site.build import build_site
from optimizer.site.placement import Assignment
from optimizer.solve.progress import ProgressFn
from optimizer.verify.check import CheckReport, Violation, check_layout

if TYPE_CHECKING:
    # pandas and xarray are imported where a function needs them: verify needs neither,
    # and their import is most of its start-up (docs/benchmarks.md, issue 14).
    import pandas as pd
    import xarray as xr

__all__ = ["Verification", "open_layout", "save", "solve", "tables", "verify"]


def solve(
    instance: str | Path,
    *,
    progress: ProgressFn | None = None,
    allow_paths_outside: bool = False,
    **options: Any,
) -> xr.Dataset:
    """Solve ``instance`` (a YAML file) and return the checked layout as a Dataset
    (docs/output-format.md), exactly as ``rackopt solve`` computes it: the pipeline's
    :func:`~optimizer.solve.pipeline.solve_instance`, then the independent check, then
    :func:`~optimizer.results.layout.layout_dataset`.

    ``options`` are the solver settings of :class:`~optimizer.solve.options.SolveOptions`
    (``time_limit``, ``gap``, ``threads``, ``seed``, ``warm_start``, ``split_parts``,
    ``second_stage_nodes``, ``verbose``; ``capping_baseline``; for an instance with
    phases, ``phase_objective``, ``scenario_objective``, ``myopic`` and
    ``myopic_baseline``); ``progress`` is called with the solver's progress. Nothing is
    written: :func:`save` does that."""
    # The solver stack (and the layout writer, which reads its reports) is imported
    # only here, so that verify and tables start fast.
    from optimizer.results.layout import layout_dataset
    from optimizer.solve.options import SolveOptions
    from optimizer.solve.pipeline import solve_instance

    report = solve_instance(instance, SolveOptions(**options), progress, allow_paths_outside)
    return layout_dataset(report)


def save(layout: xr.Dataset, path: str | Path) -> None:
    """Write a layout (or study) Dataset as NetCDF through rackopt's one safe write path:
    atomic, CF-1.13 (docs/output-format.md section 9)."""
    from optimizer.results.layout import write_layout

    write_layout(layout, path)


def open_layout(path: str | Path) -> xr.Dataset:
    """A layout or study file, checked against the layout schema and loaded; booleans
    come back as bool and "none" as -1 (not the NaN plain ``xr.open_dataset`` shows)."""
    return _open_layout(path)


def tables(layout: xr.Dataset | str | Path) -> dict[str, pd.DataFrame]:
    """One DataFrame per entity: ``slots``, ``rack_types``, ``devices``, ``cdus``,
    ``air_zones``, ``sus``, ``cable_classes`` and ``facility`` (docs/output-format.md
    section 10), in kW and rounded. ``layout`` is a layout Dataset or a layout or study
    file; a study's tables have a ``scenario`` column."""
    import xarray as xr

    from optimizer.studies.tables import file_tables, layout_tables

    if isinstance(layout, xr.Dataset):
        return layout_tables(layout)
    return file_tables(layout)


@dataclass(frozen=True)
class Verification:
    """A layout checked against every rule of an instance (what ``rackopt verify`` says)."""

    site: Site
    layout: Assignment
    report: CheckReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def violations(self) -> list[Violation]:
        return self.report.violations

    @property
    def racks(self) -> int:
        return int((self.layout.placement >= 0).sum())


def verify(
    instance: str | Path, layout: str | Path, *, allow_paths_outside: bool = False
) -> Verification:
    """Check ``layout`` (a rackopt NetCDF layout, or a CSV ``slot,rack_type[,su,
    network_slot]`` such as an exported ``slots.csv``) against every rule of
    ``instance``; every load is recomputed from the placement (docs/verification.md)."""
    return verify_site(build_site(load_instance(instance, allow_paths_outside)), layout)


def verify_site(site: Site, layout: str | Path) -> Verification:
    """:func:`verify` against a site already built (the CLI builds it once, to show the
    instance's lint warnings before checking)."""
    placed = read_layout(site, layout)
    return Verification(
        site, placed, check_layout(site, placed.placement, placed.su, placed.su_network_slot)
    )
