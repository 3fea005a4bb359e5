"""Study files (format version 1): a base instance, named overrides, scenarios and sweeps.

A study expands into scenarios. Each scenario is the base instance's YAML mapping
(with its includes merged) patched by a list of overrides, then validated exactly
like an instance file (:func:`optimizer.instance.loader.validate_document`). An override is a
dotted key addressing a value that exists in the base (``power.devices.UPS-A1.rating_kw``)
and the value that replaces it; a mapping or list value replaces the whole mapping or
list. Values an override sets keep the study file's line, so a bad value is reported
at the study file, not at the base instance. The base instance and every file it names
must lie in the study's folder tree (its ``root``, by default the study file's folder)
unless the caller allows paths outside. A named scenario may also choose how a phased
build-out is planned (``solve:``: one plan or phase by phase, the phase and scenario
objectives), so one study compares a plan with the myopic plan of the same facility.
The format is described in ``docs/studies.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from optimizer.errors import (
    FieldProblem,
    InstanceError,
    RackoptError,
    did_you_mean,
)
from optimizer.instance.files import FolderTree
from optimizer.instance.loader import (
    InstanceSource,
    LoadedInstance,
    explain,
    read_instance_document,
    validate_document,
)
from optimizer.instance.overrides import Override, applied_text, apply_override
from optimizer.instance.schema import FormatVersion, Identifier, Text
from optimizer.instance.yamlio import FieldPath, YamlDocument, read_yaml
from optimizer.site.build import build_site
from optimizer.solve.options import SolveOptions

STUDY_FORMAT_VERSION = 1
BASE_SCENARIO = "base"
"""Name of the one scenario of a study without ``scenarios:`` (before sweeps)."""
MAX_SCENARIOS = 100_000
"""A sweep's product grows fast; refuse a study that would expand past this."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+=,-]")
"""Characters replaced by ``_`` in derived scenario names (they name files)."""


class ScenarioSolve(BaseModel):
    """How a named scenario is solved, where it differs from ``batch``'s options: only
    the settings that say how a phased build-out is planned (docs/studies.md 1.3). Each
    is a field of :class:`SolveOptions` and is recorded in the layout's
    ``solver_options``, so batch's reuse check sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    myopic: bool = False
    phase_objective: Literal["lexicographic", "gpu_time", "final_first"] = "lexicographic"
    scenario_objective: Literal["expected", "worst_case"] = "expected"


class StudyFile(BaseModel):
    """The study file as written; unknown keys are errors and values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    format_version: FormatVersion
    name: Identifier | None = None
    """Defaults to the study file's name without its suffix."""
    description: Text = ""
    base: Text
    """Path of the base instance, relative to the study file."""
    root: Text = "."
    """The folder (relative to the study file, which it must contain) whose tree the
    base instance and every file it names must lie in: ``..`` when the study sits in
    a folder next to the instances."""
    overrides: dict[Identifier, dict[Text, Any]] = {}
    scenarios: dict[Identifier, list[Identifier]] = {}
    sweeps: dict[Text, list[Any]] = {}
    solve: dict[Identifier, ScenarioSolve] = {}
    """Per named scenario: how it is solved, where it differs from the command line."""


@dataclass(frozen=True)
class Patch:
    """One override: the dotted key, its value, and where the study file sets it."""

    key: str
    value: Any
    source: FieldPath
    """Path of the value inside the study file (for error locations)."""


