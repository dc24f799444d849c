"""The three stages the engines compose themselves: the star (source), the spectrograph (pixels), the detector (noise).

They are entries of the chain so that a reader sees the whole of it in ``simharps.chain``; their physics lives in
``simharps.stellar`` (a ``simharps.stellar.model.StellarModel``), ``simharps.instrument`` / ``simharps.extraction``
and ``simharps.detector``.
"""

from simharps.stages.base import BARYCENTRIC, NOISE, PIXELS, SOURCE, Stage


class StellarStage(Stage):
    name = "stellar"
    role = SOURCE
    frame = BARYCENTRIC
    reads = ("teff_k", "logg_cgs", "mh_dex", "vmic_kms", "vsini_kms", "vmac_kms", "rv_kms", "vmag")
    component = "stellar"
    switchable = False
    summary = ("stellar surface spectrum (stellar model), rotation x macroturbulence, relativistic Doppler shift, "
               "scaled to the observed V magnitude")


class InstrumentStage(Stage):
    name = "instrument"
    role = PIXELS
    frame = "pixels"
    reads = ("berv_kms", "instrument_mode", "fibre_era", "exptime_s")
    switchable = False
    summary = ("grey spectrograph efficiency, Gaussian LSF, order pixels with blaze, merge to the 0.01 A product "
               "grid at the BERV")


class NoiseStage(Stage):
    name = "noise"
    role = NOISE
    frame = "pixels"
    reads = ("exptime_s", "read_noise_e", "gain_e_per_adu")
    summary = "Poisson photon and dark noise, read noise of the extraction window, cosmic-ray residuals"
