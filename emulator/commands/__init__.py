"""AT command families: each module declares its commands and handles them."""
from __future__ import annotations


def all_families():
    from . import basic, files, gnss, identity, lwm2m, network, pdp, power, settings
    return [basic.family, identity.family, network.family, pdp.family, files.family, settings.family,
            gnss.family, power.family, lwm2m.family]
