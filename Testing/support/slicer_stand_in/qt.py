"""Stand-in for PythonQt's ``qt`` module (not Slicer source): the Qt 5.15 classes Slicer's
parameterNodeWrapper, slicer.util, ScriptedLoadableModule and a module's .ui use, with the behaviour
they rely on (see README.md for the list and where each rule comes from).

Defaults and clamping follow Qt 5.15: QSpinBox/QSlider 0..99, QDoubleSpinBox 0..99.99 with 2 decimals
(values and bounds rounded to ``decimals``, the requested bounds remembered so a later ``setDecimals``
re-rounds them), ``setMinimum`` raising the maximum when needed and the reverse, values bounded to the
range, ``valueChanged`` only on a change, QProgressBar ignoring out-of-range values, QComboBox picking
item 0 when its first item is added and -1 when cleared, QAbstractButton.setChecked doing nothing on a
button that is not checkable, a disabled parent disabling its children.
"""

from __future__ import annotations

import os
import time
import weakref

from ._qobject import QObject, passive, qproperty, signal

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _to_int(value, what: str) -> int:
    value = int(value)
    if not INT_MIN <= value <= INT_MAX:
        raise TypeError(f"{what}: {value} does not fit a C++ int (PythonQt finds no matching overload)")
    return value


class Qt:
    """The few Qt:: enums the stand-in uses."""

    Unchecked, PartiallyChecked, Checked = 0, 1, 2
    Horizontal, Vertical = 1, 2
    NoModifier, ShiftModifier, ControlModifier = 0, 0x02000000, 0x04000000
    AlignLeft, AlignRight, AlignHCenter, AlignTop, AlignBottom, AlignVCenter, AlignCenter = 1, 2, 4, 0x20, 0x40, 0x80, 0x84


# ---------------------------------------------------------------------------------------------- widgets
class QWidget(QObject):
    customContextMenuRequested = signal("QPoint")
    windowTitleChanged = signal("QString")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_enabled=True, _hidden=False, _layout=None)
        super().__init__(parent, **properties)

    def isWidgetType(self) -> bool:
        return True

    def isEnabled(self) -> bool:
        parent = self._parent
        return self._enabled and (parent.isEnabled() if isinstance(parent, QWidget) else True)

    def setEnabled(self, enabled: bool) -> None:
        self._enabled = bool(enabled)

    def setDisabled(self, disabled: bool) -> None:
        self.setEnabled(not disabled)

    enabled = qproperty(isEnabled, setEnabled)

    def isVisible(self) -> bool:
        parent = self._parent
        return not self._hidden and (parent.isVisible() if isinstance(parent, QWidget) else True)

    def setVisible(self, visible: bool) -> None:
        self._hidden = not visible

    def show(self) -> None:
        self.setVisible(True)

    def hide(self) -> None:
        self.setVisible(False)

    visible = qproperty(isVisible, setVisible)

    def layout(self):
        return self._layout

    def setLayout(self, layout) -> None:
        if self._layout is not None:  # QWidget::setLayout: "already has a layout" warning, ignored
            return
        self._layout = layout
        layout.setParent(self)
        layout._adopt_items()

    def setParent(self, parent, *flags) -> None:
        super().setParent(parent)

    def parentWidget(self):
        return self._parent if isinstance(self._parent, QWidget) else None

    toolTip = passive("toolTip", "")
    statusTip = passive("statusTip", "")
    whatsThis = passive("whatsThis", "")
    windowTitle = passive("windowTitle", "")
    styleSheet = passive("styleSheet", "")
    accessibleName = passive("accessibleName", "")
    accessibleDescription = passive("accessibleDescription", "")
    geometry = passive("geometry")
    sizePolicy = passive("sizePolicy")
    minimumSize = passive("minimumSize")
    maximumSize = passive("maximumSize")
    baseSize = passive("baseSize")
    sizeIncrement = passive("sizeIncrement")
    font = passive("font")
    cursor = passive("cursor")
    focusPolicy = passive("focusPolicy")
    contextMenuPolicy = passive("contextMenuPolicy")
    layoutDirection = passive("layoutDirection")
    locale = passive("locale")
    autoFillBackground = passive("autoFillBackground", False)
    mouseTracking = passive("mouseTracking", False)
    acceptDrops = passive("acceptDrops", False)
    windowIcon = passive("windowIcon")
    inputMethodHints = passive("inputMethodHints")


class QFrame(QWidget):
    frameShape = passive("frameShape")
    frameShadow = passive("frameShadow")
    lineWidth = passive("lineWidth", 1)
    midLineWidth = passive("midLineWidth", 0)


