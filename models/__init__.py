"""The Pyomo formulation of rack placement, one module per constraint family.

:func:`models.build.build_model` lists the families in the order they are built.
"""
