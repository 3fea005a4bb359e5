"""The shipped rack catalog, validated with the instance schema (rack types resolve
against it in :mod:`optimizer.site.rack_types`)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from optimizer.instance.schema import RackType

REQUIRED_FIELDS = ("gpus", "it_kw", "liquid_fraction", "weight_kg")
DEFAULT_FLOW_LPM_PER_KW = 1.5  # OCP guidance at a 10 K rise (B); see catalog.yaml


@cache
def catalog() -> dict[str, RackType]:
    """The packaged catalog, validated with the same schema as instance rack types."""
    text = (
        resources.files("optimizer.instance").joinpath("catalog.yaml").read_text(encoding="utf-8")
    )
    return {name: RackType.model_validate(entry) for name, entry in yaml.safe_load(text).items()}
