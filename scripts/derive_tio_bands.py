"""Derive the TiO band constants of ``simharps/stellar/tio_bands.py`` (``BANDS``, ``X_VIBRATIONAL_CM``, the q_00 of
``SYSTEMS``) from the ExoMol Duo "Toto" model of 48TiO (McKemmish et al. 2019, MNRAS 488, 2836).

    .venv/bin/python scripts/derive_tio_bands.py          # ~10 s, prints the tables

Input: the model parameters of ``Trovemaster/Duo`` examples/TiO/48Ti-16O__Toto.inp (commit 0bab546), transcribed
below: the extended-Morse-oscillator potentials of X3Delta, A3Phi, B3Pi, C3Delta (lines 41-169 of that file), the
diagonal spin-orbit values (385-446) and the arctan transition-dipole curves of A-X, B-X, C-X (913-970); the
functional forms are Duo's ``poten_EMO`` and ``SO_arctan`` (functions.f90). No network is needed.

Method: J = 0 vibrational levels of each state by a sinc discrete-variable representation (Colbert & Miller 1992) on
1.2-2.8 A; Franck-Condon factors q_v'v'' = <v'|v''>^2; relative band strengths S_rel = nu |<v'|mu|v''>|^2 over the
system's (0,0) value; B_v = <v|hbar / (4 pi c mu r^2)|v>; R-branch heads nu_origin + Sigma (A'Lambda' - A''Lambda'')
+ (B' + B'')^2 / (4 (B'' - B')) for Sigma = -1, 0, +1 (air wavelengths, Morton 2000). Approximations: no
spin-orbit or other couplings between states, no Lambda doubling, one B per level.
"""

import numpy as np
from scipy.linalg import eigh

AMU_KG = 1.66053906660e-27
H_JS = 6.62607015e-34
C_CMS = 2.99792458e10
HBAR_JS = H_JS / (2 * np.pi)
MASS_TI_AMU, MASS_O_AMU = 47.9479463, 15.999415
MU_KG = MASS_TI_AMU * MASS_O_AMU / (MASS_TI_AMU + MASS_O_AMU) * AMU_KG
DISSOCIATION_CM = 55410.0
STATES = {  # name: (T_e cm^-1, r_e A, EMO expansion coefficients (right side; the left side uses the first two))
    "X3Delta": (0.0, 1.62027859, (1.8079342, 0.16636, -0.5945, 0.671, 0.0)),
    "A3Phi": (14166.936, 1.6645024, (1.801451, 0.1556, 1.049, -3.14, 0.0)),
    "B3Pi": (16211.072, 1.663110, (1.861743, 0.0, 0.0, 0.0)),
    "C3Delta": (19424.778, 1.6939131, (1.860222, 0.2867, 1.959, -19.73, 36.0)),
}
SPIN_ORBIT_CM = {"X3Delta": 101.2157, "C3Delta": 98.7131, "B3Pi": 20.485, "A3Phi": 173.320}
DIPOLE = {"C3Delta": (1.515, 7.482, -1.652, -1), "B3Pi": (1.667, 5.013, -4.101, -1),
          "A3Phi": (1.687, 4.495, -3.312, -1)}
"""(r0 A, mu0 D, slope 1/A, f) of the transition dipole f (mu0 / 2 + mu0 / pi arctan((r - r0) slope)) to X3Delta."""
SYSTEMS = {"alpha": "C3Delta", "gamma_prime": "B3Pi", "gamma": "A3Phi"}


def potential_cm(name, r_aa):
    """Extended Morse oscillator (Duo poten_EMO, p = 2), cm^-1."""
    t_e, r_e, coefficients = STATES[name]
    out = np.empty_like(r_aa)
    for side, b in ((r_aa <= r_e, coefficients[:2]), (r_aa > r_e, coefficients)):
        r = r_aa[side]
        z = (r**2 - r_e**2) / (r**2 + r_e**2)
        phi = sum(c * z**k for k, c in enumerate(b))
        out[side] = (DISSOCIATION_CM - t_e) * (1 - np.exp(-phi * (r - r_e))) ** 2 + t_e
    return out


def dipole(name, r_aa):
    """Duo SO_arctan form of the transition dipole (Debye)."""
    r0, value, slope, factor = DIPOLE[name]
    return factor * (0.5 * value + value / np.pi * np.arctan((r_aa - r0) * slope))


def air_wavelength_aa(sigma_cm):
    """Air wavelength (A) of a vacuum wavenumber (Morton 2000)."""
    vacuum = 1e8 / sigma_cm
    s2 = (1e4 / vacuum) ** 2
    return vacuum / (1 + 8.34254e-5 + 2.406147e-2 / (130 - s2) + 1.5998e-4 / (38.9 - s2))


def vibrational_levels(r_aa, n_levels=12):
    """{state: (energies cm^-1, wave functions (grid, level), B_v cm^-1)} by sinc-DVR."""
    n = r_aa.size
    step_m = (r_aa[1] - r_aa[0]) * 1e-10
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    kinetic = np.where(i == j, np.pi**2 / 3, 2.0 * (-1.0) ** (i - j) / np.where(i == j, 1, i - j) ** 2)
    kinetic = kinetic * HBAR_JS**2 / (2 * MU_KG * step_m**2) / (H_JS * C_CMS)
    levels = {}
    for name in STATES:
        energies, vectors = eigh(kinetic + np.diag(potential_cm(name, r_aa)))
        vectors = vectors[:, :n_levels] * np.sign(vectors[np.argmax(np.abs(vectors[:, :n_levels]), axis=0),
                                                          np.arange(n_levels)])
        b_v = HBAR_JS / (4 * np.pi * C_CMS * MU_KG) * np.sum(vectors**2 / (r_aa[:, None] * 1e-10) ** 2, axis=0)
        levels[name] = (energies[:n_levels], vectors, b_v)
    return levels


def main():
    r_aa = np.linspace(1.2, 2.8, 801)
    levels = vibrational_levels(r_aa)
    e_x, v_x, b_x = levels["X3Delta"]
    print("X3Delta G(v) - G(0), cm^-1:", np.round(e_x[:5] - e_x[0], 1))
    for system, upper in SYSTEMS.items():
        e_u, v_u, b_u = levels[upper]
        mu = dipole(upper, r_aa)
        strength_00 = np.dot(v_u[:, 0], mu * v_x[:, 0]) ** 2 * (e_u[0] - e_x[0])
        print(f"\n{system} ({upper}-X3Delta): (v', v''), q, S_rel, R heads (air A) for Sigma = -1, 0, +1")
        for v_up in range(4):
            for v_low in range(5):
                sigma = e_u[v_up] - e_x[v_low]
                q = np.dot(v_u[:, v_up], v_x[:, v_low]) ** 2
                relative = np.dot(v_u[:, v_up], mu * v_x[:, v_low]) ** 2 * sigma / strength_00
                head = (b_u[v_up] + b_x[v_low]) ** 2 / (4 * (b_x[v_low] - b_u[v_up]))
                heads = [air_wavelength_aa(sigma + s * (SPIN_ORBIT_CM[upper] - SPIN_ORBIT_CM["X3Delta"]) + head)
                         for s in (-1, 0, 1)]
                print(f"  ({v_up},{v_low}) q {q:.3f}  S_rel {relative:.3f}  heads " + " ".join(f"{h:7.1f}" for h in heads))


if __name__ == "__main__":
    main()
