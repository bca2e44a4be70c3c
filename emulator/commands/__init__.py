"""AT command families: each module declares its commands and handles them."""
from __future__ import annotations


def all_families():
    from . import basic, files, identity, network, pdp
    fams = [basic.family, identity.family, network.family, pdp.family, files.family]
    try:
        from . import lwm2m
    except ImportError:          # pragma: no cover - during bring-up only
        return fams
    return fams + [lwm2m.family]
