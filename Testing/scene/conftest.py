"""Scene-logic fixtures: a real MRML scene (slicer-core) and the bundled sample loaded into it once."""

from __future__ import annotations

import pytest

pytest.importorskip("slicer", reason="the scene-logic tests need slicer-core (pip extra 'scene')")

from tumorgen_slicer.context import SceneContext  # noqa: E402
from scene_testing import SAMPLE_SPACING_MM  # noqa: E402
from tumorgen_slicer.presenter import TumorGenPresenter  # noqa: E402



@pytest.fixture
def ctx():
    return SceneContext.headless()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A scene with the sample loaded through the presenter, and a fingerprint of every input node."""
    context = SceneContext.headless()
    presenter = TumorGenPresenter(context, work_dir=tmp_path_factory.mktemp("runs"))
    assert presenter.load_sample(spacing_mm=SAMPLE_SPACING_MM), presenter.state.error
    assert presenter.wait(timeout=300) == "done", presenter.state.error
    return context, dict(presenter.state.inputs)


@pytest.fixture
def presenter(sample, tmp_path):
    context, inputs = sample
    p = TumorGenPresenter(context, work_dir=tmp_path / "runs")
    for role, node_id in inputs.items():
        assert p.set_input(role, node_id)
    return p
