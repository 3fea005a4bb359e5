"""Read an instance file (with its includes) into a validated :class:`Instance`.

Errors name the file, line and field path where the problem is, and say how to
fix it. The schema itself lives in :mod:`optimizer.instance.schema`; cross-section checks
happen when the site is built (:mod:`optimizer.site.build`). Every file an instance
names is read through :mod:`optimizer.instance.files`: inside the instance's folder
tree, regular, of bounded size.
"""

from __future__ import annotations

import hashlib
import math
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from optimizer.errors import FieldProblem, InstanceError, choices, did_you_mean
from optimizer.instance.files import (
    MAX_TABLE_BYTES,
    MAX_YAML_BYTES,
    MIB,
    FolderTree,
    decode_utf8,
    read_limited,
)
from optimizer.instance.schema import FORMAT_VERSION, AirZone, Cdu, Device, Instance
from optimizer.instance.tables import (
    LineProblems,
    TableProblem,
    check_header,
    csv_lines,
    xlsx_text,
)
from optimizer.instance.yamlio import (
    FieldPath,
    Location,
    YamlDocument,
    merge,
    parse_yaml,
    read_yaml_bytes,
)

MAX_INCLUDE_DEPTH = 8
MAX_INCLUDED_FILES = 64
"""Files one instance may include in all: includes that fan out (ten files each
including ten more) would otherwise be read millions of times."""

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
class InstanceSource:
    """An instance file merged over its includes, not yet validated."""

    document: YamlDocument
    path: Path
    tree: FolderTree
    """The folder tree every file the instance names must lie in."""
    raw: tuple[bytes, ...]
    """The bytes of the instance file and every file it includes, in read order."""


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
    overrides: str = ""
    """The overrides applied to the instance file (a study scenario's, or ``--set``), as
    JSON ``[[key, value], ...]``; empty when none (:mod:`optimizer.instance.overrides`)."""

    def locate_error(self, path: tuple[str, ...], problem: str, fix: str) -> InstanceError:
        """An :class:`InstanceError` pointing at the file and line that define ``path``."""
        return self.document.error(path, problem, fix, str(self.path))


def named_path(document: YamlDocument, path: Path, field: FieldPath, relative: str) -> Path:
    """The file that ``relative``, given at ``field``, names: relative to the file that
    defines the field (an included file's names are relative to it), else to ``path``."""
    defined_in = document.locate(field)
    return Path(defined_in[0]).parent / relative if defined_in else path.parent / relative


def read_named_file(
    document: YamlDocument,
    path: Path,
    field: FieldPath,
    relative: str,
    tree: FolderTree,
    limit: int = MAX_TABLE_BYTES,
) -> tuple[Path, bytes]:
    """Read a file the instance names at ``field`` (an include, a slot table, a distance
    or recirculation matrix), relative to the file that names it; every refusal is an
    error at that field."""
    named = named_path(document, path, field, relative)
    try:
        tree.check(named)
        return named, read_limited(named, limit)
    except FieldProblem as exc:
        fix = exc.fix
        if fix == "check the path":
            fix += "; it is relative to the file that names it"
        raise document.error(field, exc.problem, fix, str(path)) from None


