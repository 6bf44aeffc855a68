"""Stand-in for ``qt.QUiLoader`` (QFormBuilder): builds the stand-in widgets from a Qt Designer .ui file.

As QFormBuilder does: each ``<widget>`` becomes an instance of its class, parented to the enclosing
widget, named by ``name``; its ``<property>`` elements are applied in file order through the Q_PROPERTY
setters (so ``decimals`` after ``minimum`` re-rounds the bound as in Qt), ``stdset="0"`` ones become
dynamic properties (``SlicerParameterName``); a table's ``<column>`` headers and a combo box's ``<item>``s
are added after its properties and its ``currentIndex`` applied last; ``<layout>``s become layouts (unnamed ones keep an empty object
name) holding the widgets; ``<connections>`` are made with ``QObject::connect``.

Enumerations as QFormBuilder reads them (Qt 5.15 ``domPropertyToVariant``): an ``<enum>`` holds one
enumerator (its ``Class::`` qualifier dropped, as ``fixEnum`` does) looked up with
``QMetaEnum::keyToValue``; a ``<set>`` holds ``|``-separated flags (``Key`` or ``Class::Key``) combined by
``QMetaEnum::keysToValue``. A property declared with :class:`enum_property` (e.g. ctkPathLineEdit's
``filters``) gets the enumerators' numbers; other properties keep the element's text.

Stricter than QFormBuilder: a class the stand-in does not have raises (QFormBuilder would create the
``<extends>`` base class and print a warning); an unknown sender/receiver/signal/slot is recorded as an
error (QFormBuilder prints a warning); an ``<enum>`` holding ``A|B``, or an enumerator the property's enum
does not have, is recorded as an error and the property left unset (QFormBuilder says nothing: ``fixEnum``
keeps what follows the last ``:``, so ``<enum>E::A|E::B</enum>`` silently sets ``B`` alone, and an unknown
key sets -1, every bit).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ._qobject import QObject, qproperty, record_error

_UNSET = object()

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


@dataclass(frozen=True)
class MetaEnum:
    """What QFormBuilder reads from a Q_PROPERTY's QMetaEnum: the class declaring the enum (the scope in
    ``Class::Key``), its keys and values, and whether it is a Q_FLAGS type."""

    scope: str
    keys: dict
    is_flag: bool = False

    def _key(self, key: str):
        scope, sep, name = key.strip().rpartition("::")
        if sep and scope != self.scope:
            return None
        return self.keys.get(name)

    def key_to_value(self, key: str):
        """QMetaEnum::keyToValue: one key (``Key`` or ``Class::Key``); None where Qt returns -1."""
        return self._key(key)

    def keys_to_value(self, keys: str):
        """QMetaEnum::keysToValue: ``|``-separated keys OR-ed together; None where Qt returns -1."""
        value = 0
        for key in keys.split("|"):
            v = self._key(key)
            if v is None:
                return None
            value |= v
        return value


class enum_property(qproperty):
    """A Q_PROPERTY of an enum or flags type (PythonQt shows its value as an int); ``meta`` is its enum."""

    def __init__(self, fget, fset, meta: MetaEnum):
        super().__init__(fget, fset)
        self.meta = meta


def stored_enum(name: str, meta: MetaEnum, default: int) -> enum_property:
    """An enum/flags Q_PROPERTY the stand-in stores (as an int) but does not act on."""
    key = f"_p_{name}"
    return enum_property(lambda self: self.__dict__.get(key, default),
                         lambda self, v: self.__dict__.__setitem__(key, int(v)), meta)


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

    def _enum(self, obj, prop: ET.Element, elem: ET.Element):
        """The value of an ``<enum>``/``<set>`` property as QFormBuilder computes it; ``_UNSET`` (and an error
        recorded) where the element is not valid for the property."""
        name, text = prop.get("name"), (elem.text or "").strip()
        where = f"QUiLoader: {type(obj).__name__} {obj.objectName!r}: property {name!r}"
        if elem.tag == "enum" and "|" in text:
            record_error(f"{where}: <enum>{text}</enum> holds several flags; an <enum> is one enumerator "
                         f"(QMetaEnum::keyToValue), flags are written <set>{text}</set>")
            return _UNSET
        qprop = obj._qproperty(name) if prop.get("stdset") != "0" else None
        meta = getattr(qprop, "meta", None)
        if meta is None:
            return text
        if elem.tag == "set":
            if not meta.is_flag:  # QFormBuilder: Q_ASSERT(e.isFlag())
                record_error(f"{where}: <set>{text}</set> on an enum that is not a flags type")
                return _UNSET
            value = meta.keys_to_value(text)
        else:
            value = meta.key_to_value(text.rpartition(":")[2])  # fixEnum: what follows the last ':'
        if value is None:
            record_error(f"{where}: {text!r} is not a key of {meta.scope}'s enum ({', '.join(meta.keys)})")
            return _UNSET
        return value

    def _apply(self, obj, prop: ET.Element) -> None:
        name = prop.get("name")
        elem = next(iter(prop), None)
        if elem is not None and elem.tag in ("enum", "set"):
            value = self._enum(obj, prop, elem)
            if value is _UNSET:
                return
        else:
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
