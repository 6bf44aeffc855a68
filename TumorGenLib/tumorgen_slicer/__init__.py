"""TumorGen's scene logic: MRML nodes in, backend jobs out, results back as nodes.

This package imports ``slicer``. Inside 3D Slicer that is the application's
own; outside it (the web app, the tests) it is the ``slicer-core`` wheel,
which provides a real MRML scene, the volumes, markups and subject-hierarchy
logics and the storage nodes. The engine (``tumorgen``) never imports it.

Both front ends bind to one :class:`~tumorgen_slicer.presenter.TumorGenPresenter`;
neither holds logic of its own.
"""

from __future__ import annotations

__all__ = ["SceneContext", "TumorGenPresenter"]


def __getattr__(name: str):
    # Lazy, so that `import tumorgen_slicer` alone does not load MRML.
    if name == "SceneContext":
        from tumorgen_slicer.context import SceneContext

        return SceneContext
    if name == "TumorGenPresenter":
        from tumorgen_slicer.presenter import TumorGenPresenter

        return TumorGenPresenter
    raise AttributeError(name)
