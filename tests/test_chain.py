"""The chain as a list of stages, run by two engines: the fast plan (simharps.forward) against the readable reference
composition (simharps.reference), with every stage on, all off and each one off in turn."""

import numpy as np
import pytest

from simharps import chain
from simharps.errors import ParameterError
from simharps.forward import simulate
from simharps.reference import reference_simulate

# off the template nodes, reddened (interstellar Na D), off-centre in the fibre, humid: every stage acts here
STAR = dict(teff_k=5630.0, logg_cgs=4.3, mh_dex=-0.2, vsini_kms=4.0, rv_kms=12.3, vmag=8.0, exptime_s=600.0,
            airmass=1.5, pwv_mm=5.0, berv_kms=-8.686, ebv_mag=0.4, seeing_arcsec=0.8, fibre_offset_arcsec=0.3)
WINDOW = (5870.0, 5920.0)   # Na D (stellar and interstellar) inside the 5880-5990 A H2O band

PRODUCT_TOLERANCE = 1.5e-4
"""Largest |fast - reference| of the noiseless product, as a fraction of the continuum (measured <= 3.2e-5)."""
ERROR_TOLERANCE = 2e-4
"""Largest relative difference of the error arrays (measured <= 6.8e-5)."""
RESPONSE_TOLERANCE = 2e-6
"""Largest relative difference of the line-free response (measured <= 7.8e-7: the smooth factors agree)."""
COMPONENT_TOLERANCE = 1.5e-4
"""Largest difference of the stellar and telluric transmission components (measured <= 3.0e-5)."""

SETTINGS = [None, {name: False for name in chain.SWITCHABLE}] + [{name: False} for name in chain.SWITCHABLE]
IDS = ["all-on", "all-off"] + [f"{name}-off" for name in chain.SWITCHABLE]


@pytest.fixture(scope="module")
def all_on():
    return simulate(STAR, seed=0, components=True, window=WINDOW)


@pytest.mark.parametrize("stages", SETTINGS, ids=IDS)
def test_fast_plan_equals_the_reference_composition(stages, all_on):
    fast = simulate(STAR, seed=0, components=True, window=WINDOW, stages=stages)
    reference = reference_simulate(STAR, window=WINDOW, stages=stages)
    continuum = np.nanmedian(reference.components["response"])
    assert np.nanmax(np.abs(fast.flux_expected - reference.flux)) < PRODUCT_TOLERANCE * continuum
    assert np.nanmax(np.abs(fast.error / reference.error - 1.0)) < ERROR_TOLERANCE
    assert np.nanmax(np.abs(fast.components["response"] / reference.components["response"] - 1.0)) < \
        RESPONSE_TOLERANCE
    for name in ("stellar", "telluric"):
        assert np.nanmax(np.abs(fast.components[name] - reference.components[name])) < COMPONENT_TOLERANCE, name
    # the switch did something: a stage that is off changes the product by far more than the tolerance
    off = [] if stages is None else [name for name, on in stages.items() if not on and name != "noise"]
    if off:
        assert np.nanmax(np.abs(fast.flux_expected - all_on.flux_expected)) > 30 * PRODUCT_TOLERANCE * continuum
    noisy = stages is None or stages.get("noise", True)
    assert noisy == bool(np.any(fast.flux != fast.flux_expected))


def test_the_chain_is_one_ordered_list():
    assert chain.STAGE_NAMES == ("stellar", "ism", "atmosphere", "telescope", "fibre", "spectrograph", "instrument",
                                 "noise")
    assert [stage.role for stage in chain.CHAIN][:1] == ["source"]
    chain.check_chain()   # every parameter a stage reads is in the parameter table


def test_stage_switches_refuse_unknown_and_always_on_stages():
    with pytest.raises(ParameterError, match="unknown stage"):
        chain.enabled_stages({"atmosphre": False})
    with pytest.raises(ParameterError, match="always simulated"):
        chain.enabled_stages({"instrument": False})
    assert chain.enabled_stages(["stellar", "instrument", "noise"]) == {"noise"}
