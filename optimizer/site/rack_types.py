"""An instance's rack types resolved against the catalog into the figures the site needs."""

from __future__ import annotations

from optimizer.errors import FieldProblem, choices, did_you_mean
from optimizer.instance.catalog import DEFAULT_FLOW_LPM_PER_KW, REQUIRED_FIELDS, catalog
from optimizer.instance.schema import RackType
from optimizer.site.arrays import RackSpec


def resolve(name: str, entry: RackType) -> RackSpec:
    """Merge ``entry`` over its catalog base; a :class:`FieldProblem` says what is wrong."""
    known = sorted(catalog())
    if entry.base is not None and entry.base not in catalog():
        raise FieldProblem(
            f"base {entry.base!r} is not in the catalog", did_you_mean(entry.base, known), "base"
        )
    base_name = entry.base or (name if name in catalog() else None)
    fields = catalog()[base_name].model_dump(exclude_none=True) if base_name else {}
    own = entry.model_dump(exclude_none=True)
    if {"capped_kw", "capped_fraction"} & set(own):  # the entry's form replaces the base's
        fields.pop("capped_kw", None)
        fields.pop("capped_fraction", None)
    fields.update(own)
    missing = [f for f in REQUIRED_FIELDS if f not in fields]
    if missing:
        raise FieldProblem(
            f"missing {', '.join(missing)} ({name!r} is not a catalog name, and no base is given)",
            f"give the missing figures, or set base: to a catalog rack ({choices(known)})",
        )
    gpus = int(fields["gpus"])
    return RackSpec(
        name=name,
        gpus=gpus,
        it_kw=float(fields["it_kw"]),
        liquid_fraction=float(fields["liquid_fraction"]),
        flow_lpm_per_kw=float(fields.get("flow_lpm_per_kw", DEFAULT_FLOW_LPM_PER_KW)),
        weight_kg=float(fields["weight_kg"]),
        value=float(fields.get("value", gpus)),
        su_size=int(fields.get("su_size", 0)),
        network_rack=fields.get("network_rack"),
        su_ports=int(fields.get("su_ports", 0)),
        reach_m=fields.get("reach_m"),
        inlet_class=fields.get("inlet_class"),
        water_class=fields.get("water_class"),
        capped_kw=_capped_kw(fields),
    )


def _capped_kw(fields: dict) -> float | None:
    """The capped draw in kW, from ``capped_kw`` or ``capped_fraction`` x ``it_kw``. An
    entry's figure has replaced its catalog base's (see :func:`resolve`)."""
    it_kw = float(fields["it_kw"])
    if "capped_fraction" in fields:
        return float(fields["capped_fraction"]) * it_kw
    if "capped_kw" not in fields:
        return None
    capped = float(fields["capped_kw"])
    if capped > it_kw:
        raise FieldProblem(
            f"capped_kw {capped:g} is above it_kw {it_kw:g}",
            "a capped rack draws at most its IT load: lower capped_kw",
            "capped_kw",
        )
    return capped
