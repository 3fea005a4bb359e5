"""Stage 1, file -> validated instance.

Owns the instance format: YAML read with line numbers (:mod:`.yamlio`), the pydantic
schema (:mod:`.schema`), the rack catalog with its sources (:mod:`.catalog`), includes
and side tables (:mod:`.loader`). Hands a :class:`~optimizer.instance.loader.LoadedInstance`
to :mod:`optimizer.site`; knows nothing of the model or the solver.
"""