class QLabel(QFrame):
    linkActivated = signal("QString")
    linkHovered = signal("QString")

    def __init__(self, text="", parent=None, **properties):
        if isinstance(text, QWidget):
            text, parent = "", text
        self.__dict__["_text"] = str(text)
        super().__init__(parent, **properties)

    def setText(self, text) -> None:
        self._text = "" if text is None else str(text)

    def clear(self) -> None:
        self._text = ""

    text = qproperty(lambda self: self._text, setText)
    wordWrap = passive("wordWrap", False)
    alignment = passive("alignment")
    textFormat = passive("textFormat")
    pixmap = passive("pixmap")
    scaledContents = passive("scaledContents", False)
    margin = passive("margin", 0)
    indent = passive("indent", -1)
    openExternalLinks = passive("openExternalLinks", False)
    textInteractionFlags = passive("textInteractionFlags")
    buddy = passive("buddy")


class QAbstractButton(QWidget):
    # moc lists clicked(bool) before its default-argument clone clicked()
    clicked = signal("bool", "", adapt={"": lambda w, checked: ()})
    toggled = signal("bool")
    pressed = signal("")
    released = signal("")

    _default_checkable = False

    def __init__(self, text="", parent=None, **properties):
        if isinstance(text, QWidget):
            text, parent = "", text
        self.__dict__.update(_text=str(text), _checkable=self._default_checkable, _checked=False)
        super().__init__(parent, **properties)

    def setText(self, text) -> None:
        self._text = "" if text is None else str(text)

    text = qproperty(lambda self: self._text, setText)

    def isCheckable(self) -> bool:
        return self._checkable

    def setCheckable(self, checkable: bool) -> None:
        self._checkable = bool(checkable)
        if not self._checkable:
            self._checked = False

    checkable = qproperty(isCheckable, setCheckable)

    def isChecked(self) -> bool:
        return self._checked

    def setChecked(self, checked: bool) -> None:
        checked = bool(checked)
        if not self._checkable or checked == self._checked:
            return
        self._checked = checked
        self._check_state_set()
        self.toggled.emit(checked)

    def _check_state_set(self) -> None:
        """QAbstractButton::checkStateSet: subclasses emit their own signal before toggled."""

    checked = qproperty(isChecked, setChecked)

    def toggle(self) -> None:
        self.setChecked(not self._checked)

    def click(self) -> None:
        """A user click: nothing on a disabled button; a checkable one toggles first, then clicked."""
        if not self.isEnabled():
            return
        self.pressed.emit()
        self.released.emit()
        if self._checkable:
            self.setChecked(not self._checked)
        self.clicked.emit(self._checked)

    icon = passive("icon")
    iconSize = passive("iconSize")
    shortcut = passive("shortcut")
    autoRepeat = passive("autoRepeat", False)
    autoExclusive = passive("autoExclusive", False)


class QPushButton(QAbstractButton):
    autoDefault = passive("autoDefault", False)
    default = passive("default", False)
    flat = passive("flat", False)
    menu = passive("menu")


class QToolButton(QAbstractButton):
    triggered = signal("QAction*")
    popupMode = passive("popupMode")
    toolButtonStyle = passive("toolButtonStyle")
    autoRaise = passive("autoRaise", False)
    arrowType = passive("arrowType")


class QRadioButton(QAbstractButton):
    _default_checkable = True


class QCheckBox(QAbstractButton):
    stateChanged = signal("int")
    _default_checkable = True

    def _check_state_set(self) -> None:
        self.stateChanged.emit(Qt.Checked if self._checked else Qt.Unchecked)

    def checkState(self) -> int:
        return Qt.Checked if self._checked else Qt.Unchecked

    def setCheckState(self, state) -> None:
        self.setChecked(state != Qt.Unchecked)

    tristate = passive("tristate", False)


class QGroupBox(QWidget):
    clicked = signal("bool", "", adapt={"": lambda w, checked: ()})
    toggled = signal("bool")

    def __init__(self, title="", parent=None, **properties):
        if isinstance(title, QWidget):
            title, parent = "", title
        self.__dict__.update(_title=str(title), _checkable=False, _checked=True)
        super().__init__(parent, **properties)

    title = qproperty(lambda self: self._title, lambda self, t: self.__dict__.__setitem__("_title", str(t)))

    def setCheckable(self, checkable) -> None:
        self._checkable = bool(checkable)

    checkable = qproperty(lambda self: self._checkable, setCheckable)

    def setChecked(self, checked) -> None:
        if self._checkable and bool(checked) != self._checked:
            self._checked = bool(checked)
            self.toggled.emit(self._checked)

    checked = qproperty(lambda self: self._checkable and self._checked, setChecked)
    flat = passive("flat", False)
    alignment = passive("alignment")


