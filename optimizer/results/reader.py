"""The one reader of layout files: rackopt's NetCDF layouts and study datasets, and CSV
layouts made elsewhere.

A NetCDF file is judged by its headers before any data is read: its format version,
every declared variable's dimensions (:mod:`optimizer.results.schema`), and the size of
every dimension, held against the instance when one is given and against a fixed
bound otherwise, so a small file declaring a huge compressed variable is refused
instead of filling memory. Variables the schema does not declare are never loaded
(readers ignore what they do not know). The loaded values are then checked against
their declared dtypes: text where text belongs, whole numbers (never NaN) where
integers belong, unique labels along every dimension. Any failure is one
:class:`LayoutFileError` (exit code 2), never a traceback.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5netcdf
import numpy as np

from optimizer.errors import InstanceError, did_you_mean
from optimizer.results.schema import (
    FIELDS,
    FLAG,
    READABLE_LAYOUT_FORMATS,
    READABLE_STUDY_FORMATS,
    REAL,
    TEXT,
    Field,
    Group,
)
from optimizer.site.arrays import NO_INDEX, Site
from optimizer.site.placement import Assignment
from optimizer.verify.check import EMPTY

if TYPE_CHECKING:
    import xarray as xr

SCENARIO = "scenario"
MAX_LABELS = 1_000_000
"""Longest dimension a file may declare when no instance bounds it (a campus has tens
of thousands of slots)."""
MAX_VALUES = 50_000_000
"""Most values read from one file (about 400 MB as float64): a study of a hundred
scenarios of a 10,000-slot campus holds about 20 million."""
_FIX = "give a layout written by rackopt solve, or a CSV"


class LayoutFileError(InstanceError):
    """A layout or study file that cannot be read or is not what the schema declares."""

    def __init__(
        self, file: str | Path, field: str, problem: str, fix: str = _FIX, line: int | None = None
    ) -> None:
        super().__init__(str(file), field, problem, fix, line)


@dataclass(frozen=True)
class _Header:
    """What a NetCDF file declares, read without loading any data."""

    sizes: dict[str, int]
    dims: dict[str, tuple[str, ...]]
    attrs: dict[str, object]

    @property
    def study(self) -> bool:
        return SCENARIO in self.sizes and "study_format_version" in self.attrs


def _header_of(f: h5netcdf.File) -> _Header:
    return _Header(
        {name: int(dim.size) for name, dim in f.dimensions.items()},
        {name: tuple(var.dimensions) for name, var in f.variables.items()},
        dict(f.attrs),
    )


def _read_header(path: Path) -> _Header:
    # Any exception of the HDF5 stack here means a file it cannot parse.
    try:
        with h5netcdf.File(path, "r") as f:
            return _header_of(f)
    except Exception as exc:
        raise LayoutFileError(path, "", f"cannot read layout: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_version(path: Path, header: _Header) -> None:
    key = "study_format_version" if header.study else "layout_format_version"
    readable = READABLE_STUDY_FORMATS if header.study else READABLE_LAYOUT_FORMATS
    found = header.attrs.get(key)
    found = found.item() if isinstance(found, np.generic) else found
    if not (type(found) is int and found in readable):
        what = "study" if header.study else "layout"
        formats = " or ".join(str(v) for v in readable)
        raise LayoutFileError(
            path, key, f"not a rackopt {what} of format {formats} (found {found!r})"
        )


def _declared_dims(field: Field, study: bool) -> tuple[str, ...]:
    """A study dataset puts ``scenario`` before every variable's dimensions but the
    index coordinates'."""
    return (SCENARIO, *field.dims) if study and not field.index else field.dims


def _check_structure(path: Path, header: _Header, bounds: Mapping[str, int]) -> list[str]:
    """The variables to load: the declared ones present (a study adds its per-scenario
    ones), after checking their dimensions, their sizes and that no group is partial."""
    present = [name for name in header.dims if name in FIELDS]
    kept = present + [n for n, d in header.dims.items() if header.study and d == (SCENARIO,)]
    for name in present:
        wanted = _declared_dims(FIELDS[name], header.study)
        if header.dims[name] != wanted:
            raise LayoutFileError(
                path,
                name,
                f"has dimensions {header.dims[name]}, the layout format declares {wanted}",
            )
    _check_sizes(path, header, kept, bounds)
    if header.study and not any(FIELDS[n].required and not FIELDS[n].index for n in present):
        return kept  # a study whose scenarios all failed holds no layout variables
    for group in Group:
        members = [f.name for f in FIELDS.values() if f.group is group]
        missing = [name for name in members if name not in header.dims]
        if missing and (group is Group.CORE or len(missing) < len(members)):
            raise LayoutFileError(
                path, missing[0], f"missing ({group} variable of the layout format)"
            )
    return kept


