"""Stand-ins for Slicer's Qt widgets on MRML (not Slicer source; they go into the ``slicer`` namespace).

Behaviour copied from Slicer at the pinned commit:

* qMRMLWidget / qSlicerWidget.setMRMLScene: ``mrmlSceneChanged(vtkMRMLScene*)`` only when the scene changes.
* qMRMLNodeComboBox (Libs/MRML/Widgets/qMRMLNodeComboBox.cxx): disabled until it has a scene
  (``setEnabled(scene != nullptr)``); lists the scene's nodes of ``nodeTypes`` (subclasses too unless
  ``showChildNodeTypes`` is off; nodes hidden from editors only with ``showHidden``); ``setCurrentNode``
  of a node it does not list selects nothing (None, or index -1 without ``noneEnabled``);
  before it has a scene it remembers the requested node and selects it when the scene is set;
  ``currentNodeChanged(vtkMRMLNode*)`` / ``(bool)`` / ``currentNodeIDChanged(QString)`` on a change;
  ``addNode()`` creates the first node type through the scene (unique name from the node's default
  prefix), selects it (``selectNodeUponCreation``) and emits ``nodeAddedByUser``.
  Approximations (QComboBox model details): with ``noneEnabled`` off, the first node added to an empty
  list is selected; when the current node leaves the scene the next listed node (else the last, else
  none) becomes current.
* qSlicerMarkupsPlaceWidget (Modules/Loadable/Markups/Widgets/qSlicerMarkupsPlaceWidget.cxx):
  ``setCurrentNode`` keeps only markups nodes (SafeDownCast); its place/delete buttons are disabled
  unless it has a scene, an interaction node and a current node (updateWidget); place is enabled while
  the node accepts points, delete when it has points; it follows the node's point events.
"""

from __future__ import annotations

import vtk

from . import qt
from ._qobject import passive, qproperty, signal
from .ctk import ctkColorPickerButton, ctkDoubleSpinBox, ctkRangeWidget, ctkSliderWidget
from .qt import QToolButton, QVBoxLayout, QWidget


class _SceneMixin:
    mrmlSceneChanged = signal("vtkMRMLScene*")

    def mrmlScene(self):
        return self.__dict__.get("_scene")

    def setMRMLScene(self, scene) -> None:
        if scene is self.__dict__.get("_scene"):
            return
        self.__dict__["_scene"] = scene
        self.mrmlSceneChanged.emit(scene)


class qMRMLWidget(_SceneMixin, QWidget):
    pass


class qSlicerWidget(_SceneMixin, QWidget):
    pass


