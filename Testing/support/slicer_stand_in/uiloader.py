"""Stand-in for ``qt.QUiLoader`` (QFormBuilder): builds the stand-in widgets from a Qt Designer .ui file.

As QFormBuilder does: each ``<widget>`` becomes an instance of its class, parented to the enclosing
widget, named by ``name``; its ``<property>`` elements are applied in file order through the Q_PROPERTY
setters (so ``decimals`` after ``minimum`` re-rounds the bound as in Qt), ``stdset="0"`` ones become
dynamic properties (``SlicerParameterName``); a table's ``<column>`` headers and a combo box's ``<item>``s
are added after its properties and its ``currentIndex`` applied last; ``<layout>``s become layouts (unnamed ones keep an empty object
name) holding the widgets; ``<connections>`` are made with ``QObject::connect``.

Stricter than QFormBuilder: a class the stand-in does not have raises (QFormBuilder would create the
``<extends>`` base class and print a warning); an unknown sender/receiver/signal/slot is recorded as an
error (QFormBuilder prints a warning).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ._qobject import QObject, record_error

#: Designer properties the stand-in keeps as dynamic properties when the class does not model them.
WARNINGS: list[str] = []


def _value(prop: ET.Element):
    for child in prop:
        tag, text = child.tag, (child.text or "")
        if tag == "string":
            return text
        if tag == "number":
            return int(text)
        if tag == "double":
            return float(text)
        if tag == "bool":
            return text.strip().lower() == "true"
        if tag in ("enum", "set", "cstring", "cursorShape", "char", "url"):
            return text.strip()
        if tag == "stringlist":
            return [s.text or "" for s in child.findall("string")]
        return {sub.tag: (sub.text or "") for sub in child} or text  # size, rect, sizepolicy, font, color, iconset...
    return None


def _classes():
    from . import ctk, qt
    from .mrml_widgets import SLICER_WIDGETS, qSlicerScriptedLoadableModuleWidget

    out = {name: obj for name, obj in vars(qt).items() if isinstance(obj, type) and issubclass(obj, QObject)}
    out.update({name: obj for name, obj in vars(ctk).items() if isinstance(obj, type) and issubclass(obj, QObject)})
    out.update(SLICER_WIDGETS)
    out.pop(qSlicerScriptedLoadableModuleWidget.__name__, None)
    return out


class QUiLoader(QObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.warnings: list[str] = []

    def load(self, device, parent=None):
        from .qt import QFile

        path = device.fileName() if isinstance(device, QFile) else str(device)
        root = ET.parse(path).getroot()
        self._classes = _classes()
        top = root.find("widget")
        if top is None:
            return None
        widget = self._widget(top, parent)
        for connection in root.findall("connections/connection"):
            self._connect(widget, connection)
        return widget

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        WARNINGS.append(message)

    def _apply(self, obj, prop: ET.Element) -> None:
        name = prop.get("name")
        value = _value(prop)
        if prop.get("stdset") == "0" or obj._qproperty(name) is None:
            if prop.get("stdset") != "0":
                self._warn(f"{type(obj).__name__} {obj.objectName!r}: property {name!r} is not modelled by the stand-in")
            obj._dynamic[name] = value
            return
        setattr(obj, name, value)

    def _widget(self, elem: ET.Element, parent):
        class_name = elem.get("class")
        cls = self._classes.get(class_name)
        if cls is None:
            raise RuntimeError(f"the Slicer stand-in has no widget class {class_name!r} (used by {elem.get('name')!r}); "
                               "add it to Testing/support/slicer_stand_in")
        obj = cls()
        obj.setObjectName(elem.get("name", ""))
        if parent is not None:
            obj.setParent(parent)
        current_index = None
        for prop in elem.findall("property"):
            if prop.get("name") == "currentIndex" and hasattr(obj, "addItem"):
                current_index = _value(prop)
                continue
            self._apply(obj, prop)
        for attribute in elem.findall("attribute"):
            obj._dynamic[attribute.get("name")] = _value(attribute)
        columns = [next((_value(p) for p in c.findall("property") if p.get("name") == "text"), "") for c in elem.findall("column")]
        if columns:  # a table's header items (QFormBuilder: the column count, then each header's text)
            obj.setColumnCount(len(columns))
            obj.setHorizontalHeaderLabels(columns)
        for item in elem.findall("item"):  # combo box / list items
            text = next((_value(p) for p in item.findall("property") if p.get("name") == "text"), "")
            obj.addItem(text)
        if current_index is not None:
            obj.currentIndex = current_index
        for child in elem:
            if child.tag == "widget":
                self._widget(child, obj)
            elif child.tag == "layout":
                self._layout(child, obj)
        return obj

    def _layout(self, elem: ET.Element, parent):
        from .qt import QLayout

        cls = self._classes.get(elem.get("class"))
        if cls is None:
            raise RuntimeError(f"the Slicer stand-in has no layout class {elem.get('class')!r}")
        layout = cls()
        layout.setObjectName(elem.get("name", ""))
        if isinstance(parent, QLayout):
            parent.addLayout(layout)
        else:
            parent.setLayout(layout)
        for prop in elem.findall("property"):
            self._apply(layout, prop)
        widget = layout.parentWidget()
        for item in elem.findall("item"):
            for child in item:
                if child.tag == "widget":
                    layout.addWidget(self._widget(child, widget))
                elif child.tag == "layout":
                    self._layout(child, layout)
                elif child.tag == "spacer":
                    layout.addStretch()
        return layout

    def _connect(self, root, connection: ET.Element) -> None:
        objects = {o.objectName: o for o in [root, *root.findChildren()] if o.objectName}
        sender, receiver = objects.get(connection.findtext("sender")), objects.get(connection.findtext("receiver"))
        signal, slot = connection.findtext("signal"), connection.findtext("slot")
        where = f"{connection.findtext('sender')}.{signal} -> {connection.findtext('receiver')}.{slot}"
        if sender is None or receiver is None:
            record_error(f"QUiLoader: connection {where}: no such sender or receiver")
            return
        if not callable(getattr(receiver, (slot or "").partition("(")[0], None)):
            record_error(f"QUiLoader: connection {where}: the receiver has no slot {slot!r}")
            return
        sender.connect(signal, receiver, slot)
