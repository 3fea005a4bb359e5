"""The one write path of every file rackopt produces: layouts, study datasets, the
compare CSV, report pictures and pages, NetBox imports and exports.

The bytes are made in memory first (a NetCDF file by h5netcdf into a buffer, so an
HDF5 failure never happens half-way through a file on disk), then written to a
temporary file in the target's folder, flushed to disk (fsync) and renamed over the
target: a reader sees the old file or the whole new one, never a part. The new file
gets the mode a newly created file gets (0666 less the umask: 0644 by default) and the
writer's ownership; an overwritten file's old mode and owner are not kept. A target
that exists and is not a regular file (a device such as /dev/null, a FIFO, a folder)
is refused rather than replaced. Every failure removes the temporary file and becomes
one :class:`~optimizer.errors.OutputError` line (exit code 74). Files that only make
sense together (a NetBox fragment and its slot tables) are written as a set: every one
is staged before the first is renamed into place, so a failure leaves none of them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from optimizer.errors import InstanceError, OutputError

_FIXES = {
    errno.ENOSPC: "free disk space or write elsewhere",
    errno.EDQUOT: "free disk space or write elsewhere",
    errno.EACCES: "write to a folder you may write to",
    errno.EPERM: "write to a folder you may write to",
    errno.EROFS: "write to a folder you may write to",
}


def output_error(path: Path, exc: OSError) -> OutputError:
    """One line naming the target (not the temporary file), the reason and the fix."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    fix = _FIXES.get(exc.errno or 0)
    return OutputError(f"cannot write {path}: {reason}" + (f" (fix: {fix})" if fix else ""))


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _refuse_special(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # a new file (or a dangling link, which the rename replaces)
    except OSError as exc:
        raise output_error(path, exc) from None
    if not stat.S_ISREG(mode):
        raise OutputError(
            f"cannot write {path}: it exists and is not a regular file (fix: give a file path)"
        )


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable. Best effort: some file systems cannot sync a
    folder, and the file's own data is already on disk."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(path: Path, data: bytes) -> Path:
    """``data`` in a synced temporary file beside ``path``, with the mode a new file gets;
    the temporary file is removed if this fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):  # the write's own error is the one to tell
            tmp.unlink(missing_ok=True)
        raise
    return tmp


def check_target(path: str | Path) -> None:
    """Refuse, before any work, a target that cannot be written: a planner should learn
    that ``-o`` points into a read-only or missing-permission folder in the first second,
    not after a five-minute solve. The nearest existing folder of the target is probed by
    creating (and removing) an empty temporary file there, which asks the file system the
    real question (permissions, read-only mounts, root's rights) instead of guessing from
    mode bits; missing folders below it are made later by the write itself."""
    target = Path(path)
    _refuse_special(target)
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise output_error(target, exc) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def check_folder(path: str | Path) -> None:
    """:func:`check_target` for a folder that receives several files (the CSV tables of
    an export): a file in its place is refused as bad input (exit 2), and a new file
    must be creatable there."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InstanceError(str(folder), "", "is a file", "give a folder for the CSV files")
    check_target(folder / "probe")


def write_files(files: Mapping[str | Path, bytes]) -> None:
    """Write every ``path -> data`` atomically, as a set (see the module docstring);
    missing parent folders are created."""
    targets = [Path(path) for path in files]
    for path in targets:
        _refuse_special(path)
    staged: dict[Path, Path] = {}
    current = targets[0] if targets else Path()
    try:
        for current, data in zip(targets, files.values(), strict=True):
            staged[current] = _stage(current, data)
        for current in targets:
            os.replace(staged[current], current)
            del staged[current]
    except OSError as exc:
        raise output_error(current, exc) from None
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    for folder in {path.parent for path in targets}:
        _sync_folder(folder)


def write_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring); missing parent
    folders are created."""
    write_files({path: data})


def write_text(path: str | Path, text: str) -> None:
    """:func:`write_file` for text, as UTF-8."""
    write_file(path, text.encode("utf-8"))