@dataclass(frozen=True)
class Scenario:
    """One expanded scenario, validated and ready to solve."""

    name: str
    named: str
    """The named scenario it comes from (``base`` when the study has none)."""
    sweep: dict[str, Any]
    """Swept key -> value of this scenario (empty without sweeps)."""
    patches: tuple[Patch, ...]
    loaded: LoadedInstance
    solve: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The solve settings its named scenario chooses under ``solve:`` (empty: none)."""

    @property
    def sha256(self) -> str:
        return self.loaded.sha256

    def options(self, given: SolveOptions) -> SolveOptions:
        """``given`` (the command line's) with the scenario's own solve settings."""
        return dataclasses.replace(given, **self.solve)


@dataclass(frozen=True)
class Study:
    name: str
    path: Path
    base: Path
    description: str
    sweep_keys: tuple[str, ...]
    scenarios: tuple[Scenario, ...]


def _error(
    document: YamlDocument, path: FieldPath, problem: str, fix: str, file: Path
) -> InstanceError:
    return document.error(path, problem, fix, str(file))


def _parse(document: YamlDocument, path: Path) -> StudyFile:
    try:
        return StudyFile.model_validate(document.data)
    except ValidationError as exc:
        error = next((e for e in exc.errors() if e["type"] == "extra_forbidden"), exc.errors()[0])
        loc = tuple(str(p) for p in error["loc"])
        if loc[-1:] == ("[key]",):
            loc = loc[:-1]
        if error["type"] == "extra_forbidden":
            allowed = (
                list(StudyFile.model_fields)
                if len(loc) == 1
                else list(ScenarioSolve.model_fields)
                if loc[0] == "solve" and len(loc) == 3
                else []
            )
            problem = f"unknown key {loc[-1]!r}"
            otherwise = "remove it" if len(loc) == 1 else f"use one of: {', '.join(allowed)}"
            fix = did_you_mean(loc[-1], allowed, otherwise) if allowed else "remove it"
        else:
            problem, fix = explain(error, loc)
        if loc == ("format_version",):
            fix = f"this rackopt reads study format_version: {STUDY_FORMAT_VERSION}"
        raise _error(document, loc, problem, fix, path) from None


def _apply(
    data: dict[str, Any],
    locations: dict[FieldPath, Any],
    patch: Patch,
    study: YamlDocument,
    study_path: Path,
) -> None:
    """Apply ``patch`` to ``data`` in place; the values it sets point at the study file."""
    written = {
        path[len(patch.source) :]: location
        for path, location in study.locations.items()
        if path[: len(patch.source)] == patch.source
    }
    try:
        apply_override(data, locations, Override(patch.key, patch.value, written))
    except FieldProblem as exc:
        raise _error(study, patch.source, exc.problem, exc.fix, study_path) from None


def sweep_label(key: str, keys: list[str] | tuple[str, ...]) -> str:
    """A sweep key's short name in scenario names: its last part, unless two sweeps share it."""
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_sweeps(spec: StudyFile, document: YamlDocument, path: Path) -> None:
    for key, values in spec.sweeps.items():
        if not values:
            raise _error(
                document, ("sweeps", key), "a sweep needs at least one value", "list values", path
            )
        for index, value in enumerate(values):
            if isinstance(value, dict | list) or value is None:
                raise _error(
                    document,
                    ("sweeps", key, str(index)),
                    f"sweep values must be single numbers, strings or booleans (got {value!r})",
                    "sweep one value at a time; use named scenarios to swap whole mappings",
                    path,
                )
        texts = [_text(v) for v in values]
        if len(set(texts)) != len(texts):
            raise _error(
                document, ("sweeps", key), "a value is listed twice", "list each value once", path
            )


def _check_scenarios(spec: StudyFile, document: YamlDocument, path: Path) -> None:
    used: set[str] = set()
    for name, names in spec.scenarios.items():
        for index, override in enumerate(names):
            if override not in spec.overrides:
                raise _error(
                    document,
                    ("scenarios", name, str(index)),
                    f"unknown override {override!r}",
                    did_you_mean(override, spec.overrides),
                    path,
                )
            used.add(override)
    unused = [o for o in spec.overrides if o not in used]
    if unused:
        fix = (
            "list it in a scenario or remove it"
            if spec.scenarios
            else "add a scenarios: section that lists it"
        )
        raise _error(
            document,
            ("overrides", unused[0]),
            f"override {unused[0]!r} is used by no scenario",
            fix,
            path,
        )


def _check_solve(spec: StudyFile, document: YamlDocument, path: Path) -> None:
    """``solve:`` names only named scenarios, and sets something for each."""
    for name, chosen in spec.solve.items():
        if name not in spec.scenarios:
            fix = (
                did_you_mean(name, spec.scenarios)
                if spec.scenarios
                else "add a scenarios: section and choose solve settings per scenario"
            )
            raise _error(document, ("solve", name), f"unknown scenario {name!r}", fix, path)
        if not chosen.model_fields_set:
            raise _error(
                document,
                ("solve", name),
                f"scenario {name!r} chooses no solve setting",
                f"give one of: {', '.join(ScenarioSolve.model_fields)}, or remove the entry",
                path,
            )


def _no_phases_to_plan(scenario: Scenario, document: YamlDocument, path: Path) -> None:
    """Solve settings on a scenario whose instance has no phases would change nothing."""
    if scenario.solve and not scenario.loaded.instance.phases:
        key = next(iter(scenario.solve))
        raise _error(
            document,
            ("solve", scenario.named, key),
            f"scenario {scenario.name!r} has no phases, so solve.{key} changes nothing",
            "choose how phases are planned only for a base instance (or scenario) with "
            "phases:, or remove the setting",
            path,
        )


def _named_patches(spec: StudyFile) -> dict[str, list[Patch]]:
    if not spec.scenarios:
        return {BASE_SCENARIO: []}
    return {
        name: [
            Patch(key, value, ("overrides", override, key))
            for override in overrides
            for key, value in spec.overrides[override].items()
        ]
        for name, overrides in spec.scenarios.items()
    }


def _points(spec: StudyFile) -> list[dict[str, tuple[int, Any]]]:
    keys = list(spec.sweeps)
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(list(enumerate(spec.sweeps[k])) for k in keys))
    ]