class QLineEdit(QWidget):
    textChanged = signal("QString")
    textEdited = signal("QString")
    editingFinished = signal("")
    returnPressed = signal("")

    def __init__(self, text="", parent=None, **properties):
        if isinstance(text, QWidget):
            text, parent = "", text
        self.__dict__.update(_text="", _maxLength=32767)
        super().__init__(parent, **properties)
        self.setText(text)

    def setText(self, text) -> None:
        text = ("" if text is None else str(text))[: self._maxLength]
        if text != self._text:
            self._text = text
            self.textChanged.emit(text)

    def clear(self) -> None:
        self.setText("")

    text = qproperty(lambda self: self._text, setText)

    def setMaxLength(self, length) -> None:
        self._maxLength = max(0, int(length))
        self.setText(self._text)

    maxLength = qproperty(lambda self: self._maxLength, setMaxLength)
    readOnly = passive("readOnly", False)
    placeholderText = passive("placeholderText", "")
    echoMode = passive("echoMode")
    inputMask = passive("inputMask", "")
    frame = passive("frame", True)
    alignment = passive("alignment")
    clearButtonEnabled = passive("clearButtonEnabled", False)


class QComboBox(QWidget):
    currentIndexChanged = signal("int", "QString", adapt={"QString": lambda w, i: (w.itemText(i),)})
    currentTextChanged = signal("QString")
    activated = signal("int", "QString", adapt={"QString": lambda w, i: (w.itemText(i),)})
    editTextChanged = signal("QString")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_items=[], _current=-1)
        super().__init__(parent, **properties)

    count = qproperty(lambda self: len(self._items), None)

    def itemText(self, index) -> str:
        return self._items[index][0] if 0 <= index < len(self._items) else ""

    def itemData(self, index):
        return self._items[index][1] if 0 <= index < len(self._items) else None

    def setItemText(self, index, text) -> None:
        if 0 <= index < len(self._items):
            self._items[index] = (str(text), self._items[index][1])

    def findText(self, text) -> int:
        return next((i for i, (t, _) in enumerate(self._items) if t == text), -1)

    def findData(self, data) -> int:
        return next((i for i, (_, d) in enumerate(self._items) if d == data), -1)

    def addItem(self, text, userData=None) -> None:
        self.insertItem(len(self._items), text, userData)

    def addItems(self, texts) -> None:
        for text in texts:
            self.addItem(text)

    def insertItem(self, index, text, userData=None) -> None:
        index = max(0, min(int(index), len(self._items)))
        self._items.insert(index, (str(text), userData))
        if self._current == -1 and len(self._items) == 1:  # the first item of an empty box becomes current
            self._set_current(0)
        elif self._current >= index and self._current != -1:
            self._current += 1  # same item stays current, no signal (QComboBox)

    def removeItem(self, index) -> None:
        if not 0 <= index < len(self._items):
            return
        del self._items[index]
        if index == self._current:
            self._current = -2  # the model removed the current row
            self._set_current(min(len(self._items) - 1, max(index, 0)) if self._items else -1)
        elif index < self._current:
            self._current -= 1

    def clear(self) -> None:
        self._items = []
        self._set_current(-1)

    def _set_current(self, index: int) -> None:
        if index == self._current:
            return
        old_text = self.itemText(self._current) if self._current >= 0 else None
        self._current = index
        self.currentIndexChanged.emit(index)
        if self.itemText(index) != old_text:
            self.currentTextChanged.emit(self.itemText(index))

    def setCurrentIndex(self, index) -> None:
        index = int(index)
        self._set_current(index if 0 <= index < len(self._items) else -1)

    currentIndex = qproperty(lambda self: self._current, setCurrentIndex)

    def setCurrentText(self, text) -> None:
        index = self.findText(text)
        if index >= 0:
            self.setCurrentIndex(index)

    currentText = qproperty(lambda self: self.itemText(self._current), setCurrentText)

    currentData = qproperty(lambda self: self.itemData(self._current), None)

    editable = passive("editable", False)
    maxVisibleItems = passive("maxVisibleItems", 10)
    sizeAdjustPolicy = passive("sizeAdjustPolicy")
    insertPolicy = passive("insertPolicy")
    placeholderText = passive("placeholderText", "")
    frame = passive("frame", True)
    iconSize = passive("iconSize")
    minimumContentsLength = passive("minimumContentsLength", 0)
    duplicatesEnabled = passive("duplicatesEnabled", False)
    modelColumn = passive("modelColumn", 0)


