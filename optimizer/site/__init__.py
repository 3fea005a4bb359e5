"""Stage 2, validated instance -> site: the facility as flat numpy arrays.

Owns the one walk of the power tree, slot eligibility (which rack type may stand in
which slot, and why not), the network fabric and cable geometry, and the recirculation
matrix of the thermal model. The :class:`Site` it builds is what ``models/``, the
solver and the independent checker all read.
"""
