"""Stand-in for the ``ctk`` module (CTK widgets as PythonQt wraps them; not Slicer source).

Only the classes Slicer's parameterNodeWrapper names (guiConnectors.py, guiCreation.py),
ScriptedLoadableModule.py and common .ui files use, with the properties and signals those read.
The base classes follow CTK: ctkCheckBox, ctkComboBox, ctkCollapsibleButton, ctkColorPickerButton and
ctkCheckablePushButton are Qt buttons/combo boxes; ctkDoubleSpinBox, ctkSliderWidget, ctkRangeWidget,
ctkPathLineEdit and ctkDirectoryButton are plain QWidgets (so ``type(widget)`` checks behave as in Slicer).
"""

from __future__ import annotations

from . import qt
from ._qobject import passive, qproperty, signal
from .qt import QAbstractButton, QCheckBox, QComboBox, QGroupBox, QPushButton, QWidget, _DoubleRange, _round
from .uiloader import MetaEnum, stored_enum


class ctkCollapsibleButton(QAbstractButton):
    """Expanded when checked; ``collapsed`` is ``not checked`` (ctkCollapsibleButton::setCollapsed)."""

    contentsCollapsed = signal("bool")
    _default_checkable = True

    def __init__(self, text="", parent=None, **properties):
        super().__init__(text, parent)
        self._checked = True
        for name, value in properties.items():
            setattr(self, name, value)

    def _check_state_set(self) -> None:
        self.contentsCollapsed.emit(not self._checked)

    def setCollapsed(self, collapsed: bool) -> None:
        if self._checkable:
            self.setChecked(not collapsed)
        else:
            self._checked = not collapsed

    collapsed = qproperty(lambda self: not self._checked, setCollapsed)
    collapsedHeight = passive("collapsedHeight", 14)
    contentsFrameShape = passive("contentsFrameShape")
    contentsFrameShadow = passive("contentsFrameShadow")
    contentsLineWidth = passive("contentsLineWidth")
    buttonTextAlignment = passive("buttonTextAlignment")
    indicatorAlignment = passive("indicatorAlignment")
    exclusiveMouseOver = passive("exclusiveMouseOver", False)


class ctkCollapsibleGroupBox(QGroupBox):
    def setCollapsed(self, collapsed) -> None:
        self._checkable = True
        self.setChecked(not collapsed)

    collapsed = qproperty(lambda self: not self._checked, setCollapsed)


class ctkCheckBox(QCheckBox):
    indicatorIcon = passive("indicatorIcon")
    indicatorIconSize = passive("indicatorIconSize")


class ctkPushButton(QPushButton):
    buttonTextAlignment = passive("buttonTextAlignment")
    iconAlignment = passive("iconAlignment")


class ctkCheckablePushButton(ctkPushButton):
    checkBoxToggled = signal("bool")
    checkStateChanged = signal("Qt::CheckState")
    checkBoxControlsButtonToggleState = passive("checkBoxControlsButtonToggleState", False)
    checkBoxControlsButton = passive("checkBoxControlsButton", True)
    checkState = passive("checkState", qt.Qt.Unchecked)
    indicatorAlignment = passive("indicatorAlignment")


class ctkComboBox(QComboBox):
    defaultText = passive("defaultText", "")
    defaultIcon = passive("defaultIcon")
    forceDefault = passive("forceDefault", False)
    elideMode = passive("elideMode")
    scrollWheelEffect = passive("scrollWheelEffect")


class ctkColorPickerButton(QPushButton):
    colorChanged = signal("QColor")

    def __init__(self, *args, **properties):
        self.__dict__["_color"] = qt.QColor(0, 0, 0)
        super().__init__(*args, **properties)

    def setColor(self, color) -> None:
        color = qt.QColor(color)
        if color != self._color:
            self._color = color
            self.colorChanged.emit(color)

    color = qproperty(lambda self: self._color, setColor)
    displayColorName = passive("displayColorName", True)
    dialogOptions = passive("dialogOptions")
    colorName = passive("colorName")


#: ctkPathLineEdit::Filter (ctkPathLineEdit.h; Q_FLAGS(Filters)): QDir::Filter's values.
PATH_LINE_EDIT_FILTERS = dict(
    Dirs=0x001, Files=0x002, Drives=0x004, NoSymLinks=0x008, AllEntries=0x001 | 0x002 | 0x004, TypeMask=0x00F,
    Readable=0x010, Writable=0x020, Executable=0x040, PermissionMask=0x070, Modified=0x080, Hidden=0x100,
    System=0x200, AccessMask=0x3F0, AllDirs=0x400, CaseSensitive=0x800, NoDotAndDotDot=0x1000, NoDot=0x2000,
    NoDotDot=0x4000, NoFilter=-1)