def _check_sizes(path: Path, header: _Header, kept: list[str], bounds: Mapping[str, int]) -> None:
    """Every dimension of the variables to load within its bound, and all of them
    within :data:`MAX_VALUES`, before a byte of data is read."""
    used = {dim for name in kept for dim in header.dims[name]}
    for dim in sorted(used):
        size, most = header.sizes[dim], bounds.get(dim, MAX_LABELS)
        if size > most:
            raise LayoutFileError(
                path,
                dim,
                f"{size:,} entries along {dim!r}, more than the {most:,} "
                + ("the instance has" if dim in bounds else "a layout may hold"),
                "give a layout of this instance" if dim in bounds else _FIX,
            )
    values = sum(math.prod(header.sizes[d] for d in header.dims[n]) for n in kept)
    if values > MAX_VALUES:
        raise LayoutFileError(
            path, "", f"{values:,} values, more than the {MAX_VALUES:,} a dataset may hold"
        )


def _kind(values: np.ndarray) -> str:
    return {"U": "text", "S": "bytes", "O": "text", "b": "booleans"}.get(
        values.dtype.kind, str(values.dtype)
    )


def _typed(path: Path, field: Field, values: np.ndarray) -> np.ndarray:
    """``values`` as the declared dtype, or the reason they cannot be."""
    kind = values.dtype.kind
    if values.size == 0:
        return values.astype(field.dtype)
    if field.dtype == TEXT:
        if kind == "U" or (kind == "O" and all(isinstance(v, str) for v in values.flat)):
            return values.astype(str)
        problem = f"holds {'objects' if kind == 'O' else _kind(values)} where text belongs"
    elif field.dtype == FLAG:
        if kind == "b" or (kind in "iu" and np.isin(values, (0, 1)).all()):
            return values.astype(bool)
        problem = f"holds {_kind(values)} where booleans (0 or 1) belong"
    elif kind not in "iuf":
        problem = f"holds {_kind(values)} where numbers belong"
    elif field.dtype == REAL:
        return values.astype(np.float64)
    elif kind == "f" and not np.isfinite(values).all():
        problem = "holds NaN or infinity where whole numbers belong"
    elif kind == "f" and (values != np.round(values)).any():
        problem = "holds fractions where whole numbers belong"
    else:
        return values.astype(np.int64)
    raise LayoutFileError(path, field.name, problem)


def _check_labels(path: Path, labels: Mapping[str, np.ndarray]) -> None:
    """Every dimension's labels (its index coordinate's values, by dimension) unique."""
    for name, values in labels.items():
        if name not in FIELDS and name != SCENARIO:
            continue
        unique, counts = np.unique(values, return_counts=True)
        if (counts > 1).any():
            twice = unique[counts > 1].tolist()[0]
            raise LayoutFileError(
                path,
                name,
                f"{twice!r} is listed twice (a second entry would hide the first)",
                f"list each {name} once",
            )


def _regular_file(path: str | Path) -> Path:
    """``path``, refused unless it is a regular file (a FIFO or device would block or
    never end)."""
    path = Path(path)
    if not path.is_file():
        problem = "not a regular file" if path.exists() else "layout file not found"
        raise LayoutFileError(path, "", problem, "check the path")
    return path


def _checked(path: Path, header: _Header, bounds: Mapping[str, int]) -> list[str]:
    """The variables to load, once the header's version and structure pass."""
    _check_version(path, header)
    return _check_structure(path, header, bounds)


@dataclass(frozen=True)
class _Values:
    """A layout's declared variables as typed arrays, read with h5netcdf alone."""

    header: _Header
    values: dict[str, np.ndarray]


