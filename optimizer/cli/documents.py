"""The ``--json`` documents of ``solve``, ``verify``, ``explain``, ``next`` and ``compare``:
one JSON object on stdout that a script can parse, with the keys docs/output-format.md
section 11 documents (``document`` names the command, ``version`` the document format).

Each is built from the command's data (the layout dataset, the check report, the
shortfalls, the ranked slots, the compared figures), never from its text, so the
human-readable output can change without breaking scripts. Numbers are rounded as the
exported tables round them (:mod:`optimizer.studies.tables`); NaN and infinity are
``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # verify --json must not load the solver stack
    import xarray as xr

    from optimizer.site.arrays import Site
    from optimizer.solve.explain import Shortfall
    from optimizer.studies.compare import Kpis
    from optimizer.verify.check import CheckReport
    from optimizer.verify.headroom import NextRack, Place

VERSION = 1
"""Changes when a key is removed or changes meaning; keys may be added within it."""


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json for the commands that offer it."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document on stdout instead of text (docs/output-format.md "
        "section 11).",
    )(command)


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python ones, NaN and infinity as None, recursively.
    numpy is imported here, not with the module: the command line loads this module for
    every command, ``--help`` included (tests/test_startup.py)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(document: str, body: dict[str, Any]) -> None:
    """Print the document on stdout: ``document`` and ``version`` first, then ``body``."""
    text = json.dumps(_plain({"document": document, "version": VERSION, **body}), indent=2)
    click.echo(text)


def _kw(value: float) -> float:
    return round(float(value), 3)


def solve_document(ds: xr.Dataset, layout: str) -> dict[str, Any]:
    """What was solved and written: the facility row and rack types of the layout's
    tables (section 10), and the solve's timings."""
    from optimizer.studies.tables import layout_tables, records

    tables = layout_tables(ds)
    (facility,) = records(tables["facility"])
    return {
        "instance": ds.attrs["instance_name"],
        "layout": layout,
        "facility": facility,
        "rack_types": records(tables["rack_types"]),
        "timings_s": json.loads(ds.attrs["timings_s"]),
    }


def verify_document(site: Site, layout: str, racks: int, report: CheckReport) -> dict[str, Any]:
    """Whether every rule holds, the recomputed totals, and each violation's numbers."""
    return {
        "instance": site.name,
        "layout": layout,
        "ok": report.ok,
        "racks": racks,
        "it_kw": _kw(report.loads.it_kw),
        "facility_kw": _kw(report.loads.facility_kw),
        "violations": [
            {
                "rule": v.rule,
                "subject": v.subject,
                "failed": v.case,
                "load": round(v.load, 3),
                "limit": round(v.limit, 3),
                "excess": round(v.excess, 3),
                "unit": v.unit,
                "minimum": v.minimum,
            }
            for v in report.violations
        ],
    }


def explain_document(site: Site, demand: str, shortfalls: list[Shortfall]) -> dict[str, Any]:
    """Whether the demand minimums fit, and else which resources fall short by how much."""
    return {
        "instance": site.name,
        "demand": demand,
        "fits": not shortfalls,
        "shortfalls": [
            {
                "resource": s.resource,
                "short_by": round(s.short_by, 3),
                "capacity": round(s.capacity, 3),
                "unit": s.unit,
            }
            for s in shortfalls
        ],
    }


def _place(place: Place) -> dict[str, Any]:
    return {
        "place": place.describe(),
        "slots": list(place.slots),
        "network_slot": place.network_slot,
        "new_network_rack": place.new_network_rack,
    }


def next_document(site: Site, layout: str, answer: NextRack, top: int) -> dict[str, Any]:
    """The best ``top`` places for one more rack (or SU), how many more fit, and for each
    limit that blocks places, how many and the place closest to fitting."""
    return {
        "instance": site.name,
        "layout": layout,
        "rack_type": answer.rack_type,
        "racks": answer.racks,
        "places": answer.places,
        "tried": answer.tried,
        "no_room": answer.no_room,
        "ranked": [
            {**_place(c.place), "utilization": round(c.utilization, 4), "tightest": c.tightest}
            for c in answer.ranked[:top]
        ],
        "more": max(len(answer.ranked) - top, 0),
        "blocked": [
            {
                "binding": binding,
                "places": count,
                "closest": {
                    **_place(closest.place),
                    "excess": round(closest.excess, 3),
                    "unit": closest.unit,
                    "share": round(closest.share, 4),
                },
            }
            for binding, count, closest in answer.blocked_by()
        ],
    }


def compare_document(rows: list[Kpis]) -> dict[str, Any]:
    """The compare table's rows, with its CSV's columns (docs/studies.md section 4)."""
    from optimizer.studies.compare import records

    return {"scenarios": records(rows)}
