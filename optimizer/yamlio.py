"""Safe YAML reading that remembers where every value came from.

Instance files are only ever loaded with PyYAML's safe loader: a tag that asks to
construct a Python object is an error, not code execution. PyYAML silently keeps
the last of two equal keys; we refuse them, because a duplicated slot or device
id is almost always a copy-paste mistake. Every mapping key's file and line is
recorded so validation errors can point at the exact place, even inside an
included file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optimizer.errors import InstanceError

Location = tuple[str, int]  # (file, 1-based line)
FieldPath = tuple[str, ...]


@dataclass
class YamlDocument:
    """Parsed data plus the location of every field path in it."""

    data: Any
    locations: dict[FieldPath, Location] = field(default_factory=dict)

    def locate(self, path: FieldPath) -> Location | None:
        """Location of the longest prefix of ``path`` that the documents define."""
        for end in range(len(path), -1, -1):
            found = self.locations.get(path[:end])
            if found is not None:
                return found
        return None


def _syntax_error(file: str, exc: yaml.YAMLError) -> InstanceError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in str(problem):
        return InstanceError(
            file,
            "",
            f"YAML tag not allowed: {problem}",
            "remove the tag; instance files hold plain mappings, lists, strings and numbers",
            line,
        )
    return InstanceError(
        file, "", f"YAML syntax error: {problem}", "fix the YAML at that line", line
    )


def _record(node: yaml.Node, path: FieldPath, file: str, out: dict[FieldPath, Location]) -> None:
    """Walk the node tree: record key lines and refuse duplicate keys."""
    out[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                dotted = ".".join((*path, key))
                raise InstanceError(
                    file,
                    dotted,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    "give every id once; merge or rename the two entries",
                    line,
                )
            seen[key] = line
            _record(value_node, (*path, key), file, out)
            out[(*path, key)] = (file, line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, (*path, str(index)), file, out)


def read_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Read one YAML file safely; ``display`` is the name used in error messages."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InstanceError(name, "", "file not found", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(name, "", f"cannot read file: {exc}", "check the path") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _syntax_error(name, exc) from None
    locations: dict[FieldPath, Location] = {}
    if node is not None:
        _record(node, (), name, locations)
    return YamlDocument(data, locations)


def merge(base: YamlDocument, top: YamlDocument) -> YamlDocument:
    """Deep-merge ``top`` over ``base``: mappings merge key by key, anything else is replaced."""

    def merged(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for key, value in b.items():
                out[key] = merged(a[key], value) if key in a else value
            return out
        return b

    return YamlDocument(merged(base.data, top.data), {**base.locations, **top.locations})
