"""What a user may set about a solve, gathered in one value that every stage reads.

Some settings go to HiGHS (gap, threads, seed, time limit), others steer the pipeline
around it (warm start, parts solved in parallel, the second stage's node, gap and time
budgets); :meth:`SolveOptions.highs_options` gives only the first kind.
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
    campus_frontiers: bool = False
    """Solve a facility whose parts share only the utility limit through each part's
    frontier and an exact master (optimizer.solve.campus). Off by default: on the
    benchmark campuses where the utility binds, it proves no sooner than the single
    model (docs/benchmarks.md)."""
    workers: int = 0
    """Local processes tracing a campus's frontiers at once (optimizer.solve.campus); 0 for
    one per CPU. Changes how long a solve takes, never which layout comes out, so it is
    not recorded."""
    second_stage_nodes: int = 50
    """Branch-and-bound nodes allowed to the second stage (cables, tie-break). A node
    budget, unlike a time budget, gives the same layout on every run; the primary
    objective is already proven by then, so a cut-short second stage only means a
    possibly longer cable plan or a less tidy tie-break, reported as its status."""
    second_stage_gap: float = 0.01
    """Relative gap at which the second stage stops: a cable plan within 1% of its bound
    is not worth keeping a planner waiting for."""
    second_stage_share: float = 0.4
    """Time the second stage may take, as a share of the first stage's time (at least
    :data:`optimizer.solve.highs.SECOND_STAGE_FLOOR_S`), so the answer comes about as fast as
    the proof of the GPU count: 0.4 leaves room within issue 14's 1.5 x the proof + 1 s for
    reading the instance, building the model, the check and the write (about 1 s in all),
    where 0.5 missed it by a quarter of a second on a 2,000-slot campus proven in 13 s
    (docs/benchmarks.md). 0 lifts this limit: the stage then ends only by its gap,
    its node budget or the time limit, and the same inputs always give the same layout."""

    capping_baseline: bool = False
    """Where some rack type declares a capped draw, also solve with no rack capped, so
    the summary and the layout show the GPUs capped failover gains (a second solve)."""

    phase_objective: str = "lexicographic"
    """For an instance with phases: ``lexicographic``, ``gpu_time`` or ``final_first``
    (models.phases.PhaseObjective)."""
    myopic: bool = False
    """For an instance with phases: solve phase by phase, each at its own optimum with
    the earlier racks fixed, instead of one plan over all phases."""
    scenario_objective: str = "expected"
    """For a phase with demand scenarios: value it (and each later phase) by its
    ``expected`` GPUs over the scenarios, or by its ``worst_case`` scenario
    (models.phases)."""
    myopic_baseline: bool = False
    """For an instance with phases planned as one: also solve phase by phase (a second
    solve), so the summary shows the GPUs per phase of both and what planning ahead gains."""

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
            "second_stage_gap": float(self.second_stage_gap),
            "second_stage_share": float(self.second_stage_share),
            "warm_start": bool(self.warm_start),
            "split_parts": bool(self.split_parts),
            "campus_frontiers": bool(self.campus_frontiers),
            "phase_objective": str(self.phase_objective),
            "myopic": bool(self.myopic),
            "scenario_objective": str(self.scenario_objective),
        }
