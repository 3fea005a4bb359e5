"""``rackopt batch`` around the solves: when a saved layout is reused, how a dask scheduler
is reached (and refused), and what Ctrl-C does to scenarios not yet started.

Studies patch the 8-slot tutorial hall (a fraction of a second per solve) except the
Ctrl-C test, which needs solves that run until they are stopped (hard-knapsack.yaml).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
from helpers import local_cluster, run, write_study

from optimizer.errors import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_UNAVAILABLE
from optimizer.solve.options import SolveOptions
from optimizer.studies.batch import run_batch, scenario_folder, scenario_path
from optimizer.studies.cluster import Cluster
from optimizer.studies.study import load_study

ROOT = Path(__file__).resolve().parents[1]
HARD = ROOT / "tests" / "data" / "hard-knapsack.yaml"
EXACT = SolveOptions(gap=0.0, threads=1, seed=0)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- resume key


@pytest.fixture(scope="module")
def solved_once(tmp_path_factory):
    """The tutorial as a one-scenario study, solved with the exact options."""
    folder = tmp_path_factory.mktemp("resume")
    study = load_study(write_study(folder, {}))
    output = folder / "study.nc"
    report = run_batch(study, output, EXACT, workers=0)
    assert report.solved == ["base"]
    return study, output


@pytest.mark.parametrize(
    "change",
    [
        {"gap": 0.5},
        {"seed": 1},
        {"time_limit": 600.0},
        {"second_stage_nodes": 7},
        {"warm_start": False},
        {"threads": 2},
    ],
)
def test_a_saved_layout_is_solved_again_when_any_layout_changing_option_differs(
    solved_once, tmp_path, change
):
    study, output = solved_once
    copy = tmp_path / "copy.nc"
    shutil.copytree(scenario_folder(output), scenario_folder(copy))
    options = SolveOptions(**{**EXACT.__dict__, **change})
    again = run_batch(study, copy, options, workers=0)
    assert again.solved == ["base"] and not again.reused
    with xr.open_dataset(scenario_path(copy, "base")) as ds:
        assert ds.total_gpus.item() == 208  # the tutorial's optimum, worked out in the README


def test_a_saved_layout_is_reused_when_every_option_is_the_same(solved_once, tmp_path):
    study, output = solved_once
    copy = tmp_path / "copy.nc"
    shutil.copytree(scenario_folder(output), scenario_folder(copy))
    again = run_batch(study, copy, SolveOptions(**EXACT.__dict__), workers=0)
    assert again.reused == ["base"] and not again.solved


def test_a_rerun_with_other_second_stage_nodes_solves_again(tmp_path):
    study = write_study(tmp_path, {})
    output = tmp_path / "study.nc"
    first = run("batch", study, "-o", output, "--workers", 0, "--gap", 0)
    assert first.exit_code == 0, first.output
    assert "1 solved, 0 reused" in first.output
    same = run("batch", study, "-o", output, "--workers", 0, "--gap", 0)
    assert "0 solved, 1 reused" in same.output
    other = run("batch", study, "-o", output, "--workers", 0, "--gap", 0, "--second-stage-nodes", 5)
    assert other.exit_code == 0, other.output
    assert "1 solved, 0 reused" in other.output
    with xr.open_dataset(scenario_path(output, "base")) as ds:
        assert '"second_stage_nodes": 5' in ds.attrs["solver_options"]


def test_batch_offers_no_split_option(tmp_path):
    # Each scenario has a process of its own; parts are never split inside one.
    result = run("batch", write_study(tmp_path, {}), "-o", tmp_path / "x.nc", "--no-split")
    assert result.exit_code == 2 and "No such option" in result.output


# ---------------------------------------------------------------- dask scheduler


def _tutorial_batch(folder: Path, *options: Any):
    """``rackopt batch`` of the tutorial as a one-scenario study, with ``options``."""
    return run("batch", write_study(folder, {}), "-o", folder / "x.nc", *options)


def _one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_an_unreachable_scheduler_is_an_environment_error(tmp_path):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{closed_port()}"
    result = _tutorial_batch(tmp_path, "--scheduler", address)
    _one_line_error(result, EXIT_UNAVAILABLE, f"cannot reach the dask scheduler at {address}")
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("tcp://127.0.0.1:port", "cannot read the address"),
        ("ucx://127.0.0.1:8786", "unsupported protocol 'ucx'"),
    ],
)
def test_an_unreadable_scheduler_address_is_invalid_input(tmp_path, address, fragment):
    pytest.importorskip("distributed")
    result = _tutorial_batch(tmp_path, "--scheduler", address)
    _one_line_error(result, EXIT_INVALID_INPUT, "--scheduler", fragment)


def test_a_tls_scheduler_without_tls_files_is_invalid_input(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    for name in ("CA_FILE", "CLIENT__CERT", "CLIENT__KEY"):
        monkeypatch.delenv(f"DASK_DISTRIBUTED__COMM__TLS__{name}", raising=False)
    address = f"tls://127.0.0.1:{closed_port()}"
    result = _tutorial_batch(tmp_path, "--scheduler", address)
    _one_line_error(result, EXIT_INVALID_INPUT, "--scheduler", "--tls-ca-file and --tls-cert")


def test_tls_files_without_a_tls_scheduler_are_invalid_input(tmp_path):
    study = write_study(tmp_path, {})
    alone = run("batch", study, "-o", tmp_path / "x.nc", "--tls-cert", tmp_path / "c.pem")
    _one_line_error(alone, EXIT_INVALID_INPUT, "TLS files given without --scheduler")
    pytest.importorskip("distributed")
    plain = run(
        "batch", study, "-o", tmp_path / "x.nc", "--scheduler", "tcp://127.0.0.1:8786",
        "--tls-ca-file", tmp_path / "ca.pem",
    )  # fmt: skip
    _one_line_error(plain, EXIT_INVALID_INPUT, "TLS files given for the unencrypted address")


@pytest.mark.parametrize("problem", ["missing", "not a certificate"])
def test_unusable_tls_files_are_an_environment_error(tmp_path, problem):
    pytest.importorskip("distributed")
    cert = tmp_path / "cert.pem"
    if problem != "missing":
        cert.write_text("this is not a certificate\n")
    result = _tutorial_batch(
        tmp_path,
        "--scheduler", f"tls://127.0.0.1:{closed_port()}",
        "--tls-ca-file", cert, "--tls-cert", cert,
    )  # fmt: skip
    _one_line_error(result, EXIT_UNAVAILABLE, "cannot use the TLS files for the dask scheduler")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate and its key: CA, scheduler, worker and client at once."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=rackopt-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_a_tls_scheduler_that_is_unreachable_is_an_environment_error(tmp_path, certificate):
    pytest.importorskip("distributed")
    cert, key = certificate
    address = f"tls://127.0.0.1:{closed_port()}"
    result = _tutorial_batch(
        tmp_path, "--scheduler", address,
        "--tls-ca-file", cert, "--tls-cert", cert, "--tls-key", key,
    )  # fmt: skip
    _one_line_error(result, EXIT_UNAVAILABLE, f"cannot reach the dask scheduler at {address}")


def test_a_batch_runs_on_a_tls_cluster(tmp_path, certificate):
    distributed = pytest.importorskip("distributed")
    cert, key = certificate
    files = {"cert": str(cert), "key": str(key)}
    security = distributed.Security(
        tls_ca_file=str(cert),
        **{f"tls_{role}_{kind}": path for role in ("scheduler", "worker", "client")
           for kind, path in files.items()},
        require_encryption=True,
    )  # fmt: skip
    study = load_study(write_study(tmp_path, {}))
    with local_cluster("tls://", security) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        at = Cluster(cluster.scheduler_address, str(cert), str(cert), str(key))
        report = run_batch(study, tmp_path / "tls.nc", EXACT, cluster=at)
    assert report.solved == ["base"] and not report.failed
    with xr.open_dataset(tmp_path / "tls.nc") as ds:
        assert ds.total_gpus.sel(scenario="base").item() == 208


# ---------------------------------------------------------------- Ctrl-C


def _process_group(group: int) -> list[int]:
    """The processes in a process group, from /proc (the test runs on Linux)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or gone
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) == group:
            members.append(int(entry.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_drops_the_scenarios_not_yet_started(tmp_path):
    # Three solves that only stop at their 30 s time limit, one worker. Ctrl-C from a
    # terminal reaches the whole process group: the running solve stops unfinished (never
    # saved), and the queued scenarios, one of them already handed to the worker, must be
    # dropped rather than run to their time limit and saved.
    sweep = {"sweeps": {"description": ["first", "second", "third"]}}
    study = write_study(tmp_path, sweep, base=HARD)
    output = tmp_path / "study.nc"
    batch = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rackopt"),
            "batch", str(study), "-o", str(output), "--workers", "1",
            "--gap", "0", "--time-limit", "30", "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    # Ctrl-C once the worker runs (besides batch: resource tracker, fork server, worker)
    # and has had a few seconds to start solving.
    while len(_process_group(batch.pid)) < 4 and batch.poll() is None:
        time.sleep(0.5)
    time.sleep(5)
    os.killpg(batch.pid, signal.SIGINT)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == EXIT_INTERRUPTED, stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    folder = scenario_folder(output)
    assert not folder.exists() or not list(folder.iterdir())
    assert not output.exists()