class QAbstractSpinBox(QWidget):
    editingFinished = signal("")
    readOnly = passive("readOnly", False)
    buttonSymbols = passive("buttonSymbols")
    specialValueText = passive("specialValueText", "")
    wrapping = passive("wrapping", False)
    frame = passive("frame", True)
    alignment = passive("alignment")
    accelerated = passive("accelerated", False)
    correctionMode = passive("correctionMode")
    keyboardTracking = passive("keyboardTracking", True)
    showGroupSeparator = passive("showGroupSeparator", False)
    prefix = passive("prefix", "")
    suffix = passive("suffix", "")

    def stepUp(self) -> None:
        self.stepBy(1)

    def stepDown(self) -> None:
        self.stepBy(-1)

    def stepBy(self, steps) -> None:
        self.setValue(self.value + steps * self.singleStep)

    text = qproperty(lambda self: f"{self.prefix}{self.cleanText}{self.suffix}", None)


class _IntRange:
    """QSpinBox / QAbstractSlider range rules (ints)."""

    def _init_range(self, minimum=0, maximum=99):
        self.__dict__.update(_min=minimum, _max=maximum, _value=minimum, _step=1)

    def setRange(self, minimum, maximum) -> None:
        minimum, maximum = _to_int(minimum, "setRange"), _to_int(maximum, "setRange")
        self._min, self._max = minimum, max(minimum, maximum)
        self._range_changed()
        self.setValue(self._value)

    def _range_changed(self) -> None:
        pass

    def setMinimum(self, minimum) -> None:
        minimum = _to_int(minimum, "setMinimum")
        self.setRange(minimum, max(self._max, minimum))

    def setMaximum(self, maximum) -> None:
        maximum = _to_int(maximum, "setMaximum")
        self.setRange(min(self._min, maximum), maximum)

    def setValue(self, value) -> None:
        value = max(self._min, min(self._max, _to_int(value, "setValue")))
        if value != self._value:
            self._value = value
            self._value_changed(value)

    def setSingleStep(self, step) -> None:
        self._step = abs(int(step))

    minimum = qproperty(lambda self: self._min, setMinimum)
    maximum = qproperty(lambda self: self._max, setMaximum)
    value = qproperty(lambda self: self._value, setValue)
    singleStep = qproperty(lambda self: self._step, setSingleStep)


class QSpinBox(_IntRange, QAbstractSpinBox):
    valueChanged = signal("int", "QString", adapt={"QString": lambda w, v: (w.text,)})
    textChanged = signal("QString")

    def __init__(self, parent=None, **properties):
        self._init_range(0, 99)
        super().__init__(parent, **properties)

    cleanText = qproperty(lambda self: str(self._value), None)

    def _value_changed(self, value) -> None:
        self.valueChanged.emit(value)
        self.textChanged.emit(self.text)

    displayIntegerBase = passive("displayIntegerBase", 10)
    stepType = passive("stepType")


def _round(value: float, decimals: int) -> float:
    """QDoubleSpinBoxPrivate::round: QString::number(value, 'f', decimals).toDouble()."""
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return value
    return float(f"{value:.{decimals}f}")


class _DoubleRange:
    """QDoubleSpinBox range rules: bounds and value rounded to ``decimals``; requested bounds remembered."""

    def _init_double(self, minimum=0.0, maximum=99.99, decimals=2):
        self.__dict__.update(_decimals=decimals, _actual_min=minimum, _actual_max=maximum,
                             _min=minimum, _max=maximum, _value=minimum, _step=1.0)

    def _set_range_internal(self, minimum, maximum) -> None:
        self._min, self._max = minimum, (maximum if maximum > minimum else minimum)
        self.setValue(self._value)

    def setRange(self, minimum, maximum) -> None:
        self._actual_min, self._actual_max = float(minimum), float(maximum)
        self._set_range_internal(_round(minimum, self._decimals), _round(maximum, self._decimals))

    def setMinimum(self, minimum) -> None:
        self._actual_min = float(minimum)
        m = _round(minimum, self._decimals)
        self._set_range_internal(m, self._max if self._max > m else m)

    def setMaximum(self, maximum) -> None:
        self._actual_max = float(maximum)
        m = _round(maximum, self._decimals)
        self._set_range_internal(self._min if self._min < m else m, m)

    def setDecimals(self, decimals) -> None:
        self._decimals = max(0, min(int(decimals), 323))
        self.setRange(self._actual_min, self._actual_max)
        self.setValue(self._value)

    def setValue(self, value) -> None:
        value = max(self._min, min(self._max, _round(value, self._decimals)))
        if value != self._value:
            self._value = value
            self._value_changed(value)

    def setSingleStep(self, step) -> None:
        self._step = abs(float(step))

    minimum = qproperty(lambda self: self._min, setMinimum)
    maximum = qproperty(lambda self: self._max, setMaximum)
    value = qproperty(lambda self: self._value, setValue)
    decimals = qproperty(lambda self: self._decimals, setDecimals)
    singleStep = qproperty(lambda self: self._step, setSingleStep)


