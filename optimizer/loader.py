"""Read an instance file (with its includes) into a validated :class:`Instance`.

Errors name the file, line and field path where the problem is, and say how to
fix it. The schema itself lives in :mod:`optimizer.schema`; cross-section checks
happen when the site is built (:mod:`optimizer.site`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from optimizer.errors import InstanceError
from optimizer.schema import FORMAT_VERSION, Instance
from optimizer.yamlio import YamlDocument, merge, read_yaml

MAX_INCLUDE_DEPTH = 8

_FIXES = {
    "extra_forbidden": "remove the key or correct its spelling",
    "missing": "add this field",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "finite_number": "use a finite number (no .inf or .nan)",
    "float_parsing": "write a number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "bool_parsing": "write true or false",
    "string_type": "write a text value",
    "dict_type": "write a mapping of keys to values",
    "list_type": "write a list",
    "literal_error": "use one of the allowed values",
    "enum": "use one of the allowed values",
    "string_pattern_mismatch": "use letters, digits and _ . : + - only",
    "too_short": "add at least one entry",
    "too_long": "remove entries",
}


@dataclass(frozen=True)
class LoadedInstance:
    """A validated instance plus where it came from."""

    instance: Instance
    document: YamlDocument
    path: Path
    sha256: str
    """SHA-256 over the bytes of the instance file, every file it includes and every
    slot table, in read order."""
    slot_tables: dict[str, tuple[str, str]]
    """Hall id -> (file name for messages, CSV text) of each hall's ``slots_csv``."""

    def locate_error(self, path: tuple[str, ...], problem: str, fix: str) -> InstanceError:
        """An :class:`InstanceError` pointing at the file and line that define ``path``."""
        found = self.document.locate(path)
        file, line = found if found else (str(self.path), None)
        return InstanceError(file, ".".join(path), problem, fix, line)


def _read_with_includes(path: Path, chain: tuple[Path, ...], files: list[Path]) -> YamlDocument:
    display = str(path)
    if path.resolve() in chain:
        raise InstanceError(
            display, "include", "include cycle", "an included file must not include its includer"
        )
    if len(chain) > MAX_INCLUDE_DEPTH:
        raise InstanceError(display, "include", "includes nested too deeply", "flatten includes")
    document = read_yaml(path, display)
    files.append(path)
    if document.data is None:
        document.data = {}
    if not isinstance(document.data, dict):
        raise InstanceError(
            display,
            "",
            "the file must hold a mapping at top level",
            "start with `key: value` lines",
        )
    includes = document.data.get("include", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise InstanceError(display, "include", "must be a list of file paths", "write [a.yaml]")
    combined = YamlDocument({}, {})
    for relative in includes:
        included = _read_with_includes(path.parent / relative, (*chain, path.resolve()), files)
        included.data.pop("include", None)
        combined = merge(combined, included)
    return merge(combined, document)


def _validation_error(document: YamlDocument, path: Path, exc: ValidationError) -> InstanceError:
    error = exc.errors()[0]
    loc = tuple(str(p) for p in error["loc"])
    found = document.locate(loc)
    file, line = found if found else (str(path), None)
    kind = error["type"]
    problem = error["msg"]
    if kind == "extra_forbidden":
        problem = f"unknown key {loc[-1]!r}"
    elif "input" in error and kind not in ("missing", "value_error"):
        problem += f" (got {error['input']!r})"
    fix = _FIXES.get(kind, "")
    if kind in ("literal_error", "enum") and "expected" in error.get("ctx", {}):
        fix = f"use one of {error['ctx']['expected']}"
    if loc == ("format_version",):
        fix = f"this rackopt reads format_version: {FORMAT_VERSION}"
    return InstanceError(file, ".".join(loc), problem, fix, line)


def load_instance(path: str | Path) -> LoadedInstance:
    """Parse, merge includes and validate the schema of one instance file."""
    path = Path(path)
    files: list[Path] = []
    document = _read_with_includes(path, (), files)
    try:
        instance = Instance.model_validate(document.data)
    except ValidationError as exc:
        raise _validation_error(document, path, exc) from None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    slot_tables: dict[str, tuple[str, str]] = {}
    for hall_id, hall in instance.halls.items():
        if hall.slots_csv is None:
            continue
        field = ("halls", hall_id, "slots_csv")
        defined_in = document.locate(field)
        base = Path(defined_in[0]).parent if defined_in else path.parent
        csv_path = base / hall.slots_csv
        try:
            raw = csv_path.read_bytes()
        except OSError:
            file, line = defined_in if defined_in else (str(path), None)
            raise InstanceError(
                file, ".".join(field), f"slot table {csv_path} not found", "check the path", line
            ) from None
        digest.update(raw)
        slot_tables[hall_id] = (str(csv_path), raw.decode("utf-8", errors="replace"))
    return LoadedInstance(instance, document, path, digest.hexdigest(), slot_tables)
