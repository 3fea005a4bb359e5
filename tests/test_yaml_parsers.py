"""libyaml parses instance files when PyYAML has it, and must change nothing but speed:
the same node tree with the same lines for every text it accepts, the same error (word
for word, same line) for every text either parser refuses, the same strictness checks
after parsing (tags, duplicate keys, merges, depth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.errors import InstanceError
from optimizer.instance import yamlio

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    getattr(yaml, "CSafeLoader", None) is None, reason="PyYAML built without libyaml"
)
SHIPPED = sorted(
    [*ROOT.glob("instances/*.yaml"), *ROOT.glob("studies/*.yaml"), *ROOT.glob("tests/**/*.yaml")]
)
TRICKY = [
    "a: &x {b: 1, c: [2, 3]}\nd:\n  <<: *x\n  c: 4\n",
    "a: &x {b: 1}\ne: &y {b: 2, f: 3}\nd: {<<: [*x, *y], g: 5}\n",
    "s: 'it''s'\nt: \"tab\\there \\u00e9 \\x41\"\nu: |\n  two\n  lines\nv: >\n  folded\n  text\n",
    "# comment\nlist:\n- 1\n- 2.5\n-   - nested\n    - .inf\n- ~\n- null\n- yes\n- 0x1F\n- 0o17\n",
    "k: v\r\nw: x\r\n",
    "\ufeffbom: 1\n",
    "? complex\n: value\n",
    "a: !!str 5\nb: !!int '7'\nc: !!float 1\n",
    "a: 2024-05-01\n",
    "a: !!set {x, y}\n",
    "a: !!python/object:os.system {}\n",
    "a: 1\na: 2\n",
    "2: x\n02: y\n",
    "a: [1, 2\n",
    "a: b: c\n",
    "a:\n\t- 1\n",
    "a: *missing\n",
    "- just\n- a list\n",
    "",
    "a: \x07bell\n",
    "%YAML 1.1\n---\na: 1\n",
    "a: 1\n---\nb: 2\n",
    "a: 'unterminated\n",
    "{" * 70 + "}" * 70,
    "[" * 2000 + "]" * 2000,
    "".join(f"{'  ' * i}k{i}:\n" for i in range(70)) + "  " * 70 + "v\n",
]


def _shape(node: yaml.Node, seen: dict[int, int]) -> Any:
    """Everything of a node tree the rest of the loader reads: kinds, tags, values,
    styles, lines and columns, and which nodes are one node (aliases)."""
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    where = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):  # a plain style is None or '' (both read as plain)
        return ("scalar", node.tag, node.value, node.style or None, where)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, where, [_shape(n, seen) for n in node.value])
    return (
        "map",
        node.tag,
        where,
        [(_shape(k, seen), _shape(v, seen)) for k, v in node.value],
    )


def _outcome(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What parse_yaml makes of ``text`` with or without libyaml: the data and every
    recorded line, or the error message."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(yamlio, "_FAST_LOADER", None)
        try:
            document = yamlio.parse_yaml(text.encode(), "f.yaml")
        except InstanceError as exc:
            return ("error", str(exc))
    return ("ok", repr(document.data), sorted(document.locations.items()))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_parsers_give_the_same_tree_for_every_shipped_file(path):
    text = path.read_text(encoding="utf-8")
    fast = yaml.compose(text, Loader=yaml.CSafeLoader)
    slow = yaml.compose(text, Loader=yaml.SafeLoader)
    assert _shape(fast, {}) == _shape(slow, {})


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_both_parsers_read_and_refuse_alike(text, monkeypatch):
    assert _outcome(text, True, monkeypatch) == _outcome(text, False, monkeypatch)


def test_too_deep_a_document_is_refused_whichever_parser_reads_it(monkeypatch):
    deep = "".join(f"{'  ' * i}k{i}:\n" for i in range(yamlio.MAX_DEPTH + 1))
    deep += "  " * (yamlio.MAX_DEPTH + 1) + "v\n"
    for fast in (True, False):
        assert _outcome(deep, fast, monkeypatch) == (
            "error",
            "f.yaml: the YAML is nested too deeply (fix: flatten it)",
        )


PIECES = [
    *"ab1.:-[]{},&*<'\"\\ #\n~=!?|>%\t",
    *["\n  ", ": ", "- ", "\n- ", "key: ", "<<: ", "&x ", "*x", "---\n", "'a'", '"\\x41"'],
    *[" # 80% > x!?|\n", "#", " #"],
]
"""Characters and tokens of YAML's syntax, and comments that hold the characters that
keep a text from libyaml when they are outside a comment."""


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
def test_random_text_reads_and_fails_alike(monkeypatch, text):
    assert _outcome(text, True, monkeypatch) == _outcome(text, False, monkeypatch)


@pytest.mark.parametrize("name", ["gb300-hall.yaml", "retrofit-hall.yaml"])
def test_the_shipped_halls_are_read_by_libyaml(name):
    """The speed-up reaches real files: comments full of '%' and '>=' do not keep
    them from libyaml, a '>' or '%' outside a comment does."""
    text = (ROOT / "instances" / name).read_text(encoding="utf-8")
    assert yamlio._FAST_LOADER is yaml.CSafeLoader
    assert yamlio._libyaml_reads_alike(text)
    assert not yamlio._libyaml_reads_alike(text + "note: >\n  folded\n")
    assert not yamlio._libyaml_reads_alike("%YAML 1.1\n---\n" + text)