class QDoubleSpinBox(_DoubleRange, QAbstractSpinBox):
    valueChanged = signal("double", "QString", adapt={"QString": lambda w, v: (w.text,)})
    textChanged = signal("QString")

    def __init__(self, parent=None, **properties):
        self._init_double(0.0, 99.99, 2)
        super().__init__(parent, **properties)

    cleanText = qproperty(lambda self: f"{self._value:.{self._decimals}f}", None)

    def _value_changed(self, value) -> None:
        self.valueChanged.emit(value)
        self.textChanged.emit(self.text)

    stepType = passive("stepType")


class QAbstractSlider(_IntRange, QWidget):
    valueChanged = signal("int")
    sliderMoved = signal("int")
    sliderPressed = signal("")
    sliderReleased = signal("")
    rangeChanged = signal("int,int")

    def __init__(self, parent=None, **properties):
        self._init_range(0, 99)
        self.__dict__["_page"] = 10
        super().__init__(parent, **properties)

    def _range_changed(self) -> None:
        self.rangeChanged.emit(self._min, self._max)

    def _value_changed(self, value) -> None:
        self.valueChanged.emit(value)

    pageStep = qproperty(lambda self: self._page, lambda self, v: self.__dict__.__setitem__("_page", int(v)))
    orientation = passive("orientation", Qt.Horizontal)
    tracking = passive("tracking", True)
    invertedAppearance = passive("invertedAppearance", False)
    invertedControls = passive("invertedControls", False)


class QSlider(QAbstractSlider):
    tickPosition = passive("tickPosition")
    tickInterval = passive("tickInterval", 0)


class QProgressBar(QWidget):
    valueChanged = signal("int")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_min=0, _max=100, _value=-1)
        super().__init__(parent, **properties)

    def setValue(self, value) -> None:
        value = _to_int(value, "setValue")
        if value == self._value or ((value > self._max or value < self._min) and (self._max != 0 or self._min != 0)):
            return
        self._value = value
        self.valueChanged.emit(value)

    def reset(self) -> None:
        self._value = self._min - 1 if self._min != INT_MIN else INT_MIN

    def setRange(self, minimum, maximum) -> None:
        self._min, self._max = int(minimum), max(int(minimum), int(maximum))
        if self._value < self._min - 1 or self._value > self._max:
            self.reset()

    value = qproperty(lambda self: self._value, setValue)
    minimum = qproperty(lambda self: self._min, lambda self, m: self.setRange(m, max(self._max, int(m))))
    maximum = qproperty(lambda self: self._max, lambda self, m: self.setRange(min(self._min, int(m)), m))
    format = passive("format", "%p%")
    textVisible = passive("textVisible", True)
    orientation = passive("orientation", Qt.Horizontal)
    invertedAppearance = passive("invertedAppearance", False)
    alignment = passive("alignment")


class QPlainTextEdit(QFrame):
    textChanged = signal("")

    def __init__(self, text="", parent=None, **properties):
        if isinstance(text, QWidget):
            text, parent = "", text
        self.__dict__.update(_blocks=[], _maxBlocks=0)
        super().__init__(parent, **properties)
        if text:
            self.setPlainText(text)

    def _limit(self) -> None:
        if self._maxBlocks > 0 and len(self._blocks) > self._maxBlocks:
            del self._blocks[: len(self._blocks) - self._maxBlocks]

    def toPlainText(self) -> str:
        return "\n".join(self._blocks)

    def setPlainText(self, text) -> None:
        self._blocks = str(text).split("\n") if text else []
        self._limit()
        self.textChanged.emit()

    def appendPlainText(self, text) -> None:
        self._blocks.extend(str(text).split("\n"))
        self._limit()
        self.textChanged.emit()

    def clear(self) -> None:
        self.setPlainText("")

    blockCount = qproperty(lambda self: max(1, len(self._blocks)), None)

    plainText = qproperty(toPlainText, setPlainText)
    maximumBlockCount = qproperty(lambda self: self._maxBlocks,
                                  lambda self, n: (self.__dict__.__setitem__("_maxBlocks", int(n)), self._limit()))
    readOnly = passive("readOnly", False)
    lineWrapMode = passive("lineWrapMode")
    placeholderText = passive("placeholderText", "")
    tabChangesFocus = passive("tabChangesFocus", False)
    undoRedoEnabled = passive("undoRedoEnabled", True)


