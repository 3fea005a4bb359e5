"""One write path for every output (layouts, CSV, pictures): the umask's mode, special
files refused, and every failure one line with exit code 74 and no temporary file left.

Tests run as root, which ignores permission bits, so a read-only or full folder is
simulated: a parent that is a file, or an OSError raised by the system call."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import pytest
from helpers import TUTORIAL, run, solved_tutorial

from optimizer.output import write_file


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return solved_tutorial(tmp_path_factory.mktemp("layout"))


@pytest.fixture
def umask():
    """Set the umask for one test, then restore it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def failed(result, *fragments: str) -> None:
    """Exit 74 with one error line, the last (compare prints its table before writing)."""
    assert result.exit_code == 74, result.output
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.output
    for fragment in fragments:
        assert fragment in lines[-1], result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_layout_gets_the_mode_the_umask_allows(tmp_path, umask):
    assert run("solve", TUTORIAL, "-o", tmp_path / "a.nc", "-q").exit_code == 0
    assert mode(tmp_path / "a.nc") == 0o644
    umask(0o027)
    assert run("solve", TUTORIAL, "-o", tmp_path / "b.nc", "-q").exit_code == 0
    assert mode(tmp_path / "b.nc") == 0o640


def test_an_overwritten_file_is_a_new_file_with_the_umasks_mode(tmp_path, layout, umask):
    table = tmp_path / "kpis.csv"
    table.write_text("old")
    table.chmod(0o600)
    assert run("compare", layout, "--csv", table).exit_code == 0
    assert mode(table) == 0o644
    assert table.read_text().startswith("scenario,status,gap,gpus")


@pytest.mark.parametrize("command", ["solve", "compare", "report"])
def test_a_target_that_is_not_a_regular_file_is_refused_not_replaced(tmp_path, layout, command):
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    args = {
        "solve": ("solve", TUTORIAL, "-o", fifo),
        "compare": ("compare", layout, "--csv", fifo),
        "report": ("report", layout, "-o", fifo),
    }[command]
    failed(run(*args), f"cannot write {fifo}: it exists and is not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_survives_as_root(tmp_path):
    # -o /dev/null as root once replaced the device node; this is a copy of it.
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    failed(run("solve", TUTORIAL, "-o", null), "is not a regular file")
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def _raise(error: int):
    def fail(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    return fail


def test_a_full_disk_is_exit_74_and_leaves_no_temporary_file(tmp_path, layout, monkeypatch):
    monkeypatch.setattr(os, "fsync", _raise(errno.ENOSPC))
    for args in (
        ("solve", TUTORIAL, "-o", tmp_path / "a.nc"),
        ("compare", layout, "--csv", tmp_path / "a.csv"),
        ("report", layout, "-o", tmp_path / "a.png"),
    ):
        failed(run(*args), "No space left on device (fix: free disk space or write elsewhere)")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_write_permission_is_exit_74(tmp_path, layout, monkeypatch):
    monkeypatch.setattr(tempfile, "mkstemp", _raise(errno.EACCES))
    failed(
        run("compare", layout, "--csv", tmp_path / "a.csv"),
        f"cannot write {tmp_path / 'a.csv'}: Permission denied (fix: write to a folder",
    )
    failed(run("report", layout, "-o", tmp_path / "a.png"), "Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_exit_74(tmp_path, layout):
    (tmp_path / "file").write_text("")
    failed(run("compare", layout, "--csv", tmp_path / "file" / "a.csv"), "cannot write")
    failed(run("report", layout, "-o", tmp_path / "file" / "a.png"), "cannot write")


def test_an_unwritable_target_is_refused_before_any_work(tmp_path, layout, monkeypatch):
    """A solve or a comparison must not run for minutes and then fail to write: the
    target is probed as the command line is read, so nothing is printed but the error."""
    import optimizer.solve.pipeline
    import optimizer.studies.compare

    def never(*args, **kwargs):
        raise AssertionError("the work started although the target cannot be written")

    monkeypatch.setattr(optimizer.solve.pipeline, "solve_instance", never)
    monkeypatch.setattr(optimizer.studies.compare, "compare", never)
    monkeypatch.setattr(tempfile, "mkstemp", _raise(errno.EACCES))
    for args in (
        ("solve", TUTORIAL, "-o", tmp_path / "a.nc"),
        ("compare", layout, "--csv", tmp_path / "a.csv"),
    ):
        result = run(*args)
        failed(result, "Permission denied (fix: write to a folder")
        assert len(result.output.splitlines()) == 1, result.output
    (tmp_path / "file").write_text("")
    failed(run("solve", TUTORIAL, "-o", tmp_path / "file" / "a.nc"), "Not a directory")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    target = tmp_path / "a.csv"
    target.write_text("old")
    monkeypatch.setattr(os, "replace", _raise(errno.EIO))
    with pytest.raises(Exception, match=r"cannot write .*a.csv: Input/output error"):
        write_file(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_an_interrupt_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "a.nc", b"data")
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folders_are_made(tmp_path):
    write_file(tmp_path / "x" / "y" / "a.csv", b"1\n")
    assert (tmp_path / "x" / "y" / "a.csv").read_bytes() == b"1\n"
