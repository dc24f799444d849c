"""Physical constants in the units the hot loops use (plain floats)."""

C_KMS = 299792.458
"""Speed of light in vacuum, km/s."""

C_MS = 299792458.0
"""Speed of light in vacuum, m/s."""