class QTextEdit(QPlainTextEdit):
    def append(self, text) -> None:
        self.appendPlainText(text)

    html = passive("html", "")
    acceptRichText = passive("acceptRichText", True)


class QTableWidgetItem:
    """A cell's text (not a QObject in Qt either)."""

    def __init__(self, text=""):
        self._text = str(text)
        self._table = None

    def text(self) -> str:
        return self._text

    def setText(self, text) -> None:
        self._text = str(text)
        if self._table is not None:
            self._table.itemChanged.emit(self)

    def row(self) -> int:
        return self._table._row_of(self) if self._table is not None else -1


class QTableWidget(QFrame):
    """Added for the Follow-up panel's series table. Qt 5.15: ``setRowCount``/``setColumnCount`` drop the cells beyond
    the new size, ``setItem`` takes ownership (``itemChanged`` only for later edits), ``currentRow()`` is -1 until a
    cell is current and follows removed rows, ``clearContents`` keeps the size; ``rowCount`` and ``columnCount`` are
    Q_PROPERTYs, ``currentRow`` a method."""

    cellClicked = signal("int,int")
    cellChanged = signal("int,int")
    currentCellChanged = signal("int,int,int,int")
    itemChanged = signal("QTableWidgetItem*")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_rows=0, _columns=0, _cells={}, _headers=[], _current=(-1, -1))
        super().__init__(parent, **properties)

    def setRowCount(self, rows) -> None:
        self._rows = max(0, int(rows))
        self._cells = {(r, c): item for (r, c), item in self._cells.items() if r < self._rows}
        if self._current[0] >= self._rows:
            self.setCurrentCell(self._rows - 1 if self._rows else -1, self._current[1] if self._rows else -1)

    def setColumnCount(self, columns) -> None:
        self._columns = max(0, int(columns))
        self._cells = {(r, c): item for (r, c), item in self._cells.items() if c < self._columns}
        self._headers = self._headers[: self._columns]

    rowCount = qproperty(lambda self: self._rows, setRowCount)
    columnCount = qproperty(lambda self: self._columns, setColumnCount)

    def setHorizontalHeaderLabels(self, labels) -> None:
        labels = [str(label) for label in labels]
        if len(labels) > self._columns:
            self.setColumnCount(len(labels))
        self._headers = labels + self._headers[len(labels):]

    def horizontalHeaderItem(self, column):
        return QTableWidgetItem(self._headers[column]) if 0 <= column < len(self._headers) else None

    def setItem(self, row, column, item) -> None:
        if 0 <= row < self._rows and 0 <= column < self._columns:
            item._table = self
            self._cells[(int(row), int(column))] = item

    def item(self, row, column):
        return self._cells.get((row, column))

    def _row_of(self, item) -> int:
        return next((r for (r, _), cell in self._cells.items() if cell is item), -1)

    def clearContents(self) -> None:
        self._cells = {}

    def currentRow(self) -> int:
        return self._current[0]

    def currentColumn(self) -> int:
        return self._current[1]

    def setCurrentCell(self, row, column) -> None:
        old = self._current
        new = (int(row), int(column)) if 0 <= row < self._rows and 0 <= column < self._columns else (-1, -1)
        if new != old:
            self._current = new
            self.currentCellChanged.emit(new[0], new[1], old[0], old[1])

    def selectRow(self, row) -> None:
        self.setCurrentCell(row, 0)

    editTriggers = passive("editTriggers")
    selectionBehavior = passive("selectionBehavior")
    selectionMode = passive("selectionMode")
    alternatingRowColors = passive("alternatingRowColors", False)
    showGrid = passive("showGrid", True)
    sortingEnabled = passive("sortingEnabled", False)
    cornerButtonEnabled = passive("cornerButtonEnabled", True)
    horizontalScrollBarPolicy = passive("horizontalScrollBarPolicy")
    verticalScrollBarPolicy = passive("verticalScrollBarPolicy")
    sizeAdjustPolicy = passive("sizeAdjustPolicy")


