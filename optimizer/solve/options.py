"""What a user may set about a solve, gathered in one value that every stage reads.

Some settings go to HiGHS (gap, threads, seed, time limit), others steer the pipeline
around it (warm start, parts solved in parallel, the second-stage node budget); the
HiGHS adapter (:mod:`optimizer.solve.highs`) reads only the first kind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SolveOptions:
    """Solver settings a user may set; defaults favour proven optima on small machines."""

    time_limit: float | None = None
    gap: float = 1e-4
    threads: int = 1
    seed: int = 0
    verbose: bool = False
    warm_start: bool = True
    """Start HiGHS from the greedy layout (optimizer.solve.greedy); see docs/benchmarks.md for
    what it changes."""
    split_parts: bool = True
    """Solve parts of the facility that share no constraint separately, in parallel
    (optimizer.solve.decompose); live progress is shown only for a single part."""
    second_stage_nodes: int = 50
    """Branch-and-bound nodes allowed to the second stage (cables, tie-break). A node
    budget, unlike a time budget, gives the same layout on every run; the primary
    objective is already proven by then, so a cut-short second stage only means a
    possibly longer cable plan or a less tidy tie-break, reported as its status."""

    capping_baseline: bool = False
    """Where some rack type declares a capped draw, also solve with no rack capped, so
    the summary and the layout show the GPUs capped failover gains (a second solve)."""

    phase_objective: str = "lexicographic"
    """For an instance with phases: ``lexicographic``, ``gpu_time`` or ``final_first``
    (models.phases.PhaseObjective)."""
    myopic: bool = False
    """For an instance with phases: solve phase by phase, each at its own optimum with
    the earlier racks fixed, instead of one plan over all phases."""

    def highs_options(self) -> dict[str, float | int | bool | str]:
        """The settings HiGHS takes, under HiGHS's own option names."""
        options: dict[str, float | int | bool | str] = {
            "mip_rel_gap": float(self.gap),
            "threads": int(self.threads),
            "random_seed": int(self.seed),
            "output_flag": bool(self.verbose),
        }
        if self.time_limit is not None:
            options["time_limit"] = float(self.time_limit)
        return options

    def recorded(self) -> dict[str, float | int | bool | str]:
        """Every setting that can change which layout comes out, as a layout records it
        (its ``solver_options`` attribute) and as ``batch`` compares it before reusing a
        saved layout."""
        return {
            **self.highs_options(),
            "second_stage_nodes": int(self.second_stage_nodes),
            "warm_start": bool(self.warm_start),
            "split_parts": bool(self.split_parts),
        }
