"""Malformed layout files are refused with exit code 2, whatever their shape: verify
cannot be fooled by a NetCDF layout the CSV path would refuse, and no file makes the
reader fill memory or crash."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pytest
import xarray as xr
from helpers import TUTORIAL, run, solved_tutorial

from optimizer.results.reader import MAX_VALUES, LayoutFileError, open_layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return solved_tutorial(tmp_path_factory.mktemp("layout"))


def edited(layout: Path, folder: Path, change: Callable[[xr.Dataset], xr.Dataset]) -> Path:
    """The tutorial layout with ``change`` applied, written as another NetCDF file."""
    with xr.open_dataset(layout) as ds:
        ds = change(ds.load())
    out = folder / "edited.nc"
    ds.to_netcdf(out, engine="h5netcdf")
    return out


def refused(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_the_solved_layout_passes(layout):
    result = run("verify", TUTORIAL, layout)
    assert result.exit_code == 0, result.output
    assert "4 racks pass" in result.output


def _duplicate_slot(ds: xr.Dataset) -> xr.Dataset:
    # The issue's case: five racks (3 GB300 + 2 B300) where the last entry for H1-L-01
    # says empty; a reader keeping the last entry would see 4 racks and pass.
    types = ["gb300-nvl72"] * 3 + [""] + ["dgx-b300-rack"] * 2 + ["", ""]
    slots = ds["slot"].values.copy()
    slots[3] = "H1-L-01"
    return ds.assign(rack_type=("slot", np.array(types))).assign_coords(slot=slots)


def test_a_slot_listed_twice_is_refused_as_in_a_csv(layout, tmp_path):
    result = run("verify", TUTORIAL, edited(layout, tmp_path, _duplicate_slot))
    refused(result, "edited.nc: slot: 'H1-L-01' is listed twice")
    csv = tmp_path / "twice.csv"
    csv.write_text("slot,rack_type\nH1-L-01,gb300-nvl72\nH1-L-01,\n", encoding="utf-8")
    refused(run("verify", TUTORIAL, csv), "twice.csv: slot: a slot is listed twice")


@pytest.mark.parametrize("su", [99, -7])
def test_an_su_outside_the_declared_list_is_refused(layout, tmp_path, su):
    def change(ds: xr.Dataset) -> xr.Dataset:
        values = ds["su"].values.copy()
        values[0] = su
        return ds.assign(su=ds["su"].copy(data=values))  # keeps the stored int64 and fill

    result = run("verify", TUTORIAL, edited(layout, tmp_path, change))
    refused(result, f"su: SU {su} is not in su_id (the layout lists 0 SUs)")


def test_an_su_id_list_out_of_order_is_refused(layout, tmp_path):
    def change(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.drop_dims("su_id")
        return ds.assign(
            su_network_slot=("su_id", ["H1-A-01", "H1-A-02"]),
            su_rack_type=("su_id", ["gb300-nvl72"] * 2),
        ).assign_coords(su_id=[1, 0])

    refused(run("verify", TUTORIAL, edited(layout, tmp_path, change)), "su_id: SU ids must be 0..1")


@pytest.mark.parametrize(
    ("name", "values", "fragment"),
    [
        ("su", [0.0, np.nan, -1, -1, -1, -1, -1, -1], "su: holds NaN or infinity where whole"),
        ("su", [0.5] + [-1.0] * 7, "su: holds fractions where whole numbers belong"),
        ("su", ["0"] * 8, "su: holds text where numbers belong"),
        ("x_m", ["1.0"] * 8, "x_m: holds text where numbers belong"),
        ("rack_type", list(range(8)), "rack_type: holds int64 where text belongs"),
        ("installed", [2] * 8, "installed: holds int64 where booleans (0 or 1) belong"),
    ],
)
def test_a_variable_of_the_wrong_dtype_is_refused(layout, tmp_path, name, values, fragment):
    def change(ds: xr.Dataset) -> xr.Dataset:
        return ds.assign({name: ("slot", np.array(values))})

    refused(run("verify", TUTORIAL, edited(layout, tmp_path, change)), fragment)


def test_a_matrix_of_strings_where_numbers_belong_is_refused(layout, tmp_path):
    def change(ds: xr.Dataset) -> xr.Dataset:
        return ds.assign(device_load_kw=(("device", "x"), np.full((2, 3), "kW")))

    refused(
        run("verify", TUTORIAL, edited(layout, tmp_path, change)),
        "device_load_kw: has dimensions ('device', 'x'), the layout format declares ('device',)",
    )


def test_a_missing_variable_or_half_a_group_is_refused(layout, tmp_path):
    def core(ds: xr.Dataset) -> xr.Dataset:
        return ds.drop_vars("device_load_kw")

    refused(
        run("verify", TUTORIAL, edited(layout, tmp_path, core)),
        "device_load_kw: missing (core variable of the layout format)",
    )

    def half(ds: xr.Dataset) -> xr.Dataset:
        return ds.drop_vars("su_network_slot")

    refused(
        run("verify", TUTORIAL, edited(layout, tmp_path, half)),
        "su_network_slot: missing (fabric variable of the layout format)",
    )


def test_a_layout_without_the_thermal_variables_is_read(layout, tmp_path):
    # Layouts written before rackopt 0.2 have none; the format allows them.
    def old(ds: xr.Dataset) -> xr.Dataset:
        thermal = ["inlet_temp_c", "inlet_limit_c", "type_inlet_limit_c", "type_water_max_c"]
        thermal += ["cdu_supply_temp_c", "cdu_cooling_kw", "air_zone_supply_temp_c"]
        return ds.drop_vars([*thermal, "air_zone_cooling_kw", "pue"])

    result = run("verify", TUTORIAL, edited(layout, tmp_path, old))
    assert result.exit_code == 0, result.output


def test_a_corrupted_chunk_is_refused(layout, tmp_path):
    with xr.open_dataset(layout) as ds:
        ds = ds.load()
    out = tmp_path / "corrupt.nc"
    ds.to_netcdf(out, engine="h5netcdf", encoding={"su": {"zlib": True, "chunksizes": (8,)}})
    with h5py.File(out, "r") as f:
        chunk = f["su"].id.get_chunk_info(0)
    raw = bytearray(out.read_bytes())
    for i in range(chunk.byte_offset, chunk.byte_offset + chunk.size):
        raw[i] ^= 0x5A
    out.write_bytes(bytes(raw))
    refused(run("verify", TUTORIAL, out), "corrupt.nc: cannot read layout:")


def test_a_file_that_is_not_netcdf_is_refused(tmp_path):
    out = tmp_path / "junk.nc"
    out.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    refused(run("verify", TUTORIAL, out), "junk.nc: cannot read layout:")


def _bomb(path: Path, dims: dict[str, int], variable: str, attrs: dict[str, int]) -> Path:
    """A small file declaring ``variable`` over ``dims``, compressed and never written:
    loading it would allocate every value."""
    with h5netcdf.File(path, "w") as f:
        f.attrs.update(attrs)
        f.dimensions.update(dims)
        shape = tuple(dims.values())
        chunks = tuple(min(n, 4096) for n in shape)
        f.create_variable(
            variable, tuple(dims), "f8", chunks=chunks, compression="gzip", fillvalue=1.0
        )
    assert path.stat().st_size < 100_000
    return path


def test_a_huge_slot_dimension_is_refused_against_the_instance_before_loading(tmp_path):
    bomb = _bomb(tmp_path / "b.nc", {"slot": 40000 * 40000}, "x_m", {"layout_format_version": 1})
    refused(
        run("verify", TUTORIAL, bomb),
        "slot: 1,600,000,000 entries along 'slot', more than the 8 the instance has",
    )
    refused(run("compare", bomb), "more than the 1,000,000 a layout may hold")


def test_a_huge_declared_variable_of_the_wrong_shape_is_refused_before_loading(tmp_path):
    bomb = _bomb(
        tmp_path / "b.nc", {"slot": 40000, "x": 40000}, "x_m", {"layout_format_version": 1}
    )
    refused(run("verify", TUTORIAL, bomb), "x_m: has dimensions ('slot', 'x')")


def test_a_huge_study_variable_is_refused_before_loading(tmp_path):
    bomb = _bomb(
        tmp_path / "s.nc",
        {"scenario": 40000, "slot": 40000},
        "x_m",
        {"study_format_version": 1},
    )
    with pytest.raises(LayoutFileError, match=f"more than the {MAX_VALUES:,}"):
        open_layout(bomb)


def test_a_huge_variable_the_format_does_not_declare_is_never_read(layout, tmp_path):
    # Readers ignore variables they do not know; this one would take 12 GB to load.
    out = tmp_path / "extra.nc"
    out.write_bytes(layout.read_bytes())
    with h5netcdf.File(out, "a") as f:
        f.dimensions.update({"a": 40000, "b": 40000})
        f.create_variable("bomb", ("a", "b"), "f8", chunks=(4000, 4000), compression="gzip")
    result = run("verify", TUTORIAL, out)
    assert result.exit_code == 0, result.output
    assert "bomb" not in open_layout(out)


def _failed_study(path: Path, names: list[str]) -> Path:
    """A study dataset whose scenarios all failed: no layout variables at all."""
    xr.Dataset(
        {"status": ("scenario", ["failed"] * len(names)), "message": ("scenario", names)},
        coords={"scenario": names},
        attrs={"study_format_version": 1},
    ).to_netcdf(path, engine="h5netcdf")
    return path


def test_a_study_dataset_is_not_a_layout_to_verify(tmp_path):
    study = _failed_study(tmp_path / "study.nc", ["a"])
    refused(run("verify", TUTORIAL, study), "a study dataset holds several layouts")
    assert open_layout(study)["status"].values.tolist() == ["failed"]


def test_a_study_naming_a_scenario_twice_is_refused(tmp_path):
    study = _failed_study(tmp_path / "study.nc", ["a", "a"])
    refused(run("compare", study), "study.nc: scenario: 'a' is listed twice")


def test_a_layout_of_another_format_is_refused(layout, tmp_path):
    def newer(ds: xr.Dataset) -> xr.Dataset:
        return ds.assign_attrs(layout_format_version=3)

    refused(
        run("verify", TUTORIAL, edited(layout, tmp_path, newer)),
        "layout_format_version: not a rackopt layout of format 1 or 2 (found 3)",
    )


def test_a_fifo_is_not_read(tmp_path):
    fifo = tmp_path / "layout.nc"
    os.mkfifo(fifo)
    refused(run("verify", TUTORIAL, fifo), "layout.nc: not a regular file")
    refused(run("verify", TUTORIAL, tmp_path / "x.csv"), "x.csv: layout file not found")


def test_a_csv_layout_with_bytes_that_are_not_utf8_is_refused_with_its_line(tmp_path):
    csv = tmp_path / "latin1.csv"
    csv.write_bytes(
        "slot,rack_type\nH1-L-01,gb300-nvl72\nH1-A-01,dgx-b300-räck\n".encode("latin-1")
    )
    refused(
        run("verify", TUTORIAL, csv),
        "latin1.csv:3: byte 0xe4 is not UTF-8 (fix: save the layout as CSV UTF-8)",
    )


def test_a_csv_layout_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path):
    csv = tmp_path / "excel.csv"
    csv.write_bytes("\ufeffslot,rack_type\nH1-L-01,gb300-nvl72\n".encode())
    result = run("verify", TUTORIAL, csv)
    assert result.exit_code == 0, result.output
    assert "1 racks pass" in result.output


def test_a_csv_layout_with_a_giant_cell_is_refused_with_its_line(tmp_path):
    csv = tmp_path / "giant.csv"
    csv.write_text("slot,rack_type\nH1-L-01,gb300-nvl72\nH1-A-01," + "x" * 200_000 + "\n")
    refused(run("verify", TUTORIAL, csv), "giant.csv:3: not a readable CSV: field larger than")
