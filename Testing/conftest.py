"""Shared fixtures: small volumes with awkward geometry."""

from __future__ import annotations

import numpy as np
import pytest
from tumorgen_testing import OBLIQUE_DIRECTION

from tumorgen.volume import Grid, Volume


@pytest.fixture
def oblique_grid() -> Grid:
    """Non-unit, anisotropic spacing; oblique direction; an off-centre origin."""
    return Grid(size=(20, 24, 16), spacing=(0.9, 1.3, 2.2), origin=(-12.5, 30.25, 7.0), direction=OBLIQUE_DIRECTION)


@pytest.fixture
def oblique_volume(oblique_grid: Grid) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.normal(100.0, 20.0, oblique_grid.size).astype(np.float32), oblique_grid)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Registrations cached by the tests (and the backends they start) go to a temporary folder, not ~/.cache."""
    import os

    old = os.environ.get("TUMORGEN_CACHE_DIR")
    os.environ["TUMORGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("TUMORGEN_CACHE_DIR", None)
    else:
        os.environ["TUMORGEN_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def growth_wheels(tmp_path_factory):
    """The pinned wheels of what growth needs (numpy, SimpleITK, scipy, nilearn's data), fetched once per session through
    pip's configured sources: the local folder the first-use tests install from instead of the network."""
    from first_use import engine_wheels

    return engine_wheels(tmp_path_factory.mktemp("wheels"), ["numpy", "SimpleITK", "scipy", "nilearn"])
