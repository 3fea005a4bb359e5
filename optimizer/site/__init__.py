"""Stage 2, validated instance -> site: the facility as flat numpy arrays.

- ``arrays``: the :class:`Site` and every type it carries; the contract ``models/``, the
  solver and the independent checker read (``models/`` imports nothing else of rackopt).
- ``build``: :func:`build_site`, which composes the modules below in a fixed order.
- ``power_tree``: the one walk of the power tree (parents, cycles, the paths loads take).
- ``slots``: every slot expanded from rows and CSV slot tables, with where it was defined.
- ``eligibility``: which rack type may stand in which slot, rule by rule.
- ``demand``: demand bounds, installed racks, and why a rack type fits nowhere.
- ``fabric`` and ``cabling``: rows, cable geometry, network-rack slots and SU types.
- ``thermal``: inlet and water classes, plant power and the recirculation matrix.
- ``placement``: the Assignment (a rack type per slot, and SUs) handed between stages.
- ``lint``: warnings about valid input that is almost surely not meant (both feeds under
  one device that can fail, idle equipment, rack types no slot can hold), kept on the site.
"""