def scenario_name(named: str, sweep: dict[str, Any], keys: list[str], with_named: bool) -> str:
    parts = [named] if with_named else []
    parts += [f"{sweep_label(k, keys)}={_text(v)}" for k, v in sweep.items()]
    return _UNSAFE.sub("_", ",".join(parts))


def _tree(spec: StudyFile, document: YamlDocument, path: Path, allow_outside: bool) -> FolderTree:
    """The folder tree the study's files must lie in: ``root``, which must hold the study."""
    if allow_outside:
        return FolderTree(None)
    root = (path.parent / spec.root).resolve()
    if Path(spec.root).is_absolute() or not path.parent.resolve().is_relative_to(root):
        raise _error(
            document,
            ("root",),
            f"root {spec.root!r} is not a folder that holds the study file",
            "give a relative path to the study's folder or one above it, such as ..",
            path,
        )
    return FolderTree(root)


def load_study(path: str | Path, allow_paths_outside: bool = False) -> Study:
    """Read, check and expand a study file; every scenario is validated like an instance.

    The base instance and the files it names must lie in the study's ``root`` tree
    unless ``allow_paths_outside``."""
    path = Path(path)
    document = read_yaml(path)
    spec = _parse(document, path)
    _check_sweeps(spec, document, path)
    _check_scenarios(spec, document, path)
    _check_solve(spec, document, path)
    tree = _tree(spec, document, path, allow_paths_outside)
    base_path = path.parent / spec.base
    try:
        tree.check(base_path)
    except FieldProblem as exc:
        raise _error(document, ("base",), exc.problem, exc.fix, path) from None
    if not base_path.is_file():
        raise _error(
            document,
            ("base",),
            f"base instance {base_path} not found",
            "give the instance's path relative to the study file",
            path,
        )
    base = read_instance_document(base_path, tree)
    named = _named_patches(spec)
    points = _points(spec)
    if len(named) * len(points) > MAX_SCENARIOS:
        raise _error(
            document,
            ("sweeps",),
            f"the study expands to {len(named) * len(points):,} scenarios "
            f"(at most {MAX_SCENARIOS:,})",
            "sweep fewer values",
            path,
        )
    keys = list(spec.sweeps)
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for named_name, patches in named.items():
        for point in points:
            sweep = {k: v for k, (_, v) in point.items()}
            sweep_patches = [Patch(k, v, ("sweeps", k, str(i))) for k, (i, v) in point.items()]
            name = scenario_name(named_name, sweep, keys, bool(spec.scenarios) or not keys)
            if name in seen:
                raise _error(
                    document,
                    ("scenarios", named_name),
                    f"scenarios {seen[name]!r} and {named_name!r} both expand to {name!r}",
                    "rename one of them",
                    path,
                )
            seen[name] = named_name
            scenario = _scenario(
                name, named_name, sweep, (*patches, *sweep_patches), base, document, path
            )
            chosen = spec.solve.get(named_name)
            if chosen is not None:
                scenario = dataclasses.replace(
                    scenario, solve=chosen.model_dump(exclude_unset=True)
                )
                _no_phases_to_plan(scenario, document, path)
            scenarios.append(scenario)
    return Study(
        spec.name or path.stem,
        path,
        base_path,
        spec.description,
        tuple(keys),
        tuple(scenarios),
    )


def _scenario(
    name: str,
    named: str,
    sweep: dict[str, Any],
    patches: tuple[Patch, ...],
    base: InstanceSource,
    study: YamlDocument,
    study_path: Path,
) -> Scenario:
    data = copy.deepcopy(base.document.data)
    locations = dict(base.document.locations)
    for patch in patches:
        _apply(data, locations, patch, study, study_path)
    overrides = [Override(p.key, p.value, {}) for p in patches]
    applied = applied_text(overrides) if patches else ""
    try:
        loaded = validate_document(base, YamlDocument(data, locations), applied.encode())
    except InstanceError as exc:
        raise InstanceError(
            exc.file, exc.field, f"scenario {name!r}: {exc.problem}", exc.fix, exc.line
        ) from None
    return Scenario(name, named, sweep, patches, dataclasses.replace(loaded, overrides=applied))


def scenario_warnings(study: Study) -> list[tuple[str, tuple[str, ...]]]:
    """(``scenario 'name': ``, lint warnings) of each scenario that has any, found before
    any scenario is solved so that ``batch --strict`` stops before the first solve. A
    scenario whose site cannot be built is skipped here: its own solve reports why, as
    a failed scenario, and the others go on."""
    found = []
    for scenario in study.scenarios:
        try:
            warnings = build_site(scenario.loaded).warnings
        except RackoptError:
            continue
        if warnings:
            found.append((f"scenario {scenario.name!r}: ", warnings))
    return found
