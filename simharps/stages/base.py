"""What a stage of the chain is: a name, the frame it acts in, the parameters it reads, what it contributes.

A *factor* stage multiplies the photon density. Its ``narrow`` part (lines: interstellar Na D, tellurics) is
evaluated point by point on the engine's fine wavelength lattice before the LSF; its ``smooth`` part (dust, continuum
extinction, optics, fibre injection) on whatever grid the engine chooses (the fast plan: 1 A; the reference: every
lattice point). Both receive observatory-frame air wavelengths (A) and the factor ``1 + BERV / c`` that takes them to
the barycentric frame; a stage in the barycentric frame (above the atmosphere) multiplies by it itself. ``prepare``
does the work that depends only on the grids (optical-depth tables, the telescope curve), once per grid.

The other roles are composed by the engines themselves: ``source`` (the star), ``pixels`` (LSF, orders, merge) and
``noise`` (the detector). ``component`` names the truth component a stage's narrow part joins (``stellar`` or
``telluric``; None when it has none).
"""

from dataclasses import dataclass

FACTOR, SOURCE, PIXELS, NOISE = "factor", "source", "pixels", "noise"

OBSERVATORY, BARYCENTRIC = "observatory", "barycentric"


@dataclass(frozen=True)
class Prepared:
    """Grid-only work of a stage: ``lattice`` for the narrow part, ``coarse`` for the smooth part (or None)."""

    lattice: object = None
    coarse: object = None


class Stage:
    """A stage of the chain (see the module docstring). Subclasses set the class attributes and override the parts
    they have; the defaults contribute nothing."""

    name = ""
    role = FACTOR
    frame = OBSERVATORY
    reads = ()
    component = None
    switchable = True
    summary = ""

    def prepare(self, lattice_obs_aa, coarse_obs_aa):
        """Precompute what depends on the grids only (observatory-frame air wavelengths, A)."""
        return Prepared()

    def narrow(self, prepared, values, lattice_obs_aa, berv_factor):
        """Narrow transmission (float32) on the lattice, or None when there is nothing to apply."""
        return None

    def smooth(self, prepared, values, coarse_obs_aa, berv_factor):
        """Smooth transmission on ``coarse_obs_aa``, or None when there is nothing to apply."""
        return None

    def __repr__(self):
        return f"<stage {self.name}: {self.role}, {self.frame}>"
