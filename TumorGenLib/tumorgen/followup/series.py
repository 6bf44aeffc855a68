"""A tumor-size series: the measurements a follow-up is forecast from.

A series is a CSV file with a header naming ``day`` and either ``size`` (the
whole-tumor volume in cm³) or ``seg`` (a BraTS label map per time point, its
path relative to the CSV file; the size is the volume of its labels 1-3),
optionally ``rt_start`` (the radiotherapy start day, the same on every row).
Other columns are ignored. Each problem gets one line naming the file and the
row: fewer than two time points, days out of order or repeated, a negative or
zero volume, a missing scan, and scans of a geometry other than the latest
scan's.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tumorgen.errors import InputError
from tumorgen.volume import Volume


@dataclass(frozen=True)
class Series:
    """Days (increasing), whole-tumor volumes in cm³, the radiotherapy start (or None), and the scans when given."""

    days: np.ndarray
    sizes_cm3: np.ndarray
    rt_start: float | None = None
    scans: tuple[Path, ...] = field(default=())
    source: str = ""

    @property
    def last_day(self) -> float:
        return float(self.days[-1])

    def as_dict(self) -> dict:
        return {"days": [float(d) for d in self.days], "sizes_cm3": [round(float(s), 4) for s in self.sizes_cm3],
                "rt_start": self.rt_start, "source": self.source}


def check_series(days, sizes, rt_start: float | None = None, where: str = "series") -> Series:
    """A :class:`Series` from numbers, or a one-line :class:`InputError` naming the problem."""
    days = [float(d) for d in days]
    sizes = [float(s) for s in sizes]
    if len(days) < 2:
        raise InputError(f"{where}: a follow-up needs at least two time points, got {len(days)}")
    for n, (d, s) in enumerate(zip(days, sizes)):
        if not (math.isfinite(d) and math.isfinite(s)):
            raise InputError(f"{where}: time point {n + 1} (day {d:g}, size {s:g}) is not a finite number")
        if s < 0:
            raise InputError(f"{where}: the volume at day {d:g} is negative ({s:g} cm³)")
        if s == 0:
            raise InputError(f"{where}: the volume at day {d:g} is zero; a growth curve needs a tumor at every time point")
    for a, b in zip(days, days[1:]):
        if b == a:
            raise InputError(f"{where}: day {a:g} appears twice; each time point needs its own day")
        if b < a:
            raise InputError(f"{where}: dates out of order: day {b:g} comes after day {a:g}")
    if rt_start is not None:
        if not math.isfinite(rt_start):
            raise InputError(f"{where}: the radiotherapy start must be a finite day, got {rt_start}")
        if rt_start < days[0]:
            raise InputError(f"{where}: radiotherapy starts on day {rt_start:g}, before the first time point (day {days[0]:g})")
    return Series(np.asarray(days), np.asarray(sizes), None if rt_start is None else float(rt_start), source=where)


def read_series(path: str | os.PathLike, *, reference: Volume | None = None, rt_start: float | None = None) -> Series:
    """Read a series CSV (see the module docstring). ``reference``: the latest scan, whose geometry every listed scan must have.

    ``rt_start`` (e.g. from the command line) overrides a missing column; a disagreement with the column is an error.
    """
    from tumorgen.volume_io import read_volume

    path = Path(path)
    if not path.is_file():
        raise InputError(f"series file not found: {path}" if not path.exists() else f"series file {path} is not a file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [(n, row) for n, row in enumerate(csv.reader(handle), start=1) if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc.__class__.__name__})") from None
    if not rows:
        raise InputError(f"{path} is empty; expected a header 'day,size' (or 'day,seg') and one row per time point")
    names = [cell.strip().lower() for cell in rows[0][1]]
    if "day" not in names or not ({"size", "seg"} & set(names)):
        raise InputError(f"{path}: the header (line {rows[0][0]}) must name the columns day and size (cm³) or seg (a label map per row)")
    col = {name: names.index(name) for name in ("day", "size", "seg", "rt_start") if name in names}
    days, sizes, scans, rts = [], [], [], set()
    for line, row in rows[1:]:
        def cell(name):
            return row[col[name]].strip() if name in col and col[name] < len(row) else ""

        def number(name):
            text = cell(name)
            if not text:
                raise InputError(f"{path} line {line}: the {name} cell is empty")
            try:
                return float(text)
            except ValueError:
                raise InputError(f"{path} line {line}: {name} {text!r} is not a number") from None

        days.append(number("day"))
        if cell("rt_start"):
            rts.add(number("rt_start"))
        if "seg" in col and cell("seg"):
            scan = (path.parent / cell("seg")).resolve()
            if not scan.is_file():
                raise InputError(f"{path} line {line}: scan not found: {scan}")
            labels = read_volume(scan, role=f"seg of line {line}")
            if reference is not None and not labels.grid.matches(reference.grid):
                raise InputError(f"{path} line {line}: {scan.name} has a different geometry from the latest scan: "
                                 f"{'; '.join(reference.grid.differences(labels.grid))}")
            if scans and not labels.grid.matches(scans[-1][1].grid):
                raise InputError(f"{path} line {line}: {scan.name} has a different geometry from the scan before it: "
                                 f"{'; '.join(scans[-1][1].grid.differences(labels.grid))}")
            scans.append((scan, labels))
            tumor = np.isin(np.rint(np.asarray(labels.array)), (1, 2, 3))  # a resection cavity (4) is not tumor
            sizes.append(number("size") if cell("size") else float(tumor.sum()) * labels.grid.voxel_volume_mm3 / 1000.0)
        else:
            if "seg" in col and "size" not in col:
                raise InputError(f"{path} line {line}: the seg cell is empty")
            sizes.append(number("size"))
    if len(rts) > 1:
        raise InputError(f"{path}: the rt_start column must hold one day, found {', '.join(f'{v:g}' for v in sorted(rts))}")
    column_rt = rts.pop() if rts else None
    if rt_start is not None and column_rt is not None and not math.isclose(rt_start, column_rt):
        raise InputError(f"the radiotherapy start {rt_start:g} disagrees with the series' rt_start column ({column_rt:g})")
    series = check_series(days, sizes, rt_start if rt_start is not None else column_rt, where=str(path))
    return Series(series.days, series.sizes_cm3, series.rt_start, tuple(s for s, _ in scans), str(path))


def write_series(series: Series, path: str | os.PathLike) -> Path:
    """The series as ``day,size[,rt_start]`` CSV (what :func:`read_series` reads)."""
    path = Path(path)
    lines = ["day,size" + (",rt_start" if series.rt_start is not None else "")]
    for d, s in zip(series.days, series.sizes_cm3):
        lines.append(f"{d:g},{s:.4f}" + (f",{series.rt_start:g}" if series.rt_start is not None else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


__all__ = ["Series", "check_series", "read_series", "write_series"]
