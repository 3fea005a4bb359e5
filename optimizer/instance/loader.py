"""Read an instance file (with its includes) into a validated :class:`Instance`.

Errors name the file, line and field path where the problem is, and say how to
fix it. The schema itself lives in :mod:`optimizer.instance.schema`; cross-section checks
happen when the site is built (:mod:`optimizer.site.build`).
"""

from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from optimizer.errors import FieldProblem, InstanceError, choices, did_you_mean
from optimizer.instance.schema import FORMAT_VERSION, Instance
from optimizer.instance.yamlio import FieldPath, YamlDocument, merge, read_yaml

MAX_INCLUDE_DEPTH = 8

_FIXES = {
    "missing": "add it",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "finite_number": "use a finite number (no .inf or .nan)",
    "float_parsing": "write a number",
    "float_type": "write a number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "int_type": "write a whole number",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write a text value (quote it if YAML reads it as a number or boolean)",
    "dict_type": "write a mapping of keys to values",
    "model_type": "write a mapping of keys to values",
    "list_type": "write a list",
    "tuple_type": "write a list",
    "literal_error": "use one of the allowed values",
    "enum": "use one of the allowed values",
    "string_pattern_mismatch": "rename it",
    "string_too_short": "write at least one character",
    "string_too_long": "shorten it",
    "too_short": "add at least one entry",
    "too_long": "remove entries",
}
_PROBLEMS = {
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "string_pattern_mismatch": "may hold only letters, digits and _ . : + -",
    "too_short": "must have at least one entry",
}
_NO_INPUT = ("missing", "extra_forbidden", "value_error")


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
    distance_table: tuple[str, str] | None = None
    """(file name, CSV text) of ``network.distance_csv`` when given."""
    recirculation_file: tuple[str, bytes] | None = None
    """(file name, bytes) of ``thermal.matrix_file`` when given (CSV or NetCDF)."""

    def locate_error(self, path: tuple[str, ...], problem: str, fix: str) -> InstanceError:
        """An :class:`InstanceError` pointing at the file and line that define ``path``."""
        return self.document.error(path, problem, fix, str(self.path))