def _includes(document: YamlDocument, path: Path) -> list[str]:
    includes = document.data.get("include", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise document.error(
            ("include",), "must be a list of file paths", "write include: [common.yaml]", str(path)
        )
    return includes


def _check_include(
    document: YamlDocument,
    path: Path,
    field: FieldPath,
    target: Path,
    chain: tuple[Path, ...],
    files_read: int,
) -> None:
    """Refuse an include that closes a cycle, nests too deep or is one file too many,
    at its line."""
    includers = (*chain, path)
    cycle = " -> ".join(p.name for p in (*includers, target))
    refusals = (
        (
            target.resolve() in {p.resolve() for p in includers},
            f"include cycle {cycle}",
            "an included file must not include its includer, directly or through others",
        ),
        (
            len(includers) > MAX_INCLUDE_DEPTH,
            f"includes nested more than {MAX_INCLUDE_DEPTH} deep",
            "flatten the includes",
        ),
        (
            files_read > MAX_INCLUDED_FILES,
            f"the instance includes more than {MAX_INCLUDED_FILES} files in all",
            "include fewer files; merge small ones",
        ),
    )
    for refused, problem, fix in refusals:
        if refused:
            raise document.error(field, problem, fix, str(path))


def _read_includes(
    document: YamlDocument,
    path: Path,
    chain: tuple[Path, ...],
    reads: list[bytes],
    tree: FolderTree,
) -> YamlDocument:
    """``document`` (read from ``path``) merged over its includes; ``chain`` are the
    files that include it, ``reads`` the bytes of every file read so far."""
    combined = YamlDocument({}, {})
    for index, relative in enumerate(_includes(document, path)):
        field = ("include", str(index))
        target = path.parent / relative
        _check_include(document, path, field, target, chain, len(reads))
        _, raw = read_named_file(document, path, field, relative, tree, MAX_YAML_BYTES)
        reads.append(raw)
        if sum(len(r) for r in reads) > MAX_YAML_BYTES:
            raise document.error(
                field,
                f"the instance and its includes hold more than {MAX_YAML_BYTES // MIB} MiB",
                "check the includes; put large tables in a slots_csv",
                str(path),
            )
        included = _read_includes(parse_yaml(raw, str(target)), target, (*chain, path), reads, tree)
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


def _read_slot_tables(
    instance: Instance, source: InstanceSource, document: YamlDocument
) -> dict[str, tuple[Path, bytes]]:
    """Read each hall's ``slots_csv``."""
    return {
        hall_id: read_named_file(
            document, source.path, ("halls", hall_id, "slots_csv"), hall.slots_csv, source.tree
        )
        for hall_id, hall in instance.halls.items()
        if hall.slots_csv is not None
    }


def _csv_text(table: tuple[Path, bytes]) -> tuple[str, str]:
    """(file name, text) of a table: a CSV decoded as UTF-8 with or without a BOM, or the
    first sheet of an ``.xlsx`` workbook as the same CSV text."""
    path, raw = table
    try:
        text = xlsx_text(raw) if path.suffix.lower() == ".xlsx" else decode_utf8(raw)
    except FieldProblem as exc:
        raise InstanceError(str(path), "", exc.problem, exc.fix) from None
    return str(path), text


ENTITY_TABLES: dict[FieldPath, type[BaseModel]] = {
    ("power", "devices"): Device,
    ("cooling", "cdus"): Cdu,
    ("cooling", "air_zones"): AirZone,
}
"""Sections whose entries may come from a table: the key names a CSV or .xlsx file, one
entry per line, instead of holding a mapping (docs/instance-format.md section 7.1)."""
_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _cell(text: str) -> bool | int | float | str:
    """A table cell as the YAML value it stands for: a boolean word (any case), a whole
    number, a finite decimal number, or text."""
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _entity_table(
    file: str, text: str, model: type[BaseModel], field: FieldPath
) -> tuple[dict[str, dict[str, Any]], dict[FieldPath, Location]]:
    """The entries of one table (id -> values) and where each is defined; every line is
    checked against ``model`` and every bad line reported at once."""
    lines = csv_lines(text)
    problems = LineProblems(file)
    rows: dict[str, dict[str, Any]] = {}
    where: dict[FieldPath, Location] = {}
    try:
        header = [column.strip() for column in next(lines, (1, []))[1]]
        check_header(file, header, ["id", *model.model_fields])
        for line, cells in lines:
            with problems.line():
                entry, values = _entity_line(file, line, header, cells, model, rows)
                rows[entry] = values
                where.update({(*field, entry, *key): (file, line) for key in [(), *values]})
    except TableProblem as exc:
        problems.add(exc.line, exc.problem, exc.fix)
    problems.raise_in_table()
    return rows, where


def _entity_line(
    file: str,
    line: int,
    header: list[str],
    cells: list[str],
    model: type[BaseModel],
    seen: dict[str, dict[str, Any]],
) -> tuple[str, dict[str, Any]]:
    """(id, values) of one line, the values typed as YAML would type them."""
    if len(cells) > len(header):
        raise InstanceError(
            file,
            "",
            f"{len(cells)} cells but the header has {len(header)} columns",
            "remove the extra cells, or name the column in the header",
            line,
        )
    values = {c: _cell(v.strip()) for c, v in zip(header, cells, strict=False) if v.strip()}
    entry = str(values.pop("id", ""))
    if not entry:
        raise InstanceError(file, "id", "empty id", "give every line an id", line)
    if entry in seen:
        raise InstanceError(file, "id", f"{entry!r} is listed twice", "list each id once", line)
    try:
        model.model_validate(values)
    except ValidationError as exc:
        details = _pick(exc.errors())
        loc = tuple(str(p) for p in details["loc"])
        raise InstanceError(file, ".".join(loc), *explain(details, loc), line) from None
    return entry, values


def _expand_tables(
    document: YamlDocument, source: InstanceSource
) -> tuple[YamlDocument, list[bytes]]:
    """``document`` with every :data:`ENTITY_TABLES` section that names a file replaced
    by the file's entries, located at their lines so later errors point there; and the
    bytes of the tables read (for the instance hash)."""
    data, locations, raws = document.data, dict(document.locations), []
    for field, model in ENTITY_TABLES.items():
        section = data.get(field[0]) if isinstance(data, dict) else None
        named = section.get(field[1]) if isinstance(section, dict) else None
        if not isinstance(named, str):
            continue
        table = read_named_file(document, source.path, field, named, source.tree)
        rows, where = _entity_table(*_csv_text(table), model, field)
        data = {**data, field[0]: {**section, field[1]: rows}}
        locations.update(where)
        raws.append(table[1])
    return YamlDocument(data, locations), raws


def read_instance_document(path: str | Path, tree: FolderTree | None = None) -> InstanceSource:
    """The instance file merged over its includes, not yet validated.

    ``tree`` bounds where the files it names may lie; by default the folder tree of
    the instance file itself."""
    path = Path(path)
    tree = tree or FolderTree.around(path)
    raw = read_yaml_bytes(path)
    reads = [raw]
    document = _read_includes(parse_yaml(raw, str(path)), path, (), reads, tree)
    return InstanceSource(document, path, tree, tuple(reads))


def validate_document(
    source: InstanceSource, document: YamlDocument | None = None, extra: bytes = b""
) -> LoadedInstance:
    """Validate an instance held in memory exactly as :func:`load_instance` does.

    ``document`` replaces the source's merged document when given (a study's
    overrides applied to it); its locations say where each value came from, so errors
    point there. ``extra`` (the overrides applied, for instance) is hashed after the
    files' bytes."""
    document, entity_tables = _expand_tables(document or source.document, source)
    try:
        instance = Instance.model_validate(document.data)
    except ValidationError as exc:
        raise _validation_error(document, source.path, exc) from None
    tables = _read_slot_tables(instance, source, document)
    distance = None
    if instance.network is not None and instance.network.distance_csv is not None:
        field = ("network", "distance_csv")
        distance = read_named_file(
            document, source.path, field, instance.network.distance_csv, source.tree
        )
    matrix = None
    if instance.thermal is not None and instance.thermal.matrix_file is not None:
        field = ("thermal", "matrix_file")
        matrix = read_named_file(
            document, source.path, field, instance.thermal.matrix_file, source.tree
        )
    digest = hashlib.sha256()
    side = [*entity_tables, *(raw for _, raw in tables.values())]
    side += [found[1] for found in (distance, matrix) if found is not None]
    for raw in [*source.raw, *side]:
        digest.update(raw)
    if extra:
        digest.update(extra)
    return LoadedInstance(
        instance,
        document,
        source.path,
        digest.hexdigest(),
        {hall_id: _csv_text(table) for hall_id, table in tables.items()},
        _csv_text(distance) if distance else None,
        (str(matrix[0]), matrix[1]) if matrix else None,
    )


def load_instance(path: str | Path, allow_paths_outside: bool = False) -> LoadedInstance:
    """Parse, merge includes and validate the schema of one instance file.

    The files it names must lie in its folder tree unless ``allow_paths_outside``."""
    tree = FolderTree.around(Path(path), allow_paths_outside)
    return validate_document(read_instance_document(path, tree))
