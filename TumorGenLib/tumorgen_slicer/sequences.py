"""Synthetic follow-ups as a Slicer sequence, browsed like a real series of scans.

One sequence node per quantity the views show (:data:`QUANTITIES`: the t1n, the tumor probability and the labels),
indexed by ``day`` (numeric, unit day), and one browser node that keeps them in step and drives a proxy node per
quantity; the views show the proxies, so stepping the browser (Slicer's sequence toolbar) steps the views. A time
point is the latest observed scan at the series' latest day, or a follow-up predicted at a day; setting a day that is
there already replaces its items. The time points of one t1n share one browser (found again by its attribute), so a
prediction at another day adds to the series being browsed.

Slicer's Sequences API as in 5.6 and later, which the ``slicer-core`` wheel of the headless tests has too:
``vtkMRMLSequenceNode.SetIndexName/SetIndexUnit/SetIndexType/SetDataNodeAtValue`` (the sequence keeps a copy of the
node), ``vtkMRMLSequenceBrowserNode.SetAndObserveMasterSequenceNodeID/AddSynchronizedSequenceNodeID/GetProxyNode/
SetSelectedItemNumber``, and ``vtkSlicerSequencesLogic.UpdateProxyNodesFromSequences``.
"""

from __future__ import annotations

from tumorgen.volume import Volume
from tumorgen_slicer.nodes import set_volume

#: What each time point holds: quantity -> whether it is a label map.
QUANTITIES = {"t1n": False, "probability": False, "labels": True}
INDEX_NAME = INDEX_UNIT = "day"
#: On the browser: the ID of the t1n whose follow-ups it holds, and the index value of its observed time point.
FOLLOWUP_OF = "TumorGen.followupOf"
OBSERVED_DAY = "TumorGen.observedDay"
#: On each sequence: its quantity.
QUANTITY = "TumorGen.quantity"
#: On a browser: who follows its steps (:func:`follow_steps`).
STEPS_FOLLOWED_BY = "TumorGen.stepsFollowedBy"
#: On the segmentation of the time point a browser shows (:func:`time_point_segmentation`): the browser's ID.
TIME_POINT_OF = "TumorGen.timePointOf"


def index_value(day: float) -> str:
    """A day as the sequences' index value (``120``, ``212.5``)."""
    return f"{float(day):g}"


def followup_browser(ctx, t1n, *, create: bool = True):
    """The sequence browser of ``t1n``'s follow-ups, created with its sequences the first time (None when not there and not
    ``create``)."""
    scene = ctx.scene
    for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSequenceBrowserNode")):
        browser = scene.GetNthNodeByClass(n, "vtkMRMLSequenceBrowserNode")
        if browser.GetAttribute(FOLLOWUP_OF) == t1n.GetID():
            return browser
    if not create:
        return None
    ctx.module_logic("Sequences")  # registers the browser node class with the scene (Slicer's Sequences module has)
    base = f"{t1n.GetName()} follow-up"
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", base)
    browser.SetAttribute(FOLLOWUP_OF, t1n.GetID())
    for n, quantity in enumerate(QUANTITIES):
        sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", f"{base} {quantity}")
        sequence.SetIndexName(INDEX_NAME)
        sequence.SetIndexUnit(INDEX_UNIT)
        sequence.SetIndexType(sequence.NumericIndex)
        sequence.SetAttribute(QUANTITY, quantity)
        if n == 0:  # the master sequence: the browser steps through its index values
            browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
        else:
            browser.AddSynchronizedSequenceNodeID(sequence.GetID())
    return browser


def sequences(browser) -> dict:
    """The browser's sequences by quantity."""
    import vtk

    found = vtk.vtkCollection()
    browser.GetSynchronizedSequenceNodes(found, True)
    nodes = (found.GetItemAsObject(n) for n in range(found.GetNumberOfItems()))
    return {node.GetAttribute(QUANTITY): node for node in nodes if node.GetAttribute(QUANTITY) in QUANTITIES}


