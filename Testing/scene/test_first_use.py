"""A first run for real: the real BackendSetup and BackendEnvironment, TumorGen's own environment not made yet.

A user grows a tumor on a machine whose backend has nothing: the check runs and the question names only what
growth needs and how big it is; no makes nothing. Nothing here is a fake. Yes (the environment made, pip from a
local folder of wheels, the growth job run in it) is Testing/slicer/test_first_use_in_slicer.py, through the module.
"""

from __future__ import annotations

import sys

from tumorgen_slicer.backend_install import WHEELS_ENV
from tumorgen_slicer.backend_setup import BackendSetup
from tumorgen_slicer.environment import BackendEnvironment
from tumorgen_slicer.managed_env import ManagedEnvironment
from tumorgen_slicer.presenter import TumorGenPresenter


def _first_user(ctx, tmp_path, monkeypatch, wheels):
    """A presenter on a small phantom scan and its tissue maps, with a seed: *Grow* would start a job at once."""
    from tumorgen_testing import PHANTOM_SEED, brain_phantom
    from tumorgen_slicer.nodes import add_volume

    monkeypatch.setenv(WHEELS_ENV, str(wheels))
    managed = ManagedEnvironment(tmp_path / "TumorGen" / "backend-env", sys.executable)
    environment = BackendEnvironment(in_slicer=False, managed=managed, work_dir=tmp_path / "checks", cuda_driver=False)
    presenter = TumorGenPresenter(ctx, work_dir=tmp_path / "runs", backend=BackendSetup(environment=environment, ask=True))
    tissues = brain_phantom()
    maps = {"csf": tissues.csf, "gm": tissues.gm, "wm": tissues.wm}
    maps["t1n"] = tissues.wm.with_array(tissues.wm.array * 0.9 + tissues.gm.array * 0.6)
    for role, volume in maps.items():
        assert presenter.set_input(role, add_volume(ctx, volume, role)), presenter.state.error
    assert presenter.set_seed(tuple(maps["t1n"].grid.index_to_ras(PHANTOM_SEED))), presenter.state.error
    return presenter, managed


def _until_question(presenter, timeout=120):
    kinds = []
    presenter.add_listener(lambda kind, p: kinds.append(kind))
    import time

    deadline = time.monotonic() + timeout
    while presenter.poll() and not presenter.state.question and time.monotonic() < deadline:
        time.sleep(0.05)
    return kinds


def test_the_first_grow_asks_once_naming_only_what_growth_needs(ctx, tmp_path, monkeypatch, growth_wheels):
    presenter, managed = _first_user(ctx, tmp_path, monkeypatch, growth_wheels)
    assert presenter.grow(), presenter.state.error
    kinds = _until_question(presenter)
    question = presenter.state.question
    assert kinds.count("question") == 1, presenter.state.error
    assert question.startswith("TumorGen's grow task needs numpy, SimpleITK, scipy, nilearn, which the backend's Python lacks.")
    for absent in ("torch", "monai", "ray", "torchmetrics", "matplotlib"):
        assert absent not in question
    assert f"into a new Python environment for TumorGen at {managed.folder}" in question and "MB to download" in question
    assert presenter.poll() and kinds.count("question") == 1  # asked once, however often it is polled
    presenter.cancel()
    assert not presenter.busy and not managed.folder.exists()


def test_no_to_the_question_installs_nothing_and_leaves_the_panel_usable(ctx, tmp_path, monkeypatch, growth_wheels):
    presenter, managed = _first_user(ctx, tmp_path, monkeypatch, growth_wheels)
    assert presenter.grow(), presenter.state.error
    _until_question(presenter)
    assert presenter.state.question and presenter.answer_backend(False)
    assert not presenter.poll() and presenter.state.last_status == "failed"
    assert presenter.state.error == ("nothing installed: the grow task needs numpy, SimpleITK, scipy, nilearn in the "
                                     "backend's Python")
    assert not managed.folder.exists()  # nothing made, nothing installed
    assert not presenter.busy and presenter.create_box(), presenter.state.error  # the panel goes on working
