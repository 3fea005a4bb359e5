"""The solve summary says where and why: per-row fill recomputed from the layout, a
demanded type with no rack and its reason, the cable plan's gap, and what one more rack
would need. Hall by hand:

Two rows of two air slots, each dual-corded on a 2N pair of 200 kW UPS (derating 1), so
the surviving UPS carries every rack: IT <= 200 kW. Type ``r``: 8 GPUs, 64 kW; type
``big``: 4 GPUs, 50 kW. Three ``r`` (24 GPUs, 192 kW) beat every mix with ``big``
(2 r + 1 big = 20 GPUs; 3 r + 1 big = 242 kW > 200), so ``big`` gets no rack: in the free
slot it would put 192 + 50 = 242 kW on the surviving UPS, 42 kW over. One more ``r``
would put 256 kW there: 56 kW more on each side.
"""

from __future__ import annotations

import numpy as np
import pytest
from factory import EXACT, instance, rack, row, site_of

from optimizer.results.summary import (
    WIDTH,
    ToPlaceMore,
    fitted,
    row_fill,
    second_stage_text,
    summary_lines,
    to_place_more,
)
from optimizer.solve.pipeline import solve_site
from optimizer.verify.check import EMPTY
from optimizer.verify.headroom import next_rack


def two_rows() -> dict:
    return instance(
        rows={"R1": row(2, ["UPS-A", "UPS-B"]), "R2": {**row(2, ["UPS-A", "UPS-B"])}},
        devices={side: {"rating_kw": 200, "derating": 1.0} for side in ("UPS-A", "UPS-B")},
        rack_types={"r": rack(8, 64), "big": rack(4, 50)},
    )


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    site = site_of(tmp_path_factory.mktemp("summary"), two_rows())
    return solve_site(site, EXACT)


def test_every_row_shows_its_fill_recomputed_from_the_layout(solved):
    site, placed = solved.site, solved.placement
    fills = row_fill(site, placed)
    assert [(f.hall, f.row) for f in fills] == [("H", "R1"), ("H", "R2")]
    for f in fills:
        in_row = placed[np.array([r == f.row for r in site.slot_row])]
        racks = in_row[in_row != EMPTY]
        assert f.racks == len(racks)
        assert f.gpus == sum(site.rack_types[t].gpus for t in racks)
        assert f.it_kw == pytest.approx(sum(site.rack_types[t].it_kw for t in racks))
        # Dual-corded: either UPS may carry the whole row, so its 200 kW failover limit.
        assert (f.limit_kw, f.limited_by) == (200.0, "UPS-A")
        assert f.it_kw <= f.limit_kw
    assert sum(f.racks for f in fills) == 3 and sum(f.gpus for f in fills) == 24
    lines = summary_lines(solved)
    assert "  hall H: 3 racks, 24 GPUs, 192.0 kW IT" in lines
    for f in fills:
        expected = f"    {f.row} {f.racks:>4} racks {f.gpus:>7,} GPUs {f.it_kw:>9,.1f} of 200.0 kW"
        assert expected in lines


def test_a_demanded_type_with_no_rack_is_listed_with_its_reason(solved):
    assert solved.outcome.objective == 24
    lines = summary_lines(solved)
    first = next(i for i, line in enumerate(lines) if line.startswith("  big "))
    end = next(i for i, line in enumerate(lines) if line.startswith("  total "))
    text = " ".join(" ".join(line.split()) for line in lines[first:end])
    # Which free slot is closest depends on which of the tied layouts came out: not asserted.
    assert text.startswith("big 0 racks: blocked in every place; closest H-")
    assert text.endswith(": UPS-A (if UPS-B fails) over by 42.0 kW")  # 192 + 50 - 200


def test_to_place_more_names_what_one_more_rack_would_need(solved):
    site = solved.site
    more = to_place_more(site, lambda t: next_rack(site, solved.layout, site.rack_types[t].name))
    assert (more.rack_type, more.racks, more.gpus) == ("r", 1, 8)
    (needs,) = more.options  # every free slot needs the same
    assert [(r.label, round(r.excess, 6)) for r in needs] == [
        ("UPS-A (if UPS-B fails)", 56.0),  # 4 x 64 - 200
        ("UPS-B (if UPS-A fails)", 56.0),
    ]
    assert more.describe() == (
        "to place 1 more r (8 GPUs): add 56.0 kW to UPS-A (if UPS-B fails) "
        "and 56.0 kW to UPS-B (if UPS-A fails)"
    )
    text = " ".join(line.strip() for line in summary_lines(solved))
    assert more.describe() in text


def test_the_cable_plan_gap_is_shown_and_every_line_fits(solved):
    lines = summary_lines(solved)
    assert any(line.startswith("cable plan (second stage):") for line in lines)
    assert all(len(line) <= WIDTH for line in lines)
    assert second_stage_text("node budget reached, gap 7.6%", 0.0761) == (
        "cable plan (second stage): gap 7.61%, node budget reached"
    )
    assert second_stage_text("not needed", None) == "cable plan (second stage): not needed"


def test_a_long_line_breaks_after_commas_within_the_width():
    line = "times: " + ", ".join(f"phase{i} {i}.00s" for i in range(20))
    parts = fitted(line)
    assert len(parts) > 1 and all(len(p) <= WIDTH for p in parts)
    assert " ".join(p.strip() for p in parts) == line


def test_when_no_place_is_left_the_line_says_why_instead_of_what_to_add():
    more = ToPlaceMore("gpu", 8, 576, (), "7 free slots take gpu, an SU needs 8")
    assert more.describe() == (
        "to place 8 more gpu (576 GPUs): no place, 7 free slots take gpu, an SU needs 8"
    )
