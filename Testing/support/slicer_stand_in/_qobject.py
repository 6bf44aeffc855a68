"""QObject, signals and properties as PythonQt shows them to Python (stand-in, not Slicer source).

What PythonQt does, and this copies:

* A Q_PROPERTY is a Python attribute: ``w.value`` reads it, ``w.value = 3`` calls the C++ setter.
  ``w.property(name)`` / ``w.setProperty(name, v)`` reach the same Q_PROPERTYs, or a dynamic property
  when the class has no such Q_PROPERTY; ``property()`` of an unknown name is ``None``.
* A signal is reachable two ways: ``w.connect("valueChanged(int)", fn)`` (signature string, returns
  ``True``/``False``) and ``w.valueChanged.connect(fn)`` (the signal's first overload, as moc lists them).
* A slot gets at most as many signal arguments as the Python function declares
  (``co_argcount``, minus ``self`` for a bound method, defaults included; ``*args`` or a non-Python
  callable gets all of them): PythonQtSignalTarget::call.
* An exception raised by a slot does not reach the code that emitted the signal: PythonQt prints it and
  goes on. The stand-in does the same and also records it (:func:`errors`) so tests can fail on it.
* ``blockSignals(True)`` silences a sender, as in Qt.

Deliberately stricter than PythonQt: connecting to a signal the class does not have returns ``False``
like PythonQt, and is also recorded as an error (in Slicer it only prints a warning and the button
silently does nothing).
"""

from __future__ import annotations

import inspect
import sys
import traceback

_ERRORS: list[str] = []


def errors() -> list[str]:
    """Everything a slot raised, or a failed connection, since the last :func:`clear_errors`."""
    return list(_ERRORS)


def clear_errors() -> None:
    _ERRORS.clear()


def record_error(message: str) -> None:
    _ERRORS.append(message)
    print(message, file=sys.stderr)


def normalize_signature(signature: str) -> str:
    """``valueChanged( const QString & )`` -> ``valueChanged(QString)`` (as QMetaObject::normalizedSignature)."""
    signature = signature.replace("const ", "").replace("&", "")
    return "".join(signature.split())


def python_arg_count(fn) -> int | None:
    """How many signal arguments PythonQt hands to ``fn`` (None: all of them)."""
    if inspect.ismethod(fn):
        func = fn.__func__
        if inspect.isfunction(func) and not func.__code__.co_flags & inspect.CO_VARARGS:
            return func.__code__.co_argcount - 1
        return None
    if inspect.isfunction(fn) and not fn.__code__.co_flags & inspect.CO_VARARGS:
        return fn.__code__.co_argcount
    return None


class signal:
    """Declares a Qt signal: its overloads' parameter lists, first the one ``obj.sig.connect`` uses.

    ``adapt`` maps an overload's parameter list to ``f(sender, *emitted) -> arguments of that overload``
    (e.g. ``currentIndexChanged(QString)`` gets the item text of the emitted index).
    """

    def __init__(self, *overloads: str, adapt=None):
        self.overloads = [normalize_signature(o) for o in (overloads or ("",))]
        self.adapt = {normalize_signature(k): v for k, v in (adapt or {}).items()}

    def __set_name__(self, owner, name):
        self.name = name

    def signatures(self):
        return [f"{self.name}({o})" for o in self.overloads]

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        bound = obj.__dict__.setdefault("_bound_signals", {})
        if self.name not in bound:
            bound[self.name] = BoundSignal(obj, self)
        return bound[self.name]


class BoundSignal:
    def __init__(self, owner, decl: signal):
        self.owner = owner
        self.decl = decl
        self.connections: list[tuple[str, object]] = []  # (overload parameters, callable)

    def connect(self, fn, overload: str | None = None) -> bool:
        self.connections.append((self.decl.overloads[0] if overload is None else overload, fn))
        return True

    def disconnect(self, fn=None, overload: str | None = None) -> bool:
        before = len(self.connections)
        self.connections = [(o, f) for o, f in self.connections
                            if not ((fn is None or f == fn) and (overload is None or o == overload))]
        return len(self.connections) != before

    def receivers(self, overload: str | None = None) -> int:
        return sum(1 for o, _ in self.connections if overload is None or o == overload)

    def emit(self, *args) -> None:
        if self.owner.signalsBlocked():
            return
        for overload, fn in list(self.connections):
            if (overload, fn) not in self.connections:  # disconnected by an earlier slot
                continue
            values = tuple(self.decl.adapt[overload](self.owner, *args)) if overload in self.decl.adapt else args
            count = python_arg_count(fn)
            if count is not None:
                values = values[:count]
            try:
                fn(*values)
            except Exception:  # PythonQt prints a slot's exception and carries on
                record_error(f"exception in a slot of {type(self.owner).__name__} "
                             f"{self.owner.objectName!r}.{self.decl.name}({overload}):\n{traceback.format_exc()}")

    __call__ = emit


