"""Power: every device within its limit in normal operation and after any single failure.

With P_t the IT load of a rack of type t and s_kd the share of a rack's load that
device d carries (a dual-corded rack puts ``primary_share`` on its first feed and
the rest on its second, and each feed's share flows up through every ancestor):

    sum_{k,t} s_kd P_t place[k, t] <= rating_d x derating_d          (power-normal)

For every device f that can fail and every device d that is still powered, with
s^f_kd the share after f fails (a rack that loses one feed puts its whole load on
the other; a rack that loses both is down):

    sum_{k,t} s^f_kd C_t place[k, t] <= failover_limit_d             (power-failover)

where C_t is the rack's failover draw: P_t, or for a rack type that declares a capped
draw (``capped_kw`` or ``capped_fraction``) that lower figure. Capped failover assumes
the power-management system caps every such rack drawing through d within the
overload ride-through of d after f fails (docs/formulation.md, section 5.5); normal
rows always count the full P_t.

This one rule covers 2N, N+1, distributed xN/y and block/catcher topologies; which
scheme a facility uses is read from its tree and its slots' feeds. Only pairs (f, d)
where some load moves onto d get a row (see models.data.build_model_data).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from models.data import ModelData
from models.expressions import class_load


def add_power(m: pyo.ConcreteModel, data: ModelData) -> None:
    site = data.site
    it_kw = [t.it_kw for t in site.rack_types]
    failover_kw = [t.failover_kw for t in site.rack_types]
    loaded = [int(d) for d in np.flatnonzero(data.normal_share.any(axis=0))]

    def normal_rule(_m: pyo.ConcreteModel, d: int) -> pyo.Expression:
        return class_load(m, data.normal_share[:, d], it_kw) <= float(site.device_limit_kw[d])

    m.power_normal = pyo.Constraint(loaded, rule=normal_rule)

    def failover_rule(_m: pyo.ConcreteModel, i: int) -> pyo.Expression:
        row = data.failover_rows[i]
        limit = float(site.device_failover_limit_kw[row.device])
        return class_load(m, row.share, failover_kw) <= limit

    m.power_failover = pyo.Constraint(range(len(data.failover_rows)), rule=failover_rule)
