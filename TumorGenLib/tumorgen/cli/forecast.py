"""``tumorgen forecast``: fit the radiotherapy growth ODE to a tumor-size series and forecast it.

The series is a CSV file with a header naming the columns ``day`` and ``size``
(any order, case-insensitive; other columns are ignored) and optionally
``rt_start``, the radiotherapy start day, the same on every row (blank cells
allowed). ``--rt-start`` may be given instead of the column; when both are
given they must agree (a disagreement is an error, not a silent override).

The forecast is the residual bootstrap of
:func:`tumorgen.biophysics.growth_ode.bootstrap_forecast`: per forecast day the
median of the refits and the ``--interval`` percentile band (``low``, ``high``).
It goes to stdout, or, with ``--out``, atomically to a file (then a JSON summary
goes to stdout). The progress bar and the one-line fit summary go to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import textwrap
from pathlib import Path

from tqdm import tqdm

from tumorgen.errors import InputError

#: Default forecast when neither --days nor --horizon is given: 180 days past the last measurement ...
DEFAULT_HORIZON = 180.0
#: ... in 30-day steps.
DEFAULT_STEP = 30.0
#: More forecast days than this is a typo (e.g. --step 0.001), not a forecast.
MAX_FORECAST_DAYS = 10_000


_DESCRIPTION = "\n\n".join(
    textwrap.fill(paragraph, width=78)
    for paragraph in (
        "Fit the tumor growth ODE with radiotherapy (exponential growth at rate lambda; at the RT start a "
        "fraction alpha of the tumor is lethally damaged and clears at rate k after a delay tau, the rest keeps "
        "growing) to a measured size series by least squares on log sizes, and forecast the size with a "
        "residual bootstrap: per forecast day the median of the refits and a percentile interval (low, high).",
        "SERIES.csv has a header line naming the columns day and size (any order; sizes in any positive unit; "
        "other columns are ignored) and one row per measurement, days strictly increasing. An optional "
        "rt_start column gives the radiotherapy start day, the same on every row. --rt-start gives it on the "
        "command line instead; when both are given they must agree. Without either, the model is a plain "
        "exponential.",
        "Output: the columns day, median, low, high as CSV, or as JSON together with the fitted parameters and "
        "R2 (on log sizes). It goes to stdout, or with --out to a file written atomically (then a JSON summary "
        "goes to stdout). Errors in the input print one line and exit with status 2.",
    )
)

_EXAMPLE = """\
example:
  $ cat series.csv
  day,size
  0,12.1
  28,16.0
  56,21.3
  70,17.2
  98,11.9
  126,10.4
  $ tumorgen forecast series.csv --rt-start 60 --horizon 180 --step 30 --out forecast.csv

  writes forecast.csv with the columns day,median,low,high for days 156, 186, ..., 306.
  --format json adds the fitted parameters (s0, lambda, alpha, tau, k) and R2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "forecast",
        help="forecast tumor size from a measured series (growth ODE with radiotherapy, bootstrap interval)",
        description=_DESCRIPTION,
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("series", metavar="SERIES.csv", help="measured series: CSV with columns day,size[,rt_start]")
    p.add_argument("--rt-start", type=float, metavar="DAY",
                   help="radiotherapy start day, within [first day, last day); default: the rt_start column, else no RT")
    when = p.add_argument_group("forecast days (default: every 30 days up to 180 days past the last measurement)")
    when.add_argument("--days", metavar="D1,D2,...", help="comma-separated forecast days (not before the first measurement)")
    when.add_argument("--horizon", type=float, metavar="H", help=f"forecast up to H days past the last measurement (default {DEFAULT_HORIZON:g})")
    when.add_argument("--step", type=float, metavar="S", help=f"with --horizon: days between forecast days (default {DEFAULT_STEP:g})")
    p.add_argument("--law", choices=("exponential", "radial"), default="exponential",
                   help="untreated growth: exponential (papers 001/002; default) or radial (the radius grows linearly, "
                        "S ∝ (1 + λt)³, as a Fisher–Kolmogorov front does; lambda is then the radial speed over the first radius)")
    boot = p.add_argument_group("bootstrap")
    boot.add_argument("--n-boot", type=int, default=200, metavar="N", help="bootstrap refits, at least 10 (default 200)")
    boot.add_argument("--interval", type=float, default=0.9, metavar="FRACTION", help="coverage of the low-high interval, in (0, 1) (default 0.9)")
    boot.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same forecast (default 0)")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=("csv", "json"), default="csv", help="csv: the table; json: the table, the fit and R2 (default csv)")
    out.add_argument("--out", metavar="FILE", help="write here (atomically) instead of to stdout; a JSON summary goes to stdout")
    out.add_argument("--quiet", action="store_true", help="no progress bar and no fit summary on stderr")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- input


