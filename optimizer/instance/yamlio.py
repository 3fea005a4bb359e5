"""Safe YAML reading that remembers where every value came from.

Instance files are only ever read with PyYAML's safe constructor, and every node's
tag is checked before anything is constructed: only plain mappings, lists, strings,
numbers, booleans and nulls are allowed. A tag that asks to construct a Python object
is an error naming its line, never code execution; so is a set (``!!set``, whose order
would follow the hash seed), an ordered map, binary data or a date (quote it).
PyYAML silently keeps the last of two equal keys; we refuse them, comparing keys by
the value YAML reads (``2``, ``02``, ``2.0`` and ``0x2`` are one key), because a
duplicated slot or device id is almost always a copy-paste mistake. The merge key
``<<`` works as in YAML 1.1: the mapping's own keys win over merged ones. Every
mapping key's file and line is recorded so validation errors can point at the exact
place, even inside an included file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from optimizer.errors import FieldProblem, InstanceError
from optimizer.instance.files import MAX_YAML_BYTES, decode_utf8, read_limited

Location = tuple[str, int]  # (file, 1-based line)
FieldPath = tuple[str, ...]

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _YAML_TAG_PREFIX + kind for kind in ("null", "bool", "int", "float", "str", "seq", "map")
)
_MERGE_TAG = _YAML_TAG_PREFIX + "merge"
_DATE_TAG = _YAML_TAG_PREFIX + "timestamp"
MAX_NODES = 1_000_000
"""Aliases can make a small file expand exponentially ("billion laughs"); refuse that."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (an instance needs under ten levels). Bounded
here, not by whichever parser runs out of stack first, so the C and the pure-Python
parser accept exactly the same documents."""
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
"""libyaml's parser, when PyYAML was built with it: about ten times faster on a large
instance; everything after parsing (tags, keys, merges, lines) is the same Python code."""
_LIBYAML_DIFFERS = re.compile(r"[\t!?|>%]")
_COMMENT = re.compile(r"^([^'\"#\n]*?)(?:(?<=\s)|^)#[^\n]*", re.MULTILINE)
"""What looks like a comment (no quote or ``#`` before it on its line), and the text
before it."""
_NESTED_TOO_DEEPLY = ("the YAML is nested too deeply", "flatten it")


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
    duplicate keys, tags other than the plain ones and scalars their tag cannot hold
    (``!!int abc``)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.locations: dict[FieldPath, Location] = {}
        self.nodes = 0

    def error(self, path: FieldPath, node: yaml.Node, problem: str, fix: str) -> InstanceError:
        return InstanceError(self.file, ".".join(path), problem, fix, node.start_mark.line + 1)

    def walk(self, node: yaml.Node, path: FieldPath) -> Any:
        """Check ``node`` and what is below it; returns a scalar's value (None otherwise)."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(
                path, node, f"the document expands to over {MAX_NODES} values", "use fewer aliases"
            )
        if len(path) > MAX_DEPTH:
            raise InstanceError(self.file, "", *_NESTED_TOO_DEEPLY)
        self.locations.setdefault(path, (self.file, node.start_mark.line + 1))
        self.check_tag(node, path)
        if isinstance(node, yaml.MappingNode):
            self.walk_mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, str(index)))
        else:
            return self.scalar(node, path)
        return None

    def check_tag(self, node: yaml.Node, path: FieldPath) -> None:
        if node.tag in _PLAIN_TAGS:
            return
        # A plain scalar's style is None from PyYAML's parser and '' from libyaml's.
        if node.tag == _DATE_TAG and not node.style and isinstance(node, yaml.ScalarNode):
            raise self.error(
                path, node, f"YAML reads {node.value!r} as a date", "quote it to keep it as text"
            )
        raise self.error(
            path,
            node,
            f"YAML tag {_short_tag(node.tag)!r} is not allowed",
            "remove the tag; instance files hold plain mappings, lists, strings, numbers "
            "and booleans",
        )

    def walk_mapping(self, node: yaml.MappingNode, path: FieldPath) -> None:
        """The mapping's own keys (each once), then the keys merged in by ``<<``.

        The merge is done here, on the node tree, rather than left to PyYAML: PyYAML
        6.0.4 tells merged keys apart by the identity of their string objects, so which
        of two merged mappings wins depends on whether Python interned the key. Here
        the mapping's own keys win, then the first merged mapping that has the key (YAML
        1.1); merged keys come first, in merge order, as PyYAML orders them."""
        seen: dict[Any, tuple[str, int]] = {}
        own, merged = [], []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self.merge_sources(value_node, path))
                continue
            own.append((key_node, value_node))
            key = self.key(key_node, path)
            name = str(key)
            line = key_node.start_mark.line + 1
            if key in seen:
                first, first_line = seen[key]
                same = "" if first == key_node.value else f" (reads as {key!r}, like {first!r})"
                raise self.error(
                    (*path, name),
                    key_node,
                    f"duplicate key {key_node.value!r}{same} (first at line {first_line})",
                    "give every id once; merge or rename the two entries",
                )
            seen[key] = (key_node.value, line)
            self.locations.setdefault((*path, name), (self.file, line))
            self.walk(value_node, (*path, name))
        inherited = []
        for source in merged:
            self.walk(source, path)  # merges within the source first; records its lines
            for key_node, value_node in source.value:
                key = self.key(key_node, path)
                if key not in seen:
                    seen[key] = (key_node.value, key_node.start_mark.line + 1)
                    inherited.append((key_node, value_node))
        if merged:
            node.value = inherited + own

    def key(self, node: yaml.Node, path: FieldPath) -> Any:
        """The value of a mapping key, which must be a plain single value."""
        if not isinstance(node, yaml.ScalarNode):
            self.walk(node, (*path, "?"))
            raise self.error(
                (*path, "?"), node, "a key must be a single value", "write a plain key"
            )
        self.nodes += 1
        self.check_tag(node, (*path, node.value))
        return self.scalar(node, (*path, node.value))

    def merge_sources(self, node: yaml.Node, path: FieldPath) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` key names: one mapping (usually an alias) or a list."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if not all(isinstance(s, yaml.MappingNode) for s in sources):
            raise self.error(
                (*path, "<<"),
                node,
                "a merge key << must name a mapping or a list of mappings",
                "write <<: *anchor where the anchor marks a mapping",
            )
        return sources

    def scalar(self, node: yaml.ScalarNode, path: FieldPath) -> Any:
        try:
            return SafeConstructor().construct_object(node)
        except Exception:  # PyYAML's scalar constructors fail in many ways on odd text
            raise self.error(
                path,
                node,
                f"{node.value!r} is not a valid {_short_tag(node.tag)} value",
                "correct the value or drop the tag",
            ) from None


def _libyaml_reads_alike(text: str) -> bool:
    """Whether libyaml reads ``text`` exactly as the Python parser does. Not when it holds
    a tab, a tag or a non-specific tag (``!``), a complex key (``?``), a block scalar
    (``|``, ``>``) or a directive (``%``), where libyaml accepts what the Python parser
    refuses (or resolves an empty value differently); nor a character the Python reader
    refuses. Comments may hold them (``# 80%``, ``# >= 8 x 136 kW``), so what looks like
    a comment (a ``#`` after a space, with no quote before it on its line) is left out
    of the search; should that be the inside of a quoted text instead, it is content,
    which both parsers read alike. Instance files seldom use any of these characters
    outside comments and quotes; those that do are read in Python."""
    if yaml.reader.Reader.NON_PRINTABLE.search(text):
        return False
    return not _LIBYAML_DIFFERS.search(_COMMENT.sub(r"\1", text))


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``: by libyaml when it is available and reads the text
    alike (:func:`_libyaml_reads_alike`), else by PyYAML's pure-Python parser. Whatever
    libyaml refuses, or does not read as a mapping, is parsed again in Python, so every
    error reads exactly as before (message and line). tests/test_yaml_parsers.py checks
    that both give the same tree, with the same lines, for every other text."""
    if _FAST_LOADER is not None and _libyaml_reads_alike(text):
        try:
            node = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            node = None  # reported by the pure-Python parser below, in its words
        if isinstance(node, yaml.MappingNode):
            return node
    return yaml.compose(text, Loader=yaml.SafeLoader)


def parse_yaml(raw: bytes, name: str) -> YamlDocument:
    """Parse one YAML file's bytes holding a mapping, safely; ``name`` names it in messages."""
    try:
        text = decode_utf8(raw)
    except FieldProblem as exc:
        raise InstanceError(name, "", exc.problem, exc.fix) from None
    try:
        node = compose(text)
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
        raise InstanceError(name, "", *_NESTED_TOO_DEEPLY) from None
    return YamlDocument(data, recorder.locations)


def read_yaml_bytes(path: Path) -> bytes:
    """The bytes of a YAML file the user named (an instance or a study); errors name it."""
    try:
        return read_limited(path, MAX_YAML_BYTES)
    except FieldProblem as exc:
        raise InstanceError(str(path), "", exc.problem, exc.fix) from None


def read_yaml(path: Path) -> YamlDocument:
    """Read and parse a YAML file the user named."""
    return parse_yaml(read_yaml_bytes(path), str(path))


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