#: ctkPathLineEditPrivate's constructor: QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Readable | QDir::Executable.
PATH_LINE_EDIT_DEFAULT_FILTERS = 0x007 | 0x1000 | 0x010 | 0x040


class ctkPathLineEdit(QWidget):
    """``filters`` is the Filters flags property (an int, as PythonQt shows it; ``ctkPathLineEdit.Files`` etc.
    are the Filter values); its default is the one ctkPathLineEditPrivate's constructor sets:
    AllEntries|NoDotAndDotDot|Readable|Executable."""

    currentPathChanged = signal("QString")
    validInputChanged = signal("bool")

    def __init__(self, parent=None, **properties):
        self.__dict__["_path"] = ""
        super().__init__(parent, **properties)

    def setCurrentPath(self, path) -> None:
        path = "" if path is None else str(path)
        if path != self._path:
            self._path = path
            self.currentPathChanged.emit(path)

    currentPath = qproperty(lambda self: self._path, setCurrentPath)

    def addCurrentPathToHistory(self) -> None:
        pass

    filters = stored_enum("filters", MetaEnum("ctkPathLineEdit", PATH_LINE_EDIT_FILTERS, is_flag=True),
                          PATH_LINE_EDIT_DEFAULT_FILTERS)
    nameFilters = passive("nameFilters")
    label = passive("label", "")
    settingKey = passive("settingKey", "")
    showBrowseButton = passive("showBrowseButton", True)
    showHistoryButton = passive("showHistoryButton", True)
    sizeAdjustPolicy = passive("sizeAdjustPolicy")
    minimumContentsLength = passive("minimumContentsLength", 0)
    options = passive("options")


for _key, _filter in PATH_LINE_EDIT_FILTERS.items():  # ctkPathLineEdit.Files, ... (PythonQt: the enum's values)
    setattr(ctkPathLineEdit, _key, _filter)
del _key, _filter


class ctkDirectoryButton(QWidget):
    directoryChanged = signal("QString")
    directorySelected = signal("QString")

    def __init__(self, parent=None, **properties):
        self.__dict__["_directory"] = ""
        super().__init__(parent, **properties)

    def setDirectory(self, directory) -> None:
        directory = "" if directory is None else str(directory)
        if directory != self._directory:
            self._directory = directory
            self.directoryChanged.emit(directory)

    directory = qproperty(lambda self: self._directory, setDirectory)
    caption = passive("caption", "")
    text = passive("text", "")
    options = passive("options")
    acceptMode = passive("acceptMode")
    elideMode = passive("elideMode")


class ctkDoubleSpinBox(_DoubleRange, QWidget):
    """A QWidget wrapping a QDoubleSpinBox: same range, rounding and default (0..99.99, 2 decimals)."""

    valueChanged = signal("double")
    valueIsChanging = signal("double")
    editingFinished = signal("")
    decimalsChanged = signal("int")

    def __init__(self, parent=None, **properties):
        self._init_double(0.0, 99.99, 2)
        super().__init__(parent, **properties)

    def _value_changed(self, value) -> None:
        self.valueIsChanging.emit(value)
        self.valueChanged.emit(value)

    def stepBy(self, steps) -> None:
        self.setValue(self.value + steps * self.singleStep)

    decimalsOption = passive("decimalsOption")
    prefix = passive("prefix", "")
    suffix = passive("suffix", "")
    readOnly = passive("readOnly", False)
    frame = passive("frame", True)
    alignment = passive("alignment")
    setMode = passive("setMode")
    sizeHintPolicy = passive("sizeHintPolicy")
    invertedControls = passive("invertedControls", False)
    specialValueText = passive("specialValueText", "")


class ctkSliderWidget(_DoubleRange, QWidget):
    """A slider and a ctkDoubleSpinBox sharing one range; the range comes from the spin box (0..99.99)."""

    valueChanged = signal("double")
    valueIsChanging = signal("double")
    decimalsChanged = signal("int")

    def __init__(self, parent=None, **properties):
        self._init_double(0.0, 99.99, 2)
        self.__dict__["_page"] = 10.0
        super().__init__(parent, **properties)

    def _value_changed(self, value) -> None:
        self.valueIsChanging.emit(value)
        self.valueChanged.emit(value)

    pageStep = qproperty(lambda self: self._page, lambda self, v: self.__dict__.__setitem__("_page", float(v)))
    tracking = passive("tracking", True)
    prefix = passive("prefix", "")
    suffix = passive("suffix", "")
    spinBoxVisible = passive("spinBoxVisible", True)
    popupSlider = passive("popupSlider", False)
    tickInterval = passive("tickInterval", 0.0)
    tickPosition = passive("tickPosition")
    synchronizeSiblings = passive("synchronizeSiblings")
    invertedAppearance = passive("invertedAppearance", False)
    invertedControls = passive("invertedControls", False)


