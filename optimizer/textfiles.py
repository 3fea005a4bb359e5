"""Write a set of text files that belong together: all of them, or none.

An import or export writes several files that only make sense together (a fragment and
its slot tables; a device table and the cables that name its devices). Each is first
written to a temporary file in its own folder; only when every one is on disk are they
renamed into place, so a failure (disk full, no permission) leaves no half-written set.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from optimizer.errors import OutputError


def write_text_files(files: Mapping[Path, str]) -> None:
    """Write every ``path -> text`` as UTF-8, atomically as a set (up to the final renames)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((Path(name), path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {exc.filename or 'the output'}: {exc.strerror}") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