class qSlicerScriptedLoadableModuleWidget(qSlicerWidget):
    """The panel a scripted module's widget class gets as ``parent``: a QVBoxLayout and ``isEntered``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.__dict__["_entered"] = False
        QVBoxLayout(self)

    isEntered = qproperty(lambda self: self._entered, None)


def _observe(obj, event, fn, with_calldata=False):
    if with_calldata:
        def callback(caller, event_id, calldata):
            fn(calldata)
        callback.CallDataType = vtk.VTK_OBJECT
    else:
        def callback(caller, event_id):
            fn()
    return obj, obj.AddObserver(event, callback)


def _filter(key, convert, revalidate=True):
    """A Q_PROPERTY of the node combo box that changes which nodes it lists."""
    def setter(self, value):
        self.__dict__[key] = convert(value)
        if revalidate:
            self._revalidate()
    return qproperty(lambda self: self.__dict__[key], setter)


class qMRMLNodeComboBox(QWidget):
    currentNodeChanged = signal("vtkMRMLNode*", "bool", adapt={"bool": lambda w, node: (node is not None,)})
    currentNodeIDChanged = signal("QString")
    nodeActivated = signal("vtkMRMLNode*")
    nodeAdded = signal("vtkMRMLNode*")
    nodeAddedByUser = signal("vtkMRMLNode*")
    nodeAboutToBeRemoved = signal("vtkMRMLNode*")
    nodeAboutToBeEdited = signal("vtkMRMLNode*")
    currentNodeRenamed = signal("QString")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_scene=None, _types=[], _none=False, _current=None, _requested=None, _observers=[],
                             _showChild=True, _showHidden=False, _hideChild=[], _attributes={}, _removed_at=None,
                             _selectUponCreation=True)
        super().__init__(parent, **properties)
        self._enabled = False  # qMRMLNodeComboBox::setMRMLScene: setEnabled(scene != nullptr)

    # ---- filters
    def setNodeTypes(self, node_types) -> None:
        self._types = [t for t in (list(node_types) if not isinstance(node_types, str) else [node_types]) if t]
        self._revalidate()

    nodeTypes = qproperty(lambda self: list(self._types), setNodeTypes)

    def setNoneEnabled(self, enable) -> None:
        self._none = bool(enable)

    noneEnabled = qproperty(lambda self: self._none, setNoneEnabled)
    showChildNodeTypes = _filter("_showChild", bool)
    showHidden = _filter("_showHidden", bool)
    hideChildNodeTypes = _filter("_hideChild", list)
    selectNodeUponCreation = _filter("_selectUponCreation", bool, revalidate=False)
    addEnabled = passive("addEnabled", False)
    removeEnabled = passive("removeEnabled", True)
    editEnabled = passive("editEnabled", False)
    renameEnabled = passive("renameEnabled", False)
    noneDisplay = passive("noneDisplay", "None")
    baseName = passive("baseName", "")
    interactionNodeSingletonTag = passive("interactionNodeSingletonTag", "Singleton")
    sizeAdjustPolicy = passive("sizeAdjustPolicy")

    def addAttribute(self, node_type, name, value=None) -> None:
        self._attributes[(node_type, name)] = value
        self._revalidate()

    def removeAttribute(self, node_type, name) -> None:
        self._attributes.pop((node_type, name), None)
        self._revalidate()

    def _accepts(self, node) -> bool:
        if node is None or node.GetScene() is not self._scene:
            return False
        if not any((node.IsA(t) if self._showChild else node.GetClassName() == t) for t in self._types):
            return False
        if any(node.IsA(t) and node.GetClassName() != t for t in self._hideChild):
            return False
        if node.GetHideFromEditors() and not self._showHidden:
            return False
        for (node_type, name), value in self._attributes.items():
            actual = node.GetAttribute(name) if node.IsA(node_type) else ""
            if actual is None or (value is not None and node.IsA(node_type) and actual != str(value)):
                return False
        return True

    def nodes(self):
        scene = self._scene
        if scene is None:
            return []
        found = (scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes()))
        return [n for n in found if self._accepts(n)]

    def nodeCount(self) -> int:
        return len(self.nodes())

    def nodeFromIndex(self, index):
        listed = self.nodes()
        return listed[index] if 0 <= index < len(listed) else None

    # ---- current node
    def currentNode(self):
        return self._current

    def currentNodeID(self) -> str:
        return self._current.GetID() if self._current is not None else ""

    currentNodeId = currentNodeID

    def _select(self, node) -> None:
        if node is not None and not self._accepts(node):
            node = None
        if node is self._current:
            return
        self._current = node
        self.currentNodeChanged.emit(node)
        self.currentNodeIDChanged.emit(node.GetID() if node is not None else "")

    def setCurrentNode(self, node) -> None:
        if isinstance(node, str):  # deprecated overload setCurrentNode(QString)
            self.setCurrentNodeID(node)
            return
        if self._scene is None:
            self._requested = node
        self._select(node)

    def setCurrentNodeID(self, node_id) -> None:
        node = self._scene.GetNodeByID(node_id) if (self._scene is not None and node_id) else None
        if self._scene is None:
            self._requested = node_id
        self._select(node)

    def setCurrentNodeIndex(self, index) -> None:
        self._select(self.nodeFromIndex(index))

    # ---- scene
    def mrmlScene(self):
        return self._scene

    def setMRMLScene(self, scene) -> None:
        if scene is self._scene:
            return
        for obj, tag in self._observers:
            obj.RemoveObserver(tag)
        self._observers = []
        previous = self._current
        self._scene = scene
        if scene is not None:
            self._observers = [
                _observe(scene, scene.NodeAddedEvent, self._on_node_added, True),
                _observe(scene, scene.NodeAboutToBeRemovedEvent, self._on_node_about_to_be_removed, True),
                _observe(scene, scene.NodeRemovedEvent, self._on_node_removed, True),
                _observe(scene, scene.EndCloseEvent, self._revalidate),
                _observe(scene, scene.EndImportEvent, self._revalidate),
            ]
        requested, self._requested = self._requested, None
        target = previous if previous is not None else requested
        if isinstance(target, str):
            target = scene.GetNodeByID(target) if scene is not None else None
        if target is None and not self._none:
            target = self.nodeFromIndex(0)
        self._current = None if not self._accepts(previous) else previous
        self._select(target)
        self.setEnabled(scene is not None)

    def _on_node_added(self, node) -> None:
        if not self._accepts(node):
            return
        self.nodeAdded.emit(node)
        if self._current is None and not self._none and self.nodeCount() == 1:
            self._select(node)

    def _on_node_about_to_be_removed(self, node) -> None:
        if node is not None and node is self._current:
            self.nodeAboutToBeRemoved.emit(node)
            self._removed_at = self.nodes().index(node)
        elif self._accepts(node):
            self.nodeAboutToBeRemoved.emit(node)

    def _on_node_removed(self, node) -> None:
        if node is self._current:
            self._replace_current()

    def _replace_current(self) -> None:
        """The current node left the list: the next listed node (else the last, else none) becomes current."""
        removed = self._current
        listed = [n for n in self.nodes() if n is not removed]
        at = self._removed_at if self._removed_at is not None else len(listed)
        self._removed_at = None
        self._current = None
        replacement = listed[min(at, len(listed) - 1)] if listed else None
        if replacement is None:
            self.currentNodeChanged.emit(None)
            self.currentNodeIDChanged.emit("")
        else:
            self._select(replacement)

    def _revalidate(self) -> None:
        if self._current is not None and not self._accepts(self._current):
            self._replace_current()

    # ---- user actions
    def addNode(self, node_type=None):
        if node_type is None:
            if not self._types:
                return None
            node_type = self._types[0]
        if node_type not in self._types or self._scene is None:
            return None
        node = self._scene.CreateNodeByClass(node_type)
        if node is None:
            return None
        node.UnRegister(None)  # the Python variable owns it (as ScriptedLoadableModuleLogic.createParameterNode)
        base = self.baseName or node.GetDefaultNodeNamePrefix()
        if base:
            node.SetName(self._scene.GetUniqueNameByString(base))
        for (attr_type, name), value in self._attributes.items():
            if node.IsA(attr_type) and value is not None:
                node.SetAttribute(name, str(value))
        node = self._scene.AddNode(node)
        if self._selectUponCreation:
            self.setCurrentNode(node)
        self.nodeAddedByUser.emit(node)
        return node

    def removeCurrentNode(self) -> None:
        if self._scene is not None and self._current is not None:
            self._scene.RemoveNode(self._current)


class qSlicerMarkupsPlaceWidget(qSlicerWidget):
    activeMarkupsPlaceModeChanged = signal("bool")
    activeMarkupsFiducialPlaceModeChanged = signal("bool")

    ShowPlaceMultipleMarkupsOption, HidePlaceMultipleMarkupsOption, ForcePlaceSingleMarkup, ForcePlaceMultipleMarkups = range(4)

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_node=None, _node_observers=[], _last_place=False)
        super().__init__(parent, **properties)
        # the children of Resources/UI/qSlicerMarkupsPlaceWidget.ui
        self.__dict__["_color"] = ctkColorPickerButton(self, objectName="ColorButton")
        self.__dict__["_place"] = QToolButton(self, objectName="PlaceButton", checkable=True)
        self.__dict__["_delete"] = QToolButton(self, objectName="DeleteButton")
        self.__dict__["_more"] = QToolButton(self, objectName="MoreButton")
        self.updateWidget()

    def placeButton(self):
        return self._place

    def deleteButton(self):
        return self._delete

    def setMRMLScene(self, scene) -> None:
        super().setMRMLScene(scene)
        self.updateWidget()

    def interactionNode(self):
        scene = self.mrmlScene()
        return scene.GetNodeByID("vtkMRMLInteractionNodeSingleton") if scene is not None else None

    def selectionNode(self):
        scene = self.mrmlScene()
        return scene.GetNodeByID("vtkMRMLSelectionNodeSingleton") if scene is not None else None

    def currentNode(self):
        return self._node

    def currentMarkupsNode(self):
        return self._node

    def currentMarkupsFiducialNode(self):
        import slicer

        return slicer.vtkMRMLMarkupsFiducialNode.SafeDownCast(self._node)

    def setCurrentNode(self, node) -> None:
        import slicer

        node = slicer.vtkMRMLMarkupsNode.SafeDownCast(node) if node is not None else None
        if node is self._node:
            return
        for obj, tag in self._node_observers:
            obj.RemoveObserver(tag)
        self._node_observers = []
        if node is not None:
            for event in (vtk.vtkCommand.ModifiedEvent, node.PointAddedEvent, node.PointRemovedEvent,
                          node.FixedNumberOfControlPointsModifiedEvent, node.DisplayModifiedEvent,
                          node.PointPositionDefinedEvent, node.PointPositionUndefinedEvent):
                self._node_observers.append(_observe(node, event, self.updateWidget))
        self._node = node
        self.updateWidget()

    def currentNodeActive(self) -> bool:
        selection = self.selectionNode()
        return self._node is not None and selection is not None and selection.GetActivePlaceNodeID() == self._node.GetID()

    def setCurrentNodeActive(self, active) -> None:
        selection = self.selectionNode()
        if selection is None or self._node is None:
            return
        if active:
            selection.SetActivePlaceNodeClassName(self._node.GetClassName())
            selection.SetActivePlaceNodeID(self._node.GetID())
        elif self.currentNodeActive():
            selection.SetActivePlaceNodeID(None)
        self.updateWidget()

    def placeModeEnabled(self) -> bool:
        interaction = self.interactionNode()
        return bool(interaction is not None and self.currentNodeActive()
                    and interaction.GetCurrentInteractionMode() == interaction.Place)

    def setPlaceModeEnabled(self, enable) -> None:
        interaction = self.interactionNode()
        if interaction is None:
            return
        if enable:
            self.setCurrentNodeActive(True)
            interaction.SetCurrentInteractionMode(interaction.Place)
        elif self.placeModeEnabled():
            interaction.SetCurrentInteractionMode(interaction.ViewTransform)
        self.updateWidget()

    def updateWidget(self) -> None:
        node = self._node
        if self.mrmlScene() is None or self.interactionNode() is None or node is None:
            for button in (self._color, self._place, self._delete, self._more):
                button.setEnabled(False)
            if self._last_place:
                self._last_place = False
                self.activeMarkupsFiducialPlaceModeChanged.emit(False)
                self.activeMarkupsPlaceModeChanged.emit(False)
            return
        self._place.setEnabled(not node.GetControlPointPlacementComplete())
        self._color.setEnabled(True)
        self._delete.setEnabled(node.GetNumberOfControlPoints() > 0)
        self._more.setEnabled(True)
        blocked = self._place.blockSignals(True)
        self._place.setChecked(self.placeModeEnabled())
        self._place.blockSignals(blocked)
        if self._last_place != self.placeModeEnabled():
            self._last_place = self.placeModeEnabled()
            self.activeMarkupsFiducialPlaceModeChanged.emit(self._last_place)
            self.activeMarkupsPlaceModeChanged.emit(self._last_place)

    buttonsVisible = passive("buttonsVisible", True)
    deleteAllControlPointsOptionVisible = passive("deleteAllControlPointsOptionVisible", True)
    unsetLastControlPointOptionVisible = passive("unsetLastControlPointOptionVisible", False)
    unsetAllControlPointsOptionVisible = passive("unsetAllControlPointsOptionVisible", False)
    placeMultipleMarkups = passive("placeMultipleMarkups", 0)
    placeModePersistency = passive("placeModePersistency", False)
    nodeColor = passive("nodeColor")
    defaultNodeColor = passive("defaultNodeColor")


class qMRMLSliderWidget(_SceneMixin, ctkSliderWidget):
    quantity = passive("quantity", "")
    unitAwareProperties = passive("unitAwareProperties")


class qMRMLSpinBox(_SceneMixin, ctkDoubleSpinBox):
    quantity = passive("quantity", "")
    unitAwareProperties = passive("unitAwareProperties")


class qMRMLRangeWidget(_SceneMixin, ctkRangeWidget):
    quantity = passive("quantity", "")


class qMRMLSubjectHierarchyTreeView(_SceneMixin, QWidget):
    """Only the scene and the current item (a subject hierarchy item ID)."""

    currentItemChanged = signal("vtkIdType")

    def __init__(self, parent=None, **properties):
        self.__dict__["_item"] = 0
        super().__init__(parent, **properties)

    def currentItem(self) -> int:
        return self._item

    def setCurrentItem(self, item) -> None:
        if int(item) != self._item:
            self._item = int(item)
            self.currentItemChanged.emit(self._item)

    def subjectHierarchyNode(self):
        import slicer

        scene = self.mrmlScene()
        return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene) if scene is not None else None

    nodeTypes = passive("nodeTypes")
    showRootItem = passive("showRootItem", False)
    multiSelection = passive("multiSelection", False)
    selectRoleSubMenuVisible = passive("selectRoleSubMenuVisible", False)


#: The widget classes this module adds to ``slicer``.
SLICER_WIDGETS = {cls.__name__: cls for cls in (
    qMRMLWidget, qSlicerWidget, qMRMLNodeComboBox, qSlicerMarkupsPlaceWidget, qMRMLSliderWidget, qMRMLSpinBox,
    qMRMLRangeWidget, qMRMLSubjectHierarchyTreeView)}
_ = qt  # the module is imported for its side effect of defining the Qt classes first
