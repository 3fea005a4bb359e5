"""Safe YAML reading that remembers where every value came from.

Instance files are only ever read with PyYAML's safe constructor, and every node's
tag is checked before anything is constructed: a tag that asks to construct a Python
object (or any tag the safe loader does not know) is an error naming its line, never
code execution. PyYAML silently keeps the last of two equal keys; we refuse them,
because a duplicated slot or device id is almost always a copy-paste mistake. Every
mapping key's file and line is recorded so validation errors can point at the exact
place, even inside an included file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from optimizer.errors import InstanceError

Location = tuple[str, int]  # (file, 1-based line)
FieldPath = tuple[str, ...]

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_SAFE_TAGS = frozenset(
    {tag for tag in SafeConstructor.yaml_constructors if tag is not None}
    | {_YAML_TAG_PREFIX + "merge"}
)
MAX_NODES = 1_000_000
"""Aliases can make a small file expand exponentially ("billion laughs"); refuse that."""


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

    def error(self, path: FieldPath, problem: str, fix: str, fallback_file: str) -> InstanceError:
        """An error at the file and line that define ``path`` (or its nearest parent)."""
        found = self.locate(path)
        file, line = found if found else (fallback_file, None)
        return InstanceError(file, ".".join(path), problem, fix, line)


def _syntax_error(file: str, exc: yaml.YAMLError) -> InstanceError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    # A constructor error is well-formed YAML of the wrong shape (an unhashable key).
    kind = (
        "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
    )
    return InstanceError(file, "", f"{kind}: {problem}", "fix the YAML at that line", line)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


class _Recorder:
    """Walks the node tree before construction: records every key's line and refuses
    duplicate keys, unsafe tags and scalars their tag cannot hold (``!!int abc``)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.locations: dict[FieldPath, Location] = {}
        self.nodes = 0

    def error(self, path: FieldPath, node: yaml.Node, problem: str, fix: str) -> InstanceError:
        return InstanceError(self.file, ".".join(path), problem, fix, node.start_mark.line + 1)

    def walk(self, node: yaml.Node, path: FieldPath) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(
                path, node, f"the document expands to over {MAX_NODES} values", "use fewer aliases"
            )
        self.locations.setdefault(path, (self.file, node.start_mark.line + 1))
        if node.tag not in _SAFE_TAGS:
            raise self.error(
                path,
                node,
                f"YAML tag {_short_tag(node.tag)!r} is not allowed",
                "remove the tag; instance files hold plain mappings, lists, strings and numbers",
            )
        if isinstance(node, yaml.MappingNode):
            self.walk_mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, str(index)))
        else:
            self.check_scalar(node, path)

    def walk_mapping(self, node: yaml.MappingNode, path: FieldPath) -> None:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            # A list or mapping as a key never names a field; the constructor refuses it.
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self.error(
                    (*path, key),
                    key_node,
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    "give every id once; merge or rename the two entries",
                )
            seen[key] = line
            self.locations[(*path, key)] = (self.file, line)
            self.walk(key_node, (*path, key))  # keys can carry tags too
            self.walk(value_node, (*path, key))

    def check_scalar(self, node: yaml.Node, path: FieldPath) -> None:
        try:
            SafeConstructor().construct_object(node)
        except Exception:  # PyYAML's scalar constructors fail in many ways on odd text
            raise self.error(
                path,
                node,
                f"{node.value!r} is not a valid {_short_tag(node.tag)} value",
                "correct the value or drop the tag",
            ) from None


def read_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Read one YAML file holding a mapping, safely; ``display`` names it in messages."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InstanceError(name, "", "file not found", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(name, "", f"cannot read file: {exc}", "check the path") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise InstanceError(
                name, "", "the file is empty", "write the instance's `key: value` lines"
            )
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            raise InstanceError(
                name,
                "",
                f"the file must hold a mapping at top level, not {kind}",
                "start with `key: value` lines",
                node.start_mark.line + 1,
            )
        recorder = _Recorder(name)
        recorder.walk(node, ())
        data = SafeConstructor().construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(name, exc) from None
    except RecursionError:
        raise InstanceError(name, "", "the YAML is nested too deeply", "flatten it") from None
    return YamlDocument(data, recorder.locations)


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