def days(browser) -> list[float]:
    """The days of the browser's time points, in order."""
    master = browser.GetMasterSequenceNode()
    return [float(master.GetNthIndexValue(n)) for n in range(master.GetNumberOfDataNodes())]


def set_time_point(browser, day: float, items: dict) -> None:
    """Add (or replace) the time point at ``day``: ``items`` maps each quantity to a volume node or an engine volume."""
    value = index_value(day)
    for quantity, sequence in sequences(browser).items():
        item = items[quantity]
        if isinstance(item, Volume):
            item = _detached(item, labelmap=QUANTITIES[quantity])
        sequence.SetDataNodeAtValue(item, value)


def set_observed(browser, day: float, items: dict) -> None:
    """The observed time point (the latest scan) at ``day``; an earlier observed one at another day goes (the series'
    latest day changed)."""
    before = browser.GetAttribute(OBSERVED_DAY)
    if before is not None and before != index_value(day):
        for sequence in sequences(browser).values():
            sequence.RemoveDataNodeAtValue(before)
    set_time_point(browser, day, items)
    browser.SetAttribute(OBSERVED_DAY, index_value(day))


def show_day(ctx, browser, day: float) -> dict:
    """Select the time point at ``day`` (its proxies made first if needed); returns the proxy nodes by quantity."""
    ctx.module_logic("Sequences").UpdateProxyNodesFromSequences(browser)
    master = browser.GetMasterSequenceNode()
    browser.SetSelectedItemNumber(master.GetItemNumberFromIndexValue(index_value(day)))
    return {quantity: browser.GetProxyNode(sequence) for quantity, sequence in sequences(browser).items()}


def selected_day(browser) -> float | None:
    """The day of the time point the browser has selected (None when it has none)."""
    master, n = browser.GetMasterSequenceNode(), browser.GetSelectedItemNumber()
    if master is None or not 0 <= n < master.GetNumberOfDataNodes():
        return None
    return float(master.GetNthIndexValue(n))


def follow_steps(browser, owner: str, stepped) -> None:
    """Call ``stepped(day)`` whenever ``browser`` is modified with another time point selected than before (Slicer's
    sequence toolbar steps it), once per ``owner``: a second call with the same owner adds nothing."""
    import vtk

    if browser.GetAttribute(STEPS_FOLLOWED_BY) == owner:
        return
    browser.SetAttribute(STEPS_FOLLOWED_BY, owner)
    last = [selected_day(browser)]

    def modified(caller, _event) -> None:
        day = selected_day(caller)
        if day is not None and day != last[0]:
            last[0] = day
            stepped(day)

    browser.AddObserver(vtk.vtkCommand.ModifiedEvent, modified)


def time_point_segmentation(ctx, browser, labels):
    """The labels of the time point ``browser`` shows (``labels``, its labels proxy) as a segmentation node, for their
    surfaces in 3D: made again each time, and the one made for the time point shown before goes, so that another day's
    labels never stay in the views."""
    from tumorgen_slicer.segmentations import labelmap_to_segmentation

    scene = ctx.scene
    nodes = [scene.GetNthNodeByClass(n, "vtkMRMLSegmentationNode") for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]
    for node in nodes:
        if node.GetAttribute(TIME_POINT_OF) == browser.GetID():
            scene.RemoveNode(node)
    day = selected_day(browser)
    node = labelmap_to_segmentation(ctx, labels, f"{browser.GetName()} day {index_value(day) if day is not None else '?'} labels segmentation")
    node.SetAttribute(TIME_POINT_OF, browser.GetID())
    return node


def _detached(volume: Volume, *, labelmap: bool):
    """A volume node outside the scene holding ``volume`` (the sequence keeps its own copy)."""
    import slicer

    node = slicer.vtkMRMLLabelMapVolumeNode() if labelmap else slicer.vtkMRMLScalarVolumeNode()
    set_volume(node, volume)
    return node