class qproperty(property):
    """A Q_PROPERTY (``obj.property(name)`` sees it; a plain Python attribute it does not)."""


def passive(name: str, default=None):
    """A Q_PROPERTY the stand-in stores but does not act on (e.g. ``wordWrap``, ``suffix``)."""
    key = f"_p_{name}"
    return qproperty(lambda self: self.__dict__.get(key, default), lambda self, v: self.__dict__.__setitem__(key, v))


def declared_signals(cls) -> dict[str, signal]:
    out = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, signal):
                out[name] = value
    return out


class QObject:
    objectNameChanged = signal("QString")
    destroyed = signal("", "QObject*")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_parent=None, _children=[], _dynamic={}, _blocked=False, _objectName="")
        if parent is not None:
            self.setParent(parent)
        for name, value in properties.items():  # PythonQt: qt.QPushButton(text="x")
            setattr(self, name, value)

    def __repr__(self):
        return f"{type(self).__name__} ({self._objectName!r})"

    # object name: PythonQt shows objectName as ``name`` too (slicer.util.childWidgetVariables uses .name)
    def _get_name(self):
        return self._objectName

    def setObjectName(self, name):
        name = str(name or "")
        if name != self._objectName:
            self._objectName = name
            self.objectNameChanged.emit(name)

    objectName = qproperty(_get_name, setObjectName)
    name = property(_get_name, setObjectName)

    # tree
    def parent(self):
        return self._parent

    def setParent(self, parent) -> None:
        if self._parent is not None and self in self._parent._children:
            self._parent._children.remove(self)
        self._parent = parent
        if parent is not None:
            parent._children.append(self)

    def children(self):
        return list(self._children)

    def findChildren(self, cls=None, name=None):
        out = []
        for child in self._children:
            if (cls is None or isinstance(child, cls)) and (name is None or child.objectName == name):
                out.append(child)
            out.extend(child.findChildren(cls, name))
        return out

    def findChild(self, cls=None, name=None):
        found = self.findChildren(cls, name)
        return found[0] if found else None

    def isWidgetType(self) -> bool:
        return False

    def className(self) -> str:
        return type(self).__name__

    def inherits(self, class_name: str) -> bool:
        return any(k.__name__ == class_name for k in type(self).__mro__)

    def deleteLater(self) -> None:
        self.setParent(None)

    # properties
    @classmethod
    def _qproperty(cls, name):
        attr = getattr(cls, name, None)
        return attr if isinstance(attr, qproperty) else None

    def property(self, name):
        if self._qproperty(name) is not None:
            return getattr(self, name)
        return self._dynamic.get(name)

    def setProperty(self, name, value) -> bool:
        """True for a Q_PROPERTY; a dynamic property otherwise (returns False, as QObject::setProperty)."""
        if self._qproperty(name) is not None:
            setattr(self, name, value)
            return True
        self._dynamic[name] = value
        return False

    def dynamicPropertyNames(self):
        return list(self._dynamic)

    # signals
    def blockSignals(self, block: bool) -> bool:
        old, self._blocked = self._blocked, bool(block)
        return old

    def signalsBlocked(self) -> bool:
        return self._blocked

    def _find_signal(self, signature: str):
        signature = normalize_signature(signature)
        name, _, rest = signature.partition("(")
        decl = declared_signals(type(self)).get(name)
        if decl is not None and rest[:-1] in decl.overloads:
            return getattr(self, name), rest[:-1]
        return None, None

    def connect(self, signature: str, receiver, slot=None) -> bool:
        bound, overload = self._find_signal(signature)
        if bound is None:
            record_error(f"PythonQt::connect: {type(self).__name__} {self.objectName!r} has no signal {signature!r}")
            return False
        if slot is not None:  # QObject.connect(sender, signal, receiver, slot) form
            receiver = getattr(receiver, normalize_signature(slot).partition("(")[0])
        return bound.connect(receiver, overload)

    def disconnect(self, signature: str, receiver=None, slot=None) -> bool:
        bound, overload = self._find_signal(signature)
        if bound is None:
            return False
        if slot is not None:
            receiver = getattr(receiver, normalize_signature(slot).partition("(")[0])
        return bound.disconnect(receiver, overload)

    def receivers(self, signature: str) -> int:
        bound, overload = self._find_signal(signature)
        return bound.receivers(overload) if bound is not None else 0
