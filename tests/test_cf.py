"""Layouts and study datasets are CF-1.13 files: the IOOS compliance checker finds no
failing check that applies, cf-xarray finds the floor axes, and the CF storage (int8
flags, integer _FillValue) reads back as the reader's booleans and -1."""

from __future__ import annotations

from pathlib import Path

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import h5netcdf
import numpy as np
import pytest
import xarray as xr
from compliance_checker.runner import CheckSuite
from helpers import run, write_study

from optimizer.results.reader import open_layout, read_layout
from optimizer.results.schema import CONVENTIONS, FIELDS
from optimizer.solve.options import SolveOptions
from optimizer.studies.batch import run_batch
from optimizer.studies.study import load_study

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "instances" / "tutorial.yaml"
CF_SUITE = "cf:1.11"
"""The newest CF suite of compliance-checker 6.1 (the file declares CF-1.13, which adds
nothing a layout uses over 1.11)."""
NOT_APPLICABLE = ('Conventions global attribute does not contain "CF-1.11"',)
"""The 1.11 suite's version-string check asks for its own version, not 1.13."""


def cf_failures(path: Path) -> list[str]:
    """Every message of a check the file fails under :data:`CF_SUITE`, less the ones that
    do not apply; an exception inside the checker counts as a failure unless it is the
    checker's own bug on text coordinates (it subtracts strings to test monotonicity)."""
    suite = CheckSuite()
    suite.load_all_available_checkers()
    ds = suite.load_dataset(str(path))
    results = suite.run_all(ds, [CF_SUITE], skip_checks=[])
    groups, errors = results[CF_SUITE]
    failures = [
        msg
        for result in groups
        if result.value is not None and _failed(result.value)
        for msg in (result.msgs or [result.name])
        if not msg.endswith(NOT_APPLICABLE)
    ]
    for check, (exc, _tb) in errors.items():
        if "strict_monotonicity" not in check or "'str' and 'str'" not in str(exc):
            failures.append(f"{check}: {exc}")
    return failures


def _failed(value: object) -> bool:
    if isinstance(value, tuple):
        return value[0] < value[1]
    return not value


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cf") / "tutorial.nc"
    result = run("solve", TUTORIAL, "-o", out, "-q", "--gap", 0)
    assert result.exit_code == 0, result.output
    return out


def test_a_layout_passes_every_cf_check_that_applies(layout):
    assert cf_failures(layout) == []
    with xr.open_dataset(layout) as ds:
        assert ds.attrs["Conventions"] == CONVENTIONS == "CF-1.13"
        assert "rackopt" in ds.attrs["history"] and "solve tutorial" in ds.attrs["history"]
        assert ds.attrs["layout_format_version"] == 2


def test_cf_xarray_finds_the_floor_axes(layout):
    with xr.open_dataset(layout) as ds:
        assert ds.cf.axes == {"X": ["x_m"], "Y": ["y_m"]}
        assert ds.cf["X"].attrs["units"] == "m"
        assert ds.cf.standard_names["air_temperature"] == ["air_zone_supply_temp_c", "inlet_temp_c"]


def test_every_variable_has_a_long_name_and_numbers_their_units(layout):
    with xr.open_dataset(layout, mask_and_scale=False) as ds:
        for name, field in FIELDS.items():
            attrs = ds[name].attrs
            assert attrs["long_name"] == field.long_name, name
            if field.dtype in ("float64",) and field.unit:
                assert attrs["units"], name
        assert ds["inlet_temp_c"].attrs["units_metadata"] == "temperature: on_scale"
        # booleans are int8 flags, not xarray's private dtype attribute
        assert ds["installed"].dtype == np.int8 and "dtype" not in ds["installed"].attrs
        assert ds["installed"].attrs["flag_meanings"] == "new installed"
        assert ds["slot_liquid"].attrs["flag_values"].tolist() == [0, 1]
        # "no SU" is the declared fill value, not a bare -1
        assert ds["su"].attrs["_FillValue"] == -1
        assert "_FillValue" not in ds["rack_count"].attrs


def test_the_reader_turns_the_cf_storage_back(layout):
    ds = open_layout(layout)
    assert ds["installed"].dtype == bool and ds["slot_liquid"].dtype == bool
    assert ds["su"].dtype == np.int64 and set(ds["su"].values.tolist()) == {-1}
    assert int(ds["slot_liquid"].sum()) == 4  # the tutorial's liquid row L
    # a plain xarray user sees "no SU" as missing
    with xr.open_dataset(layout) as plain:
        assert bool(plain["su"].isnull().all())


def test_a_format_1_layout_still_reads(layout, tmp_path):
    """A rackopt 0.2 file: bools with xarray's dtype attribute, bare -1, version 1."""
    old = tmp_path / "old.nc"
    with xr.open_dataset(layout) as ds:
        ds = ds.load()
    ds["su"] = ds["su"].fillna(-1).astype(np.int64)
    ds["su"].encoding = {}
    ds["installed"] = ds["installed"].astype(bool)
    ds = ds.assign_coords(slot_liquid=ds["slot_liquid"].astype(bool))
    ds["installed"].encoding = ds["slot_liquid"].encoding = {}
    ds.attrs = {"layout_format_version": 1}
    ds.to_netcdf(old, engine="h5netcdf")
    with h5netcdf.File(old, "r") as raw:
        assert raw["su"][...].tolist() == [-1] * 8 and "_FillValue" not in raw["su"].attrs
        assert raw["installed"].attrs["dtype"] == "bool"  # xarray's own bool storage
    from optimizer.instance.loader import load_instance
    from optimizer.site.build import build_site

    site = build_site(load_instance(TUTORIAL))
    assert (read_layout(site, old).placement == read_layout(site, layout).placement).all()
    assert run("verify", TUTORIAL, old).exit_code == 0


def test_a_study_dataset_passes_every_cf_check_that_applies(tmp_path):
    # A sweep (dotted key) and a scenario with one more slot: the union leaves fills.
    path = write_study(
        tmp_path,
        {
            "overrides": {"longer-row": {"halls.H1.rows.L.slots": 5}},
            "scenarios": {"ref": [], "longer": ["longer-row"]},
            "sweeps": {"cooling.air_zones.Z1.crah_kw": [100, 150]},
        },
    )
    output = tmp_path / "study.nc"
    run_batch(load_study(path), output, SolveOptions(gap=0.0, threads=1, seed=0), workers=0)
    assert cf_failures(output) == []
    with xr.open_dataset(output) as ds:
        assert ds.attrs["Conventions"] == "CF-1.13" and ds.attrs["study_format_version"] == 2
        sweep = ds["sweep_cooling_air_zones_Z1_crah_kw"]
        assert sweep.attrs["sweep_key"] == "cooling.air_zones.Z1.crah_kw"
        assert sweep.values.tolist() == [100, 150, 100, 150]
        # position of H1-L-05 in a scenario without it: missing, not a bare -1
        assert np.isnan(ds["position"].sel(scenario="ref,crah_kw=100", slot="H1-L-05").item())
    back = open_layout(output)
    assert back["position"].sel(scenario="ref,crah_kw=100", slot="H1-L-05").item() == -1
    assert back["slot_liquid"].dtype == bool