# -------------------------------------------------------------------------------------------- layouts
class QLayoutItem:
    def __init__(self, widget=None, layout=None):
        self._widget, self._layout = widget, layout

    def widget(self):
        return self._widget

    def layout(self):
        return self._layout


class QLayout(QObject):
    def __init__(self, parent=None, **properties):
        self.__dict__["_items"] = []
        super().__init__(None, **properties)
        if isinstance(parent, QWidget):
            parent.setLayout(self)
        elif isinstance(parent, QLayout):
            parent.addLayout(self)

    def parentWidget(self):
        parent = self._parent
        while isinstance(parent, QLayout):
            parent = parent._parent
        return parent

    def _adopt_items(self) -> None:
        widget = self.parentWidget()
        if widget is None:
            return
        for item in self._items:
            if item.widget() is not None and item.widget().parent() is not widget:
                item.widget().setParent(widget)
            elif item.layout() is not None:
                item.layout()._adopt_items()

    def addWidget(self, widget, *args, **kwargs) -> None:
        self._items.append(QLayoutItem(widget=widget))
        if self.parentWidget() is not None and widget.parent() is not self.parentWidget():
            widget.setParent(self.parentWidget())

    def addLayout(self, layout, *args, **kwargs) -> None:
        layout.setParent(self)
        self._items.append(QLayoutItem(layout=layout))
        layout._adopt_items()

    def addItem(self, item) -> None:
        self._items.append(item if isinstance(item, QLayoutItem) else QLayoutItem())

    def addStretch(self, *args) -> None:
        self._items.append(QLayoutItem())

    def addSpacing(self, *args) -> None:
        self._items.append(QLayoutItem())

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index):
        return self._items[index] if 0 <= index < len(self._items) else None

    def setContentsMargins(self, *args) -> None:
        pass

    def setSpacing(self, spacing) -> None:
        pass

    spacing = passive("spacing", -1)
    margin = passive("margin")
    leftMargin = passive("leftMargin")
    topMargin = passive("topMargin")
    rightMargin = passive("rightMargin")
    bottomMargin = passive("bottomMargin")
    sizeConstraint = passive("sizeConstraint")


class QBoxLayout(QLayout):
    stretch = passive("stretch")


class QVBoxLayout(QBoxLayout):
    pass


class QHBoxLayout(QBoxLayout):
    pass


class QGridLayout(QLayout):
    horizontalSpacing = passive("horizontalSpacing", -1)
    verticalSpacing = passive("verticalSpacing", -1)
    rowStretch = passive("rowStretch")
    columnStretch = passive("columnStretch")


class QFormLayout(QLayout):
    fieldGrowthPolicy = passive("fieldGrowthPolicy")
    rowWrapPolicy = passive("rowWrapPolicy")
    labelAlignment = passive("labelAlignment")
    formAlignment = passive("formAlignment")
    horizontalSpacing = passive("horizontalSpacing", -1)
    verticalSpacing = passive("verticalSpacing", -1)

    def addRow(self, label, field=None) -> None:
        if field is None:
            (self.addLayout if isinstance(label, QLayout) else self.addWidget)(label)
            return
        self.addWidget(QLabel(label) if isinstance(label, str) else label)
        (self.addLayout if isinstance(field, QLayout) else self.addWidget)(field)


# ---------------------------------------------------------------------------------------- non-widgets
class QTimer(QObject):
    """A timer without an event loop: it fires from ``slicer.app.processEvents()`` once due."""

    timeout = signal("")
    _timers: "weakref.WeakSet[QTimer]" = weakref.WeakSet()

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_interval=0, _single=False, _active=False, _due=0.0, _firing=False)
        super().__init__(parent, **properties)
        QTimer._timers.add(self)

    def setInterval(self, msec) -> None:
        self._interval = max(0, int(msec))

    interval = qproperty(lambda self: self._interval, setInterval)

    def setSingleShot(self, single) -> None:
        self._single = bool(single)

    def isSingleShot(self) -> bool:
        return self._single

    def isActive(self) -> bool:
        return self._active

    active = qproperty(isActive, None)

    def start(self, msec=None) -> None:
        if msec is not None:
            self.setInterval(msec)
        self._active = True
        self._due = time.monotonic() + self._interval / 1000.0

    def stop(self) -> None:
        self._active = False

    @staticmethod
    def singleShot(msec, receiver, slot=None) -> None:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(getattr(receiver, slot.partition("(")[0]) if slot else receiver)
        QTimer._keep = getattr(QTimer, "_keep", set()) | {timer}
        timer.start(msec)

    def _fire_if_due(self, now: float) -> bool:
        if not self._active or self._firing or now < self._due:
            return False
        self._firing = True
        try:
            if self._single:
                self._active = False
                getattr(QTimer, "_keep", set()).discard(self)
            else:
                self._due = now + self._interval / 1000.0
            self.timeout.emit()
        finally:
            self._firing = False
        return True


