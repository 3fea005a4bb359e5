"""Studies: many scenarios of one instance, solved in batches and compared side by side.

Owns study files (overrides, scenarios, sweeps), the batch runner (local processes or
dask.distributed, reached through :mod:`.cluster`), the comparison table and the
floor-plan reports.
"""
