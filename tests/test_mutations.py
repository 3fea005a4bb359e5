"""Property: a shipped instance with one field set to a hostile value is refused with one
clear line, or loads with exactly that value, never anything else.

Each example takes a shipped instance, picks one field (any mapping key or list item,
at any depth) and sets it to a hostile value (a boolean, NaN or infinity, a huge or
negative number, text with control characters or other scripts, a list, a mapping,
null), or renames one key to hostile text. Then loading and building the site must
either raise an :class:`InstanceError` whose message is one printable line naming the
file and a field, with a fix (exit code 2 at the CLI), or succeed with the loaded value
equal to the value written, of a compatible type: a boolean read as a number, a number
read from text, a key that collapses into another would all change the answer without
a word. Any other exception is a crash (exit code 70 at the CLI).
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from optimizer.errors import InstanceError
from optimizer.instance.loader import load_instance
from optimizer.site.build import build_site

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    name: yaml.safe_load((ROOT / "instances" / f"{name}.yaml").read_text("utf-8"))
    for name in ("tutorial", "air-hall", "retrofit-hall", "gb300-hall")
}
Path_ = tuple[Any, ...]


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every mapping key and list index below ``node``, at any depth."""
    found: list[Path_] = []
    if isinstance(node, dict):
        items = list(node.items())
    else:
        items = list(enumerate(node)) if isinstance(node, list) else []
    for key, value in items:
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


PATHS = [(name, path) for name, data in SHIPPED.items() for path in _paths(data)]

_CONTROL = st.sampled_from(["\x1b[2J", "a\x00b", "line\nbreak", "\u202eevil", "\x07", "tab\there"])
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
HOSTILE = st.one_of(
    st.booleans(),
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -0.0, 5e-324, 1e308]),
    st.sampled_from([2**31, 2**53 + 1, 2**63, 2**70, 10**30, -(2**63)]),
    st.integers(min_value=-10, max_value=10),
    st.floats(min_value=-1e12, max_value=-1e-9),
    st.floats(min_value=0, max_value=1e12, allow_nan=False),
    _CONTROL,
    _TEXT,
    st.sampled_from(["yes", "no", "on", "1", "1e3", "0x10", "~", "", " ", "null", "UPS-A"]),
    st.lists(st.one_of(st.integers(-3, 3), st.booleans(), _TEXT), max_size=3),
    st.dictionaries(_TEXT, st.one_of(st.integers(-3, 3), st.booleans(), st.none()), max_size=2),
)


def _set(data: Any, path: Path_, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _rename(data: Any, path: Path_, key: Any) -> bool:
    """Rename the mapping key at ``path`` to ``key`` in place (keeping its place)."""
    *parents, old = path
    for part in parents:
        data = data[part]
    if not isinstance(data, dict) or key in data:
        return False
    items = [(key if k == old else k, v) for k, v in data.items()]
    data.clear()
    data.update(items)
    return True


def _loaded_at(model: Any, path: Path_) -> Any:
    """The value the validated instance holds at ``path`` (model fields or mapping keys)."""
    for part in path:
        if isinstance(model, BaseModel):
            model = getattr(model, part)
        elif isinstance(model, dict):
            model = model[part]
        else:
            model = model[part]
    return model


def _holds(loaded: Any, written: Any) -> bool:
    """Whether ``loaded`` is what ``written`` says, without a change of kind."""
    if written is None:
        return loaded is None
    if isinstance(written, bool):
        return isinstance(loaded, bool) and loaded == written
    if isinstance(written, int | float):
        return (
            isinstance(loaded, int | float) and not isinstance(loaded, bool) and loaded == written
        )
    if isinstance(written, str):
        return isinstance(loaded, str) and loaded == written
    if isinstance(written, list):
        return (
            isinstance(loaded, list | tuple)
            and len(loaded) == len(written)
            and all(_holds(a, b) for a, b in zip(loaded, written, strict=True))
        )
    if isinstance(written, dict):
        if isinstance(loaded, BaseModel):
            return all(k in type(loaded).model_fields for k in written) and all(
                _holds(getattr(loaded, k), v) for k, v in written.items()
            )
        return (
            isinstance(loaded, dict)
            and set(loaded) == set(written)
            and all(_holds(loaded[k], v) for k, v in written.items())
        )
    return False


def _check_refusal(error: InstanceError, folder: Path) -> None:
    """One printable line: ``FILE[:LINE]: FIELD: problem (fix: ...)`` about our file."""
    text = str(error)
    assert "\n" not in text and all(c.isprintable() for c in text), repr(text)
    assert error.file.startswith(str(folder)), text
    assert re.match(re.escape(error.file) + r"(:\d+)?: \S", text), text
    assert error.field, f"no field named: {text}"
    assert "(fix: " in text, text


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(PATHS),
    value=HOSTILE,
    rename=st.booleans(),
)
def test_hostile_value_is_refused_or_read_as_written(target, value, rename):
    name, path = target
    data = yaml.safe_load(yaml.safe_dump(SHIPPED[name]))
    renamed = rename and isinstance(value, str) and _rename(data, path, value)
    if not renamed:
        _set(data, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        file = folder / f"{name}.yaml"
        file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        try:
            loaded = load_instance(file)
            build_site(loaded)
        except InstanceError as error:
            _check_refusal(error, folder)
            return
    if renamed:
        parent = _loaded_at(loaded.instance, path[:-1])
        assert isinstance(parent, dict) and value in parent, (path, value)
        return
    assert _holds(_loaded_at(loaded.instance, path), value), (
        f"{name}: {'.'.join(map(str, path))} = {value!r} loaded as "
        f"{_loaded_at(loaded.instance, path)!r}"
    )