def _read_values(path: Path, bounds: Mapping[str, int]) -> _Values:
    """The declared variables of a layout, checked as :func:`open_layout` checks them,
    without xarray: ``verify`` and ``next`` need a few arrays, not a Dataset, and
    xarray's import (with pandas, and dask where installed) was most of their start-up
    (issue 14). Strings are decoded as xarray's h5netcdf backend decodes them (variable
    length UTF-8 to text); values stay as stored (no fill values masked). The file is
    opened once: the header is judged before any data is read."""
    try:
        with h5netcdf.File(path, "r", decode_vlen_strings=True) as f:
            header = _header_of(f)
            kept = _checked(path, header, bounds)
            raw = {name: np.asarray(f.variables[name][...]) for name in kept}
    except LayoutFileError:
        raise
    except Exception as exc:  # not HDF5, a corrupted chunk, a broken filter, memory
        raise LayoutFileError(path, "", f"cannot read layout: {_one_line(exc)}") from None
    values = {n: _typed(path, FIELDS[n], v) for n, v in raw.items() if n in FIELDS}
    _check_labels(path, {n: v for n, v in values.items() if header.dims[n] == (n,)})
    return _Values(header, values)


def _load(path: str | Path, bounds: Mapping[str, int]) -> xr.Dataset:
    import xarray as xr  # only here: see _read_values

    path = _regular_file(path)
    header = _read_header(path)
    kept = _checked(path, header, bounds)
    try:
        # Fill values stay as stored (-1, NaN): the reader's "none" is the writer's, in
        # format 1 (bare -1) and format 2 (declared _FillValue) alike.
        with xr.open_dataset(
            path,
            engine="h5netcdf",
            drop_variables=[name for name in header.dims if name not in kept],
            mask_and_scale=False,
            decode_times=False,
            decode_timedelta=False,
        ) as ds:
            ds = ds.load()
    except Exception as exc:  # a corrupted chunk, a broken filter, memory
        raise LayoutFileError(path, "", f"cannot read layout: {_one_line(exc)}") from None
    for var in ds.variables.values():
        if "_FillValue" in var.attrs:  # back where xarray keeps it, so a rewrite works
            var.encoding["_FillValue"] = var.attrs.pop("_FillValue")
    typed = {
        name: _typed(path, FIELDS[name], ds[name].values) for name in ds.variables if name in FIELDS
    }
    coords = {n: (ds[n].dims, v, ds[n].attrs) for n, v in typed.items() if n in ds.coords}
    data = {n: (ds[n].dims, v, ds[n].attrs) for n, v in typed.items() if n not in ds.coords}
    ds = ds.assign_coords(coords).assign(data)
    _check_labels(path, {name: ds[name].values for name in ds.dims if name in ds.coords})
    return ds


def open_layout(path: str | Path) -> xr.Dataset:
    """A rackopt layout or study dataset, checked against the layout schema and loaded;
    :class:`LayoutFileError` for anything else."""
    return _load(path, {})


def _type_indices(site: Site, names: list[str], file: str, lines: list[int | None]) -> np.ndarray:
    known = {t.name: i for i, t in enumerate(site.rack_types)}
    out = np.full(len(names), EMPTY, dtype=np.int64)
    for i, (name, line) in enumerate(zip(names, lines, strict=True)):
        if not name:
            continue
        if name not in known:
            raise LayoutFileError(
                file, "rack_type", f"unknown rack type {name!r}", did_you_mean(name, known), line
            )
        out[i] = known[name]
    return out


def _slot_indices(
    site: Site, slots: list[str], file: str, lines: list[int | None], field: str
) -> np.ndarray:
    index = {s: i for i, s in enumerate(site.slot_ids)}
    out = []
    for slot, line in zip(slots, lines, strict=True):
        if slot not in index:
            raise LayoutFileError(
                file, field, f"unknown slot {slot!r}", did_you_mean(slot, index), line
            )
        out.append(index[slot])
    return np.array(out, dtype=np.int64)