def _includes(document: YamlDocument, path: Path) -> list[str]:
    includes = document.data.get("include", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise document.error(
            ("include",), "must be a list of file paths", "write include: [common.yaml]", str(path)
        )
    return includes


def _check_include(
    document: YamlDocument, path: Path, index: int, target: Path, chain: tuple[Path, ...]
) -> None:
    """Refuse an include that is missing, closes a cycle or nests too deep, at its line."""
    field = ("include", str(index))
    includers = (*chain, path)
    if target.resolve() in {p.resolve() for p in includers}:
        names = " -> ".join(p.name for p in (*includers, target))
        raise document.error(
            field,
            f"include cycle {names}",
            "an included file must not include its includer, directly or through others",
            str(path),
        )
    if not target.is_file():
        raise document.error(
            field,
            f"included file {target.name} not found (looked for {target})",
            "check the path; it is relative to the including file",
            str(path),
        )
    if len(includers) > MAX_INCLUDE_DEPTH:
        raise document.error(
            field,
            f"includes nested more than {MAX_INCLUDE_DEPTH} deep",
            "flatten the includes",
            str(path),
        )


def _read_with_includes(path: Path, chain: tuple[Path, ...], files: list[Path]) -> YamlDocument:
    """Read ``path`` merged over its includes; ``chain`` are the files that include it."""
    document = read_yaml(path, str(path))
    files.append(path)
    combined = YamlDocument({}, {})
    for index, relative in enumerate(_includes(document, path)):
        target = path.parent / relative
        _check_include(document, path, index, target, chain)
        included = _read_with_includes(target, (*chain, path), files)
        included.data.pop("include", None)
        combined = merge(combined, included)
    return merge(combined, document)


def _field_names(loc: FieldPath) -> list[str]:
    """Keys the schema allows in the mapping at ``loc`` (empty when it is not a model).

    Follows model fields, dict values, list items and ``X | None`` down from
    :class:`Instance`, so an unknown key can be answered with the closest allowed one.
    """
    annotation: Any = Instance
    for part in loc:
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _pick(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to report: an unknown key first, since a misspelt key also shows up
    as a missing required one, and the spelling is the real mistake."""
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def explain(error: ErrorDetails, loc: FieldPath) -> tuple[str, str]:
    """Problem and fix for one pydantic error at ``loc``, in rackopt's words."""
    kind = error["type"]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldProblem):
        return cause.problem, cause.fix
    if kind == "extra_forbidden":
        allowed = _field_names(loc[:-1])
        fix = did_you_mean(loc[-1], allowed, f"remove it; allowed here: {choices(allowed)}")
        return f"unknown key {loc[-1]!r}", fix
    if kind == "missing":
        problem = f"missing required field {loc[-1]!r}"
    else:
        problem = _PROBLEMS.get(kind, error["msg"])
    if kind not in _NO_INPUT:
        problem += f" (got {_shown(error['input'])})"
    fix = _FIXES.get(kind, "correct the value")
    if kind in ("literal_error", "enum") and "expected" in error.get("ctx", {}):
        fix = f"use one of {error['ctx']['expected']}"
    return problem, fix


def _validation_error(document: YamlDocument, path: Path, exc: ValidationError) -> InstanceError:
    error = _pick(exc.errors())
    loc = tuple(str(p) for p in error["loc"])
    is_key = loc[-1:] == ("[key]",)  # the id of a mapping entry, not its value
    if is_key:
        loc = loc[:-1]
    problem, fix = explain(error, loc)
    if is_key:
        problem = f"invalid key: {problem}"
    if loc == ("format_version",):
        fix = f"this rackopt reads format_version: {FORMAT_VERSION}"
    return document.error(loc, problem, fix, str(path))


def _read_side_file(
    document: YamlDocument, path: Path, field: tuple[str, ...], relative: str
) -> tuple[Path, bytes]:
    """Read a table an instance names (a slot table, a distance or recirculation matrix),
    relative to the file that names it."""
    defined_in = document.locate(field)
    base = Path(defined_in[0]).parent if defined_in else path.parent
    table = base / relative
    try:
        return table, table.read_bytes()
    except OSError:
        raise document.error(
            field,
            f"table {table} not found",
            "check the path; it is relative to the file that names it",
            str(path),
        ) from None


def _read_slot_tables(
    instance: Instance, document: YamlDocument, path: Path
) -> dict[str, tuple[Path, bytes]]:
    """Read each hall's ``slots_csv``."""
    return {
        hall_id: _read_side_file(document, path, ("halls", hall_id, "slots_csv"), hall.slots_csv)
        for hall_id, hall in instance.halls.items()
        if hall.slots_csv is not None
    }


def read_instance_document(path: str | Path) -> tuple[YamlDocument, list[Path]]:
    """The instance file merged over its includes, not yet validated, and the files read."""
    files: list[Path] = []
    return _read_with_includes(Path(path), (), files), files


def validate_document(
    document: YamlDocument, path: Path, files: list[Path], extra: bytes = b""
) -> LoadedInstance:
    """Validate an instance held in memory exactly as :func:`load_instance` does.

    ``document`` may have been changed after reading (a study's overrides); its
    locations say where each value came from, so errors point there. ``extra``
    (the overrides applied, for instance) is hashed after the files' bytes."""
    try:
        instance = Instance.model_validate(document.data)
    except ValidationError as exc:
        raise _validation_error(document, path, exc) from None
    tables = _read_slot_tables(instance, document, path)
    distance = None
    if instance.network is not None and instance.network.distance_csv is not None:
        field = ("network", "distance_csv")
        distance = _read_side_file(document, path, field, instance.network.distance_csv)
    matrix = None
    if instance.thermal is not None and instance.thermal.matrix_file is not None:
        field = ("thermal", "matrix_file")
        matrix = _read_side_file(document, path, field, instance.thermal.matrix_file)
    digest = hashlib.sha256()
    side = [raw for _, raw in tables.values()]
    side += [found[1] for found in (distance, matrix) if found is not None]
    for raw in [file.read_bytes() for file in files] + side:
        digest.update(raw)
    if extra:
        digest.update(extra)
    slot_tables = {
        hall_id: (str(csv_path), raw.decode("utf-8", errors="replace"))
        for hall_id, (csv_path, raw) in tables.items()
    }
    distance_table = (
        (str(distance[0]), distance[1].decode("utf-8", errors="replace")) if distance else None
    )
    return LoadedInstance(
        instance,
        document,
        path,
        digest.hexdigest(),
        slot_tables,
        distance_table,
        (str(matrix[0]), matrix[1]) if matrix else None,
    )


def load_instance(path: str | Path) -> LoadedInstance:
    """Parse, merge includes and validate the schema of one instance file."""
    document, files = read_instance_document(path)
    return validate_document(document, Path(path), files)