def read_series(path: str | os.PathLike) -> tuple[list[float], list[float], float | None]:
    """Read ``day,size[,rt_start]`` from a CSV file; returns days, sizes and the RT start (or None).

    Raises InputError (one line naming the file and, for a bad cell, its line).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"series file not found: {path}")
    if path.is_dir():
        raise InputError(f"series file {path} is a folder, not a CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file (cannot decode it as UTF-8)") from None
    except OSError as exc:
        raise InputError(f"series file {path} cannot be read: {exc.strerror}") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV file: {exc}") from None
    numbered = [(line, row) for line, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not numbered:
        raise InputError(f"{path} is empty; expected a header line 'day,size' and one row per measurement")
    header_line, header = numbered[0]
    names = [cell.strip().lower() for cell in header]
    missing = [name for name in ("day", "size") if name not in names]
    if missing:
        found = ", ".join(repr(cell.strip()) for cell in header)
        raise InputError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {' and '.join(missing)} "
                         f"in the header (line {header_line}: {found}); expected a header like 'day,size'")
    for name in ("day", "size", "rt_start"):
        if names.count(name) > 1:
            raise InputError(f"{path}: column {name} appears more than once in the header")
    col = {name: names.index(name) for name in ("day", "size", "rt_start") if name in names}

    days: list[float] = []
    sizes: list[float] = []
    rt_values: set[float] = set()
    for line, row in numbered[1:]:
        def cell(name: str, required: bool = True) -> float | None:
            text = row[col[name]].strip() if col[name] < len(row) else ""
            if not text:
                if required:
                    raise InputError(f"{path} line {line}: the {name} cell is empty")
                return None
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"{path} line {line}: {name} {text!r} is not a number") from None
            if not math.isfinite(value):
                raise InputError(f"{path} line {line}: {name} {text!r} is not a finite number")
            return value

        days.append(cell("day"))
        sizes.append(cell("size"))
        if "rt_start" in col:
            rt = cell("rt_start", required=False)
            if rt is not None:
                rt_values.add(rt)
    if not days:
        raise InputError(f"{path} has a header but no measurements; need at least 2 rows of day,size")
    if len(rt_values) > 1:
        raise InputError(f"{path}: the rt_start column must hold one day, found {', '.join(f'{v:g}' for v in sorted(rt_values))}")
    return days, sizes, (rt_values.pop() if rt_values else None)


def forecast_days(last_day: float, days: str | None, horizon: float | None, step: float | None) -> list[float]:
    """The forecast days from ``--days`` or ``--horizon``/``--step`` (see ``--help``)."""
    if days is not None:
        if horizon is not None or step is not None:
            raise InputError("give either --days or --horizon/--step, not both")
        parts = [part.strip() for part in days.split(",")]
        if not any(parts):
            raise InputError("--days is empty; give comma-separated days, e.g. --days 150,200,250")
        values = []
        for part in parts:
            try:
                value = float(part)
            except ValueError:
                raise InputError(f"--days: {part!r} is not a number (expected comma-separated days, e.g. 150,200,250)") from None
            if not math.isfinite(value):
                raise InputError(f"--days: {part!r} is not a finite day")
            values.append(value)
        if len(values) > MAX_FORECAST_DAYS:
            raise InputError(f"--days gives {len(values)} days; at most {MAX_FORECAST_DAYS}")
        return values
    horizon = DEFAULT_HORIZON if horizon is None else horizon
    step = DEFAULT_STEP if step is None else step
    if not (math.isfinite(horizon) and horizon > 0):
        raise InputError(f"--horizon must be a positive number of days, got {horizon:g}")
    if not (math.isfinite(step) and step > 0):
        raise InputError(f"--step must be a positive number of days, got {step:g}")
    count = int(math.floor(horizon / step + 1e-9))
    if count > MAX_FORECAST_DAYS:
        raise InputError(f"--horizon {horizon:g} with --step {step:g} gives {count} forecast days; at most {MAX_FORECAST_DAYS}")
    offsets = [step * i for i in range(1, count + 1)]
    if not offsets or not math.isclose(offsets[-1], horizon, rel_tol=1e-9, abs_tol=1e-9):
        offsets.append(horizon)  # the horizon itself is always forecast
    return [last_day + offset for offset in offsets]


# ----------------------------------------------------------------------------- output


def _finite_or_none(value):
    """JSON has no NaN or Infinity: write them as null (R2 is NaN for a flat series, a doubling time inf for lambda = 0)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def _table(forecast) -> list[dict[str, float]]:
    return [{"day": row["day"], "median": row["median"], "low": row["lower"], "high": row["upper"]} for row in forecast.rows()]