def _netcdf_assignment(site: Site, path: Path) -> Assignment:
    file = str(path)
    # A layout of this instance has at most its slots, and fewer SUs than slots.
    read = _read_values(path, {"slot": site.n_slots, "su_id": site.n_slots})
    if read.header.attrs.get("study_format_version") is not None:
        raise LayoutFileError(
            path, "", "a study dataset holds several layouts", "give one layout file"
        )
    ds = read.values
    slots = [str(s) for s in ds["slot"]]
    none = [None] * len(slots)
    where = _slot_indices(site, slots, file, none, "slot")
    placement = np.full(site.n_slots, EMPTY, dtype=np.int64)
    placement[where] = _type_indices(site, [str(v) for v in ds["rack_type"]], file, none)
    su = np.full(site.n_slots, NO_INDEX, dtype=np.int64)
    hubs: list[int] = []
    if "su" in ds:
        n_su = read.header.sizes["su_id"]
        if not np.array_equal(ds["su_id"], np.arange(n_su)):
            raise LayoutFileError(path, "su_id", f"SU ids must be 0..{n_su - 1} in order")
        ids = ds["su"]
        outside = ids[(ids < NO_INDEX) | (ids >= n_su)]
        if outside.size:
            raise LayoutFileError(
                path,
                "su",
                f"SU {int(outside[0])} is not in su_id (the layout lists {n_su} SUs)",
                "give each rack an SU id from su_id, or -1 for none",
            )
        su[where] = ids
        names = [str(s) for s in ds["su_network_slot"]]
        hubs = _slot_indices(site, names, file, [None] * len(names), "su_network_slot").tolist()
    phases: list[str] = []
    if "install_phase" in ds and (ds["install_phase"] != "").any():
        phases = [""] * site.n_slots
        for s, name in zip(where, ds["install_phase"], strict=True):
            phases[s] = str(name)
    return Assignment(placement, su, hubs, phases)


def _csv_text(path: Path) -> str:
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LayoutFileError(file, "", f"cannot read layout: {exc}", "check the path") from None
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LayoutFileError(
            file,
            "",
            f"byte 0x{raw[exc.start]:02x} is not UTF-8",
            "save the layout as CSV UTF-8",
            line,
        ) from None


def _csv_assignment(site: Site, path: Path) -> Assignment:
    """A layout made elsewhere: ``slot,rack_type`` lines, with optional ``su`` (an SU label)
    and ``network_slot`` (the slot of that SU's network rack) for a fabric, and
    ``install_phase`` for a plan of a phased build-out."""
    file = str(path)
    reader = csv.DictReader(io.StringIO(_csv_text(path)))
    try:
        header = reader.fieldnames or []
        rows = [(line, row) for line, row in enumerate(reader, start=2) if any(row.values())]
    except csv.Error as exc:  # a cell over the csv module's limit, a NUL byte
        raise LayoutFileError(
            file,
            "",
            f"not a readable CSV: {exc}",
            "save the layout as plain CSV",
            reader.line_num + 1,  # the lines read before the bad one
        ) from None
    if "slot" not in header or "rack_type" not in header:
        raise LayoutFileError(
            file,
            "header",
            "a layout CSV needs columns slot,rack_type",
            "write a header line `slot,rack_type` (optionally su,network_slot)",
            1,
        )
    lines = [line for line, _ in rows]
    slots = _slot_indices(site, [(r["slot"] or "").strip() for _, r in rows], file, lines, "slot")
    if len(set(slots.tolist())) != len(slots):
        raise LayoutFileError(file, "slot", "a slot is listed twice", "list each slot once")
    kinds = _type_indices(site, [(r["rack_type"] or "").strip() for _, r in rows], file, lines)
    placement = np.full(site.n_slots, EMPTY, dtype=np.int64)
    placement[slots] = kinds
    su = np.full(site.n_slots, NO_INDEX, dtype=np.int64)
    hubs: list[int] = []
    labels: dict[str, int] = {}
    if "su" in header:
        for (line, row), slot in zip(rows, slots, strict=True):
            label = (row.get("su") or "").strip()
            if not label:
                continue
            hub_name = (row.get("network_slot") or "").strip()
            hub = _slot_indices(site, [hub_name], file, [line], "network_slot")[0]
            if label not in labels:
                labels[label] = len(hubs)
                hubs.append(int(hub))
            elif hubs[labels[label]] != hub:
                raise LayoutFileError(
                    file,
                    "network_slot",
                    f"SU {label!r} names two network racks",
                    "give every rack of an SU the same network_slot",
                    line,
                )
            su[slot] = labels[label]
    phases: list[str] = []
    if "install_phase" in header:
        phases = [""] * site.n_slots
        for (_, row), slot in zip(rows, slots, strict=True):
            phases[slot] = (row.get("install_phase") or "").strip()
    return Assignment(placement, su, hubs, phases)


def read_layout(site: Site, path: str | Path) -> Assignment:
    """The placement of a layout to check (``verify``, ``next``): a rackopt NetCDF
    layout, or a CSV made elsewhere (by its ``.csv`` suffix)."""
    path = _regular_file(path)
    if path.suffix.lower() == ".csv":
        return _csv_assignment(site, path)
    return _netcdf_assignment(site, path)
