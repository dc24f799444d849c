"""Shared fixtures. Real data come from ../shared/data (override with SIMHARPS_SHARED_DATA)."""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir():
    return Path(os.environ.get("SIMHARPS_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """Path of the real reference data; skips the test with a reason when it is absent (fails when CI=true)."""
    path = _shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real reference data not found at {path}: in CI (CI=true) this is a failure, not a skip")
        pytest.skip(f"real reference data not found at {path} (set SIMHARPS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def harps_dir(shared_data):
    """Folder of the real archive products (ADP, s1d, S1D, e2ds + calibrations)."""
    return shared_data / "harps"
