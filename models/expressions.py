"""Linear load expressions shared by the constraint families."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyomo.environ as pyo


def class_load(
    m: pyo.ConcreteModel, class_weight: Sequence[float], type_weight: Sequence[float]
) -> pyo.Expression | float:
    """sum over (k, t) of class_weight[k] * type_weight[t] * place[k, t].

    Coefficients are converted to Python floats (numpy scalars make Pyomo
    expression building about 3x slower) and zero terms are left out.
    """
    terms = []
    for k in np.flatnonzero(np.asarray(class_weight)):
        weight = float(class_weight[k])
        for t in m.types_of_class[int(k)]:
            coefficient = weight * float(type_weight[t])
            if coefficient != 0.0:
                terms.append(coefficient * m.place[int(k), t])
    return sum(terms) if terms else 0.0
