"""Where the scene logic finds the MRML scene and the module logics it uses.

Inside 3D Slicer they come from the application (:meth:`SceneContext.from_slicer`).
Outside it, :meth:`SceneContext.headless` builds the same objects from the
``slicer-core`` wheel, as trame-slicer's application does: a scene, an
application logic with the default colour tables, and the volumes, markups,
segmentations and subject-hierarchy logics registered with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


#: The module logics :meth:`SceneContext.module_logic` can create, by module name.
MODULE_LOGICS = {"Sequences": "vtkSlicerSequencesLogic", "Plots": "vtkSlicerPlotsLogic"}


@dataclass
class SceneContext:
    scene: Any
    app_logic: Any
    volumes_logic: Any
    #: True inside the 3D Slicer application (dialogs, PythonSlicer, pip_install are there).
    in_slicer: bool = False
    #: Module logics created here, kept alive (the application logic holds them by weak pointer).
    logics: dict = field(default_factory=dict)

    @classmethod
    def from_slicer(cls) -> SceneContext:
        """The running 3D Slicer application's scene and logics."""
        import slicer

        return cls(slicer.mrmlScene, slicer.app.applicationLogic(), slicer.modules.volumes.logic(), in_slicer=True)

    @classmethod
    def from_app(cls, app: Any) -> SceneContext:
        """A trame-slicer ``SlicerApp`` (it has ``scene``, ``app_logic`` and ``volumes_logic``)."""
        return cls(app.scene, app.app_logic, app.volumes_logic)

    @classmethod
    def headless(cls) -> SceneContext:
        """A new MRML scene with its logics, without any view (slicer-core)."""
        from slicer import (
            vtkMRMLColorLogic,
            vtkMRMLCrosshairNode,
            vtkMRMLScene,
            vtkSlicerApplicationLogic,
            vtkSlicerMarkupsLogic,
            vtkSlicerSegmentationsModuleLogic,
            vtkSlicerSubjectHierarchyModuleLogic,
            vtkSlicerVolumesLogic,
        )

        scene = vtkMRMLScene()
        crosshair = vtkMRMLCrosshairNode()
        crosshair.SetCrosshairName("default")
        scene.AddNode(crosshair)
        app_logic = vtkSlicerApplicationLogic()
        app_logic.SetMRMLScene(scene)
        app_logic.GetColorLogic().SetMRMLScene(scene)
        app_logic.GetColorLogic().AddDefaultColorNodes()

        logics = {}
        # the segmentations logic registers the segmentation converter rules (labelmap to closed surface for 3D)
        for name, logic in (("Colors", vtkMRMLColorLogic()), ("Markups", vtkSlicerMarkupsLogic()),
                            ("Segmentations", vtkSlicerSegmentationsModuleLogic()),
                            ("SubjectHierarchy", vtkSlicerSubjectHierarchyModuleLogic()), ("Volumes", vtkSlicerVolumesLogic())):
            logic.SetMRMLScene(scene)
            logic.SetMRMLApplicationLogic(app_logic)
            app_logic.SetModuleLogic(name, logic)
            logics[name] = logic
        return cls(scene, app_logic, logics["Volumes"], logics=logics)

    def module_logic(self, name: str):
        """A module logic by its module's name (``Sequences``, ``Plots``): the application's (Slicer registers every module's),
        else one created here on the scene and registered (headless scenes and trame-slicer have only a few)."""
        logic = self.app_logic.GetModuleLogic(name)
        if logic is None:
            import slicer

            logic = getattr(slicer, MODULE_LOGICS[name])()
            logic.SetMRMLScene(self.scene)
            logic.SetMRMLApplicationLogic(self.app_logic)
            self.app_logic.SetModuleLogic(name, logic)
            self.logics[name] = logic
        return logic

    @property
    def subject_hierarchy(self):
        from slicer import vtkMRMLSubjectHierarchyNode

        return vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(self.scene)

    def node(self, node_or_id):
        """A node from itself or its ID (``None`` for an unknown ID or ``None``)."""
        if node_or_id is None or node_or_id == "":
            return None
        if isinstance(node_or_id, str):
            return self.scene.GetNodeByID(node_or_id)
        return node_or_id