class ctkDoubleSlider(QWidget):
    """A QSlider on doubles: no decimals, default range 0..100, value bounded to the range."""

    valueChanged = signal("double")
    sliderMoved = signal("double")
    rangeChanged = signal("double,double")

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_min=0.0, _max=100.0, _value=0.0, _step=1.0)
        super().__init__(parent, **properties)

    def setRange(self, minimum, maximum) -> None:
        self._min, self._max = float(minimum), max(float(minimum), float(maximum))
        self.rangeChanged.emit(self._min, self._max)
        self.setValue(self._value)

    def setValue(self, value) -> None:
        value = max(self._min, min(self._max, float(value)))
        if value != self._value:
            self._value = value
            self.valueChanged.emit(value)

    minimum = qproperty(lambda self: self._min, lambda self, m: self.setRange(m, max(self._max, float(m))))
    maximum = qproperty(lambda self: self._max, lambda self, m: self.setRange(min(self._min, float(m)), m))
    value = qproperty(lambda self: self._value, setValue)
    singleStep = qproperty(lambda self: self._step, lambda self, s: self.__dict__.__setitem__("_step", float(s)))
    pageStep = passive("pageStep", 10.0)
    orientation = passive("orientation", qt.Qt.Horizontal)
    tracking = passive("tracking", True)


class ctkDoubleRangeSlider(QWidget):
    """Two handles on one double range (default 0..99), values kept inside it and ordered."""

    valuesChanged = signal("double,double")
    minimumValueChanged = signal("double")
    maximumValueChanged = signal("double")
    rangeChanged = signal("double,double")
    _decimals = None

    def __init__(self, parent=None, **properties):
        self.__dict__.update(_min=0.0, _max=99.0, _lo=0.0, _hi=99.0, _step=1.0)
        super().__init__(parent, **properties)

    def _r(self, value) -> float:
        return float(value) if self._decimals is None else _round(value, self._decimals)

    def setRange(self, minimum, maximum) -> None:
        self._min, self._max = self._r(minimum), max(self._r(minimum), self._r(maximum))
        self.rangeChanged.emit(self._min, self._max)
        self.setValues(self._lo, self._hi)

    def setValues(self, low, high) -> None:
        low, high = sorted((self._r(low), self._r(high)))
        low, high = max(self._min, min(self._max, low)), max(self._min, min(self._max, high))
        if (low, high) != (self._lo, self._hi):
            changed_low, changed_high = low != self._lo, high != self._hi
            self._lo, self._hi = low, high
            if changed_low:
                self.minimumValueChanged.emit(low)
            if changed_high:
                self.maximumValueChanged.emit(high)
            self.valuesChanged.emit(low, high)

    minimum = qproperty(lambda self: self._min, lambda self, m: self.setRange(m, max(self._max, self._r(m))))
    maximum = qproperty(lambda self: self._max, lambda self, m: self.setRange(min(self._min, self._r(m)), m))
    minimumValue = qproperty(lambda self: self._lo, lambda self, v: self.setValues(v, max(self._hi, self._r(v))))
    maximumValue = qproperty(lambda self: self._hi, lambda self, v: self.setValues(min(self._lo, self._r(v)), v))
    singleStep = qproperty(lambda self: self._step, lambda self, s: self.__dict__.__setitem__("_step", float(s)))
    orientation = passive("orientation", qt.Qt.Horizontal)
    tracking = passive("tracking", True)
    symmetricMoves = passive("symmetricMoves", False)


class ctkRangeWidget(ctkDoubleRangeSlider):
    """A ctkDoubleRangeSlider with two spin boxes: values rounded to ``decimals`` (default 2)."""

    def __init__(self, parent=None, **properties):
        self.__dict__["_decimals"] = 2
        super().__init__(parent, **properties)

    def setDecimals(self, decimals) -> None:
        self._decimals = max(0, min(int(decimals), 323))
        self.setRange(self._min, self._max)

    decimals = qproperty(lambda self: self._decimals, setDecimals)
    prefix = passive("prefix", "")
    suffix = passive("suffix", "")
    spinBoxAlignment = passive("spinBoxAlignment")
    spinBoxTextAlignment = passive("spinBoxTextAlignment")
    autoSpinBoxWidth = passive("autoSpinBoxWidth", True)
