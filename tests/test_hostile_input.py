"""Issue 12's hostile inputs outside the one-case-one-instance harness of
:mod:`test_instance_errors`: command-line values, study overrides, special files,
include fan-out, paths that leave the instance's tree, and the valid input that used
to be refused (merge keys, spreadsheet CSV with a byte-order mark).

Every refusal is exit code 2 with one line and no traceback; every acceptance is
checked against the values the file meant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from helpers import base_instance, write_instance

from optimizer.cli import main
from optimizer.cli.options import MAX_THREADS
from optimizer.errors import InstanceError
from optimizer.instance.loader import MAX_INCLUDED_FILES, load_instance
from optimizer.site.build import build_site
from optimizer.studies.study import load_study

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "instances" / "tutorial.yaml"
SECRET = "root:x:0:0:root:/root:/bin/bash"


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result, *fragments: str) -> str:
    """The single ``error:`` line of a refused command (exit code 2)."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    for fragment in fragments:
        assert fragment in text, text
    return lines[0]


def usage_error(result, option: str, fragment: str) -> None:
    """click's refusal of an option value: exit code 2, one ``Error:`` line naming it."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert option in errors[0] and fragment in errors[0], result.output


def _run_cli_in_subprocess(*args: object) -> subprocess.CompletedProcess:
    """The CLI in its own process, bounded in time: a blocking read must fail the test,
    not hang the suite."""
    code = "from optimizer.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.PIPE,
    )


# ---------------------------------------------------------------- command-line values


@pytest.mark.parametrize(
    ("value", "refusal"),
    [("nan", "not a finite"), ("NaN", "not a finite"), ("inf", "not a finite"), ("-inf", "x>0")],
)
def test_time_limit_must_be_finite(value, refusal, tmp_path):
    result = run("solve", TUTORIAL, "-o", tmp_path / "x.nc", "--time-limit", value)
    usage_error(result, "--time-limit", refusal)
    assert not (tmp_path / "x.nc").exists()


def test_gap_must_be_finite(tmp_path):
    usage_error(run("explain", TUTORIAL, "--gap", "nan"), "--gap", "is not a finite number")


@pytest.mark.parametrize("value", [str(2**70), str(2**31), "-1"])
def test_seed_within_what_highs_accepts(value, tmp_path):
    result = run("solve", TUTORIAL, "-o", tmp_path / "x.nc", "--seed", value)
    usage_error(result, "--seed", "0<=x<=2147483647")


def test_threads_bounded_by_the_machine(tmp_path):
    result = run("solve", TUTORIAL, "-o", tmp_path / "x.nc", "--threads", "100000")
    usage_error(result, "--threads", f"1<=x<={MAX_THREADS}")


def test_largest_accepted_values_solve(tmp_path):
    """The bounds refuse only what HiGHS cannot take: the top seed and every CPU solve.
    In its own process: HiGHS keeps one thread pool per process, sized by the first
    solve, and later solves in the same process must use the same count."""
    out = tmp_path / "x.nc"
    done = _run_cli_in_subprocess(
        "solve", TUTORIAL, "-o", out, "--seed", 2**31 - 1, "--threads", MAX_THREADS, "-q"
    )
    assert done.returncode == 0, done.stderr
    assert out.exists()


# ---------------------------------------------------------------- studies


def _study(folder: Path, body: dict, base: str = "tutorial.yaml") -> Path:
    shutil.copyfile(TUTORIAL, folder / "tutorial.yaml")
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"format_version": 1, "base": base, **body}), "utf-8")
    return path


@pytest.mark.parametrize("key", ["include", "include.0"])
def test_study_override_of_include_is_refused(key, tmp_path):
    (tmp_path / "extra.yaml").write_text("description: from the include\n", "utf-8")
    data = yaml.safe_load(TUTORIAL.read_text("utf-8"))
    data["include"] = ["extra.yaml"]
    (tmp_path / "with-include.yaml").write_text(yaml.safe_dump(data), "utf-8")
    study = _study(
        tmp_path,
        {"overrides": {"other": {key: ["tutorial.yaml"]}}, "scenarios": {"s": ["other"]}},
        base="with-include.yaml",
    )
    result = run("batch", study, "-o", tmp_path / "s.nc")
    one_error_line(
        result, f"{study}:", "overrides.other.", "'include' cannot be overridden", "(fix: "
    )


def test_study_base_outside_its_folder_is_refused(tmp_path):
    inner = tmp_path / "studies"
    inner.mkdir()
    (tmp_path / "secret.yaml").write_text(SECRET + "\n", "utf-8")
    path = inner / "study.yaml"
    path.write_text("format_version: 1\nbase: ../secret.yaml\n", "utf-8")
    line = one_error_line(run("batch", path, "-o", tmp_path / "s.nc"), "base: ", "lies outside")
    assert SECRET not in line
    with pytest.raises(InstanceError, match="mapping at top level"):  # allowed: it is read
        load_study(path, allow_paths_outside=True)


def test_study_root_widens_the_tree_to_a_folder_above(tmp_path):
    """The shipped studies sit beside instances/ and say ``root: ..``."""
    (tmp_path / "instances").mkdir()
    (tmp_path / "studies").mkdir()
    shutil.copyfile(TUTORIAL, tmp_path / "instances" / "tutorial.yaml")
    path = tmp_path / "studies" / "study.yaml"
    text = "format_version: 1\nbase: ../instances/tutorial.yaml\n"
    path.write_text(text, "utf-8")
    with pytest.raises(InstanceError, match="lies outside"):
        load_study(path)
    path.write_text(text + "root: ..\n", "utf-8")
    assert load_study(path).scenarios[0].sha256 == load_instance(TUTORIAL).sha256
    for root in ("../studies/..", "/", "../studies/sub"):
        path.write_text(text + f"root: {root}\n", "utf-8")
        if root == "../studies/..":
            assert load_study(path).scenarios
        else:
            with pytest.raises(InstanceError, match=r"root: .*not a folder that holds"):
                load_study(path)


def test_shipped_studies_load_within_their_root():
    for name in ("gb300-hall-study.yaml", "air-hall-study.yaml"):
        assert load_study(ROOT / "studies" / name).scenarios


# ---------------------------------------------------------------- special files


@pytest.mark.parametrize("kind", ["fifo", "stdin", "zero"])
def test_special_files_are_refused_without_blocking(kind, tmp_path):
    data = base_instance()
    if kind == "fifo":
        os.mkfifo(tmp_path / "slots.csv")
        data["halls"]["H1"]["slots_csv"] = "slots.csv"
    else:
        data["halls"]["H1"]["slots_csv"] = f"/dev/{kind}"
    path = write_instance(tmp_path, data)
    done = _run_cli_in_subprocess("solve", path, "-o", tmp_path / "x.nc", "--allow-paths-outside")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "halls.H1.slots_csv" in done.stderr and "is not a regular file" in done.stderr


def test_instance_given_as_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "instance.yaml")
    done = _run_cli_in_subprocess("solve", tmp_path / "instance.yaml", "-o", tmp_path / "x.nc")
    assert done.returncode == 2, done.stderr
    assert "is not a regular file" in done.stderr


# ---------------------------------------------------------------- limits


def test_includes_fanning_out_stop_at_the_file_limit(tmp_path):
    """Ten files each including ten more, six deep: a million reads unless bounded."""
    for level in range(6):
        for i in range(10):
            below = [f"l{level + 1}-{j}.yaml" for j in range(10)] if level < 5 else []
            text = yaml.safe_dump({"include": below, "description": f"l{level}-{i}"})
            (tmp_path / f"l{level}-{i}.yaml").write_text(text, "utf-8")
    data = base_instance()
    data["include"] = [f"l0-{i}.yaml" for i in range(10)]
    path = write_instance(tmp_path, data)
    one_error_line(
        run("solve", path, "-o", tmp_path / "x.nc"),
        "include.",
        f"includes more than {MAX_INCLUDED_FILES} files in all",
    )


def test_huge_declared_netcdf_matrix_is_refused_before_reading(tmp_path):
    """A tiny compressed file may declare a matrix far larger than the facility."""
    n = 5000
    with h5netcdf.File(tmp_path / "d.nc", "w") as f:
        f.dimensions = {"slot": n, "source_slot": n}
        for dim in ("slot", "source_slot"):
            f.create_variable(dim, (dim,), data=np.array([f"S{i}" for i in range(n)], dtype="S5"))
        f.create_variable(
            "recirculation_c_per_kw",
            ("slot", "source_slot"),
            float,
            chunks=(500, 500),
            compression="gzip",
        )
    assert (tmp_path / "d.nc").stat().st_size < 1_000_000
    data = base_instance()
    data["thermal"] = {"matrix_file": "d.nc"}
    path = write_instance(tmp_path, data)
    one_error_line(
        run("solve", path, "-o", tmp_path / "x.nc"),
        "thermal.matrix_file",
        f"is {n} x {n} but the facility has 4 slots",
    )


# ---------------------------------------------------------------- paths


def test_paths_outside_are_read_only_when_allowed(tmp_path):
    """The same instance loads with --allow-paths-outside, and reads the outside table."""
    inner = tmp_path / "inst"
    inner.mkdir()
    (tmp_path / "slots.csv").write_text("id,feed_a,air_zone\nT1,PDU-A1,Z1\n", "utf-8")
    data = base_instance()
    data["halls"]["H1"]["slots_csv"] = "../slots.csv"
    path = write_instance(inner, data)
    one_error_line(run("explain", path), "halls.H1.slots_csv", "lies outside")
    allowed = run("explain", path, "--allow-paths-outside")
    assert allowed.exit_code == 0, allowed.output
    site = build_site(load_instance(path, allow_paths_outside=True))
    assert site.slot_ids[-1] == "T1"


def test_symlink_inside_the_tree_to_a_file_inside_is_fine(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "slots.csv").write_text("id,feed_a,air_zone\nT1,PDU-A1,Z1\n", "utf-8")
    (tmp_path / "slots.csv").symlink_to(tmp_path / "tables" / "slots.csv")
    data = base_instance()
    data["halls"]["H1"]["slots_csv"] = "slots.csv"
    assert build_site(load_instance(write_instance(tmp_path, data))).slot_ids[-1] == "T1"


# ---------------------------------------------------------------- valid input now read


def test_merge_key_reads_like_the_written_out_mapping(tmp_path):
    plain = load_instance(TUTORIAL).instance
    text = TUTORIAL.read_text("utf-8")
    text = text.replace(
        "    UPS-A: {kind: ups, rating_kw: 500}",
        "    UPS-A: &ups {kind: ups, rating_kw: 500}",
    ).replace("    UPS-B: {kind: ups, rating_kw: 500}", "    UPS-B: {<<: *ups}")
    text = text.replace(  # own keys win over merged ones; of merged ones the first wins
        "    Z1: {crah_kw: 100, units: 3, redundant_units: 1}",
        "    Z1:\n      <<: [{units: 3, redundant_units: 1}, {crah_kw: 1, units: 9}]\n"
        "      crah_kw: 100\n",
    )
    merged = load_instance(write_instance(tmp_path, text)).instance
    assert merged.power == plain.power
    assert merged.cooling.air_zones == plain.cooling.air_zones
    assert merged.cooling.cdus == plain.cooling.cdus


def test_merge_key_errors_point_at_the_merged_value(tmp_path):
    """A bad value merged in is reported at the line that wrote it."""
    text = TUTORIAL.read_text("utf-8").replace(
        "    UPS-A: {kind: ups, rating_kw: 500}",
        "    UPS-A: &ups {kind: ups, rating_kw: 500, derating: 2}",
    )
    text = text.replace("    UPS-B: {kind: ups, rating_kw: 500}", "    UPS-B: {<<: *ups}")
    path = write_instance(tmp_path, text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "derating: 2" in t)
    one_error_line(run("explain", path), f"{path}:{line}: power.devices.UPS-A.derating")


def _bom_instance(folder: Path) -> Path:
    """The base instance with a slot table, a recirculation matrix and a distance table,
    each saved as Excel's "CSV UTF-8" (a byte-order mark, CRLF line ends)."""
    bom = "\ufeff"

    def excel(name: str, text: str) -> None:
        (folder / name).write_bytes((bom + text).replace("\n", "\r\n").encode("utf-8"))

    slots = ["H1-L-01", "H1-L-02", "H1-A-01", "H1-A-02", "T1"]
    excel("slots.csv", "id,feed_a,feed_b,air_zone,floor_kg\nT1,PDU-A1,PDU-B1,Z1,1200\n")
    excel(
        "d.csv",
        "slot," + ",".join(slots) + "\n" + "".join(f"{s},0.01\n" for s in slots),
    )
    lengths = "".join(f"{s},3,3,3,3,3\n" for s in slots)
    excel("cable.csv", "slot," + ",".join(slots) + "\n" + lengths)
    data = base_instance()
    data["halls"]["H1"]["slots_csv"] = "slots.csv"
    data["thermal"] = {"matrix_file": "d.csv"}
    data["network"] = {"distance_csv": "cable.csv"}
    data["rack_types"] = {"r": {"gpus": 8, "it_kw": 10, "liquid_fraction": 0, "weight_kg": 500}}
    data["demand"] = {"r": {"max": 2}}
    data["cooling"]["air_zones"]["Z1"]["supply_temp_c"] = 20
    return write_instance(folder, data)


def test_spreadsheet_csv_with_a_byte_order_mark_loads(tmp_path):
    site = build_site(load_instance(_bom_instance(tmp_path)))
    assert site.slot_ids[-1] == "T1"
    t1 = site.slot_ids.index("T1")
    assert site.recirculation is not None
    assert site.recirculation[[t1], [0]].item() == pytest.approx(0.01)
    assert site.recirculation.nnz == 5
    assert site.network is not None
    assert site.network.geometry.matrix is not None
    assert (site.network.geometry.matrix == 3.0).all()
