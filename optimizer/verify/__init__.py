"""Independent checks of a layout: every rule recomputed from the layout alone.

Owns the checker (:mod:`.check`, plain numpy), the resource table every output names
capacities from (:mod:`.resources`) and ``next`` (:mod:`.headroom`). Imports
no model and no solver: a layout is trusted because this package, written apart from
the formulation, agrees with it.
"""
