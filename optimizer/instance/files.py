"""Reading the files an instance names: only regular files, of bounded size, inside its tree.

An instance names other files (includes, slot tables, distance and recirculation
matrices) and a study names its base instance. rackopt may run files it did not write,
so every such path must resolve, symlinks followed, inside the folder tree of the
file given on the command line (:class:`FolderTree`); ``--allow-paths-outside`` lifts
this. Files are opened without blocking and refused unless they are regular files: a
FIFO or ``/dev/stdin`` would wait forever and ``/dev/zero`` never ends. Sizes are
bounded so a wrong path cannot exhaust memory. Problems are raised as
:class:`~optimizer.errors.FieldProblem` for the caller to place at the field that
names the file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from optimizer.errors import FieldProblem

MIB = 1024 * 1024
MAX_YAML_BYTES = 16 * MIB
"""An instance or study YAML file: far above any facility description."""
MAX_TABLE_BYTES = 256 * MIB
"""A slot table or a distance or recirculation matrix (CSV or NetCDF): a dense
float64 matrix of 5,000 x 5,000 slots is 200 MiB."""


@dataclass(frozen=True)
class FolderTree:
    """The folder whose tree every file an instance or study names must lie in.

    ``root`` None means anywhere (``--allow-paths-outside``): the user vouches for the
    files, and messages may quote any of them."""

    root: Path | None

    @classmethod
    def around(cls, path: Path, allow_outside: bool = False) -> FolderTree:
        """The tree of the folder holding ``path`` (the file given on the command line)."""
        return cls(None if allow_outside else path.parent.resolve())

    def check(self, target: Path) -> None:
        """Refuse ``target`` when it resolves (through ``..`` and symlinks) outside the tree."""
        if self.root is None:
            return
        if not target.resolve().is_relative_to(self.root):
            raise FieldProblem(
                f"{target} lies outside {self.root}, the folder tree this input may read",
                "keep the file in that tree (no '..', absolute path or symlink leading out), "
                "or run with --allow-paths-outside if you trust every file it names",
            )


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, refused beyond ``limit`` bytes.

    Opened with O_NONBLOCK so that a FIFO is refused instead of waited on, and read in
    pieces so that a file growing past the limit stops the reading at once."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FieldProblem(f"{path} not found", "check the path") from None
    except OSError as exc:
        raise FieldProblem(f"cannot open {path}: {exc.strerror}", "check the path") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FieldProblem(
                f"{path} is not a regular file (a folder, device, pipe or socket)",
                "name a file saved on disk",
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, MIB):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FieldProblem(
                    f"{path} is larger than {limit // MIB} MiB",
                    "check the path; split or shrink the file",
                )
    except OSError as exc:
        raise FieldProblem(f"cannot read {path}: {exc.strerror}", "check the file") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def decode_utf8(raw: bytes) -> str:
    """Text of a file saved as UTF-8, with or without a byte-order mark (Excel's "CSV
    UTF-8" writes one); bytes that are not UTF-8 are an error naming their line, never
    silently replaced, since a replaced character would change an id."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FieldProblem(
            f"line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8 (in Excel: CSV UTF-8)",
        ) from None