def render(forecast, fmt: str, series: Path) -> str:
    """The forecast as CSV (``day,median,low,high``) or as a JSON document with the fit."""
    if fmt == "csv":
        lines = ["day,median,low,high"]
        lines += [",".join(f"{row[key]:.10g}" for key in ("day", "median", "low", "high")) for row in _table(forecast)]
        return "\n".join(lines) + "\n"
    document = {
        "series": str(series),
        "interval": forecast.interval,
        "n_boot": forecast.n_boot,
        "seed": forecast.seed,
        "noise_model": forecast.noise_model,
        "fit": forecast.fit.to_dict(),
        "forecast": _table(forecast),
    }
    return json.dumps(_finite_or_none(document), indent=2) + "\n"


def write_atomically(text: str, path: Path) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place.

    Missing folders are created, like the volume writers do, and removed again if the write fails.
    """
    from tumorgen.atomic import staged_into, write_text

    if path.is_dir():
        raise InputError(f"--out {path} is a folder; give a file name")
    with staged_into(path.parent) as staging:
        write_text(staging / path.name, text)
    return path


# ----------------------------------------------------------------------------- command


def run(args: argparse.Namespace) -> int:
    from tumorgen.biophysics.growth_ode import bootstrap_forecast, check_series

    series = Path(args.series)
    if args.n_boot < 10:
        raise InputError(f"--n-boot must be at least 10, got {args.n_boot}")
    if not 0.0 < args.interval < 1.0:
        raise InputError(f"--interval must be between 0 and 1 (e.g. 0.9 for 90 %), got {args.interval:g}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    if args.rt_start is not None and not math.isfinite(args.rt_start):
        raise InputError(f"--rt-start must be a finite day, got {args.rt_start:g}")
    out = Path(args.out) if args.out else None
    if out is not None:  # fail before the work, not after it
        from tumorgen.atomic import check_output_folder

        if out.is_dir():
            raise InputError(f"--out {out} is a folder; give a file name")
        if out.resolve() == series.resolve():
            raise InputError(f"--out {out} is the series file itself; choose another name")
        check_output_folder(out.parent)

    days, sizes, rt_column = read_series(series)
    rt_start = rt_column
    if args.rt_start is not None:
        if rt_column is not None and not math.isclose(args.rt_start, rt_column, rel_tol=0.0, abs_tol=1e-9):
            raise InputError(f"--rt-start {args.rt_start:g} disagrees with the rt_start column of {series} ({rt_column:g})")
        rt_start = args.rt_start
    try:
        days, sizes, rt_start = check_series(days, sizes, rt_start)
    except InputError as exc:
        raise InputError(f"{series}: {exc}") from None
    when = forecast_days(float(days[-1]), args.days, args.horizon, args.step)

    bars = []  # created on the first refit, so an error before it prints one line only

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="bootstrap refits", unit="fit", disable=args.quiet, file=sys.stderr, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    try:
        forecast = bootstrap_forecast(days, sizes, rt_start, when, n_boot=args.n_boot, seed=args.seed,
                                      interval=args.interval, progress=progress, law=args.law)
    finally:
        for bar in bars:
            bar.close()
    if not args.quiet:
        print(forecast.fit.summary(), file=sys.stderr)

    text = render(forecast, args.format, series)
    if out is None:
        sys.stdout.write(text)
        return 0
    write_atomically(text, out)
    fit = forecast.fit
    summary = {
        "output": str(out),
        "format": args.format,
        "forecast_days": len(when),
        "model": fit.model,
        "law": fit.law,
        "parameters": fit.parameters(),
        "r2": fit.r2,
        "noise_model": forecast.noise_model,
    }
    print(json.dumps(_finite_or_none(summary), indent=2))
    return 0
