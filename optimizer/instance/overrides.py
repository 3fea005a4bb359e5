"""Overrides of an instance's values by dotted key, and the resolved instance they give.

A study's scenarios (:mod:`optimizer.studies.study`) and ``rackopt solve --set
KEY=VALUE`` change an instance the same way: a dotted key addresses a value that exists
in the instance (``power.devices.UPS-A1.rating_kw``), and the value replaces it; a
mapping or list value replaces the whole mapping or list. The patched document is then
validated exactly like an instance file, and each value an override set keeps where it
was written (a study file's line, or ``--set``), so a bad value is reported there.

The resolved instance is the instance after its includes and overrides, written as
one YAML file beside a layout so ``rackopt verify RESOLVED.yaml LAYOUT`` checks the
layout against exactly what was solved. Files it names (slot tables, distance and
recirculation matrices) are given relative to the resolved file's own folder.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from optimizer.errors import FieldProblem, InstanceError, choices, closest
from optimizer.instance.files import FolderTree
from optimizer.instance.loader import (
    InstanceSource,
    LoadedInstance,
    named_path,
    read_instance_document,
    validate_document,
)
from optimizer.instance.yamlio import FieldPath, Location, YamlDocument, parse_yaml

FIXED_KEYS = ("include",)
"""Keys read before any override applies: overriding them would change nothing."""
SET_OPTION = "--set"
"""Where a value given on the command line is said to come from, in messages."""
PATH_FIELDS: tuple[FieldPath, ...] = (("network", "distance_csv"), ("thermal", "matrix_file"))
"""Fields naming a file, besides each hall's ``slots_csv``."""


@dataclass(frozen=True)
class Override:
    """One override: the dotted key, its value, and where each part of the value was
    written (path inside the value -> file and line)."""

    key: str
    value: Any
    written: dict[FieldPath, Location]


def resolve(data: Any, key: str) -> list[Any]:
    """The keys and indices that ``key`` (dotted) addresses in ``data``; a FieldProblem
    when it addresses nothing there.

    Ids may contain dots themselves, so at each mapping the longest run of parts that
    names a key wins. Mapping keys are matched by their text (a row override ``3``)."""
    parts = key.split(".")
    found: list[Any] = []
    node = data
    i = 0
    while i < len(parts):
        where = ".".join(str(k) for k in found) or "the instance"
        if isinstance(node, dict):
            keys = {str(k): k for k in node}
            end = next((e for e in range(len(parts), i, -1) if ".".join(parts[i:e]) in keys), None)
            if end is None:
                close = closest(parts[i], keys)
                fix = (
                    f"did you mean {'.'.join([*map(str, found), close, *parts[i + 1 :]])!r}?"
                    if close
                    else f"keys of {where}: {choices(keys)}; to add a key, replace the "
                    "mapping that holds it"
                )
                raise FieldProblem(f"{parts[i]!r} is not a key of {where}", fix)
            found.append(keys[".".join(parts[i:end])])
            node = node[found[-1]]
            i = end
        elif isinstance(node, list):
            if not parts[i].isdigit() or int(parts[i]) >= len(node):
                raise FieldProblem(
                    f"{parts[i]!r} is not an index of the list {where}",
                    f"use 0..{len(node) - 1}, or replace the whole list",
                )
            found.append(int(parts[i]))
            node = node[int(parts[i])]
            i += 1
        else:
            raise FieldProblem(
                f"{where} holds a single value, so it has no key {parts[i]!r}",
                f"override {where} itself",
            )
    return found


def apply_override(
    data: dict[str, Any], locations: dict[FieldPath, Location], override: Override
) -> None:
    """Apply ``override`` to ``data`` in place and point the changed paths at where it
    was written; a FieldProblem when its key addresses nothing or cannot be overridden."""
    try:
        found = resolve(data, override.key)
    except FieldProblem as exc:
        raise FieldProblem(
            f"override of {override.key!r}, which the instance does not have: {exc.problem}",
            exc.fix,
        ) from None
    if found[0] in FIXED_KEYS:
        raise FieldProblem(
            f"{found[0]!r} cannot be overridden: it is read before overrides apply, so "
            "the override would change nothing",
            "override the values the included files set, or give another base instance",
        )
    node = data
    for part in found[:-1]:
        node = node[part]
    node[found[-1]] = copy.deepcopy(override.value)
    target = tuple(str(p) for p in found)
    for path in [p for p in locations if p[: len(target)] == target]:
        del locations[path]
    for path, location in override.written.items():
        locations[target + path] = location


def applied_text(overrides: list[Override] | tuple[Override, ...]) -> str:
    """The overrides as JSON ``[[key, value], ...]``: hashed into the instance's SHA-256
    and recorded in the layout's ``overrides`` attribute."""
    return json.dumps([[o.key, o.value] for o in overrides], sort_keys=True, default=str)


def with_overrides(
    source: InstanceSource, overrides: list[Override] | tuple[Override, ...]
) -> LoadedInstance:
    """``source`` with ``overrides`` applied in order, validated like an instance file.
    A key that addresses nothing is an error at ``--set`` (a study reports its own)."""
    data = copy.deepcopy(source.document.data)
    locations = dict(source.document.locations)
    for override in overrides:
        try:
            apply_override(data, locations, override)
        except FieldProblem as exc:
            raise InstanceError(SET_OPTION, override.key, exc.problem, exc.fix) from None
    applied = applied_text(overrides) if overrides else ""
    loaded = validate_document(source, YamlDocument(data, locations), applied.encode())
    return replace(loaded, overrides=applied)


def parse_setting(text: str) -> Override:
    """``KEY=VALUE`` of ``--set``: VALUE is read as YAML (a scalar or a flow list or
    mapping such as ``[UPS-A, UPS-B]``), as strictly as an instance file."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InstanceError(
            SET_OPTION, text, "expected KEY=VALUE", "write --set power.devices.UPS-A.rating_kw=600"
        )
    if "\n" in value or "\r" in value:
        raise InstanceError(SET_OPTION, key, "the value spans lines", "write it on one line")
    try:
        document = parse_yaml(f"value: {value}".encode(), SET_OPTION)
    except InstanceError as exc:
        raise InstanceError(SET_OPTION, key, exc.problem, exc.fix) from None
    written = {path[1:]: (SET_OPTION, 0) for path in document.locations if path[:1] == ("value",)}
    return Override(key, document.data["value"], written)


def load_with_settings(
    path: str | Path, settings: list[str] | tuple[str, ...], allow_paths_outside: bool = False
) -> LoadedInstance:
    """An instance file with ``--set KEY=VALUE`` settings applied (none: as loaded)."""
    tree = FolderTree.around(Path(path), allow_paths_outside)
    source = read_instance_document(path, tree)
    return with_overrides(source, [parse_setting(s) for s in settings])


def resolved_instance(loaded: LoadedInstance, target: Path) -> str:
    """The YAML of ``loaded`` as one file to be written at ``target``: includes merged
    (so no ``include`` key), overrides applied, and every file it names given relative
    to ``target``'s folder. Verifying with it needs ``--allow-paths-outside`` only when
    a named file lies outside that folder's tree (a relative path with ``..``)."""
    data = copy.deepcopy(loaded.document.data)
    data.pop("include", None)
    fields = [("halls", str(hall), "slots_csv") for hall in data.get("halls", {})]
    folder = target.resolve().parent
    for field in [*fields, *PATH_FIELDS]:
        node = data
        for part in field[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(field[-1]), str):
            continue
        named = named_path(loaded.document, loaded.path, field, node[field[-1]])
        node[field[-1]] = os.path.relpath(named.resolve(), folder)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