def process_timers() -> int:
    """Fire the timers that are due (what an event-loop pass does); returns how many fired."""
    now = time.monotonic()
    return sum(timer._fire_if_due(now) for timer in list(QTimer._timers))


class QFile(QObject):
    ReadOnly, WriteOnly, ReadWrite, Text = 1, 2, 3, 16

    def __init__(self, path="", parent=None):
        super().__init__(parent)
        self._path, self._open = str(path), False

    def fileName(self) -> str:
        return self._path

    def exists(self) -> bool:
        return os.path.isfile(self._path)

    def open(self, mode) -> bool:
        self._open = self.exists() and os.access(self._path, os.R_OK)
        return self._open

    def isOpen(self) -> bool:
        return self._open

    def close(self) -> None:
        self._open = False

    def readAll(self) -> bytes:
        with open(self._path, "rb") as f:
            return f.read()


class QSettings(QObject):
    """In-memory settings shared by every instance (nothing is written to disk)."""

    _store: dict = {}

    def __init__(self, *args):
        super().__init__(None)
        self._group = ""

    def _key(self, key) -> str:
        return f"{self._group}/{key}" if self._group else str(key)

    def value(self, key, default=None):
        return QSettings._store.get(self._key(key), default)

    def setValue(self, key, value) -> None:
        QSettings._store[self._key(key)] = value

    def contains(self, key) -> bool:
        return self._key(key) in QSettings._store

    def remove(self, key) -> None:
        QSettings._store.pop(self._key(key), None)

    def allKeys(self):
        return list(QSettings._store)

    def beginGroup(self, group) -> None:
        self._group = self._key(group)

    def endGroup(self) -> None:
        self._group = self._group.rpartition("/")[0]

    def sync(self) -> None:
        pass


class QMessageBox(QWidget):
    """Only the enums: in the stand-in ``slicer.app.testingEnabled()`` is True, so Slicer's dialogs never open."""

    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4
    Ok, Save, SaveAll, Open, Yes, YesToAll, No, NoToAll = 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x20000
    Abort, Retry, Ignore, Close, Cancel, Discard, Help, Apply, Reset, RestoreDefaults = (
        0x40000, 0x80000, 0x100000, 0x200000, 0x400000, 0x800000, 0x1000000, 0x2000000, 0x4000000, 0x8000000)

    def __init__(self, *args, **kwargs):
        raise RuntimeError("the Slicer stand-in has no dialogs (a module must not open one while testing)")


class QIcon:
    def __init__(self, path=""):
        self.path = str(path)

    def isNull(self) -> bool:
        return not self.path


class QColor:
    """Enough of QColor for parameterNodeWrapper's QColorSerializer (``name(QColor.HexArgb)``)."""

    HexRgb, HexArgb = 0, 1

    def __init__(self, *args):
        self._rgba = (0, 0, 0, 255)
        self._valid = bool(args)
        if len(args) == 1 and isinstance(args[0], QColor):
            self._rgba, self._valid = args[0]._rgba, args[0]._valid
        elif len(args) == 1 and isinstance(args[0], str):
            text = args[0].lstrip("#")
            if len(text) == 6:
                self._rgba = (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16), 255)
            elif len(text) == 8:
                self._rgba = (int(text[2:4], 16), int(text[4:6], 16), int(text[6:8], 16), int(text[0:2], 16))
            else:
                self._valid = False
        elif len(args) in (3, 4):
            self._rgba = tuple(int(v) for v in args) + ((255,) if len(args) == 3 else ())

    def isValid(self) -> bool:
        return self._valid

    def name(self, fmt=0) -> str:
        r, g, b, a = self._rgba
        return f"#{a:02x}{r:02x}{g:02x}{b:02x}" if fmt == QColor.HexArgb else f"#{r:02x}{g:02x}{b:02x}"

    def red(self):
        return self._rgba[0]

    def green(self):
        return self._rgba[1]

    def blue(self):
        return self._rgba[2]

    def alpha(self):
        return self._rgba[3]

    def __eq__(self, other):
        return isinstance(other, QColor) and (self._rgba, self._valid) == (other._rgba, other._valid)

    __hash__ = None


from .uiloader import QUiLoader  # noqa: E402  (needs the classes above)
