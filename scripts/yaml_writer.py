"""A small YAML writer that keeps comments, for the generated example instances.

PyYAML drops comments, and in a generated instance the comments are the point: every
physical figure carries its public source on the line that sets it. The writer knows
three layout hints: :class:`Note` (a value with a comment on its line), :class:`Flow`
(a mapping on one line) and :class:`Remark` (full-line comments before an entry). A
list of mappings (a build-out's phases) is written as a block list.
Whatever it writes is read back with PyYAML's safe loader and compared with the data.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Note:
    """A value followed on the same line by ``# comment``."""

    value: Any
    comment: str


@dataclass(frozen=True)
class Flow:
    """A mapping written on one line, ``{a: 1, b: [x, y]}``: one line per device or slot
    keeps a 50-device power tree scannable."""

    mapping: dict[Any, Any]


@dataclass(frozen=True, eq=False)
class Remark:
    """A mapping key that is written as full-line comments before the next entry.
    ``eq=False`` makes each remark a distinct key, so a mapping may hold several."""

    text: str


_PLAIN_STRING = re.compile(r"^[A-Za-z][A-Za-z0-9_.:+/ -]*$")
COMMENT_WIDTH = 96


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        plain = _PLAIN_STRING.match(value) and yaml.safe_load(value) == value
        return value if plain and ": " not in value else json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")


def _inline(value: Any) -> str:
    if isinstance(value, Note):
        raise ValueError("a comment cannot sit inside a one-line mapping or list")
    if isinstance(value, Flow):
        value = value.mapping
    if isinstance(value, dict):
        items = ", ".join(f"{_scalar(k)}: {_inline(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return _scalar(value)


def _with_comment(line: str, comment: str) -> str:
    return f"{line}  # {comment}" if comment else line


def _block(mapping: dict[Any, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in mapping.items():
        if isinstance(key, Remark):
            width = max(COMMENT_WIDTH - indent - 2, 40)
            for paragraph in key.text.split("\n"):
                wrapped = textwrap.wrap(paragraph, width) or [""]
                lines.extend(f"{pad}# {line}".rstrip() for line in wrapped)
            continue
        comment = ""
        if isinstance(value, Note):
            value, comment = value.value, value.comment
        head = f"{pad}{_scalar(key)}:"
        if isinstance(value, dict) and value:
            lines.append(_with_comment(head, comment))
            lines.extend(_block(value, indent + 2))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(_with_comment(head, comment))  # a list of mappings, one "- " each
            for item in value:
                item_lines = _block(item, indent + 4)
                lines.append(f"{pad}  - {item_lines[0].lstrip()}")
                lines.extend(item_lines[1:])
        else:
            lines.append(_with_comment(f"{head} {_inline(value)}", comment))
    return lines


def plain(value: Any) -> Any:
    """The data without comments and layout hints: what a YAML loader should read back."""
    if isinstance(value, Note):
        return plain(value.value)
    if isinstance(value, Flow):
        return plain(value.mapping)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not isinstance(k, Remark)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def render(document: dict[Any, Any], header: str) -> str:
    """YAML text of ``document`` under a header comment.

    The text is read back with PyYAML's safe loader and compared with the data, so a
    writer bug (a string that needed quoting, say) fails here, not in a planner's solve.
    """
    head = [f"# {line}".rstrip() for line in header.strip("\n").split("\n")]
    text = "\n".join([*head, *_block(document, 0)]) + "\n"
    if yaml.safe_load(text) != plain(document):
        raise AssertionError("the YAML writer did not round-trip; fix _scalar/_inline")
    return text
