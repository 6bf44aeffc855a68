"""`tumorgen forecast`, run as a user would: in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from tumorgen_testing import backend_env

from tumorgen.biophysics.growth_ode import bootstrap_forecast, fit_growth
from tumorgen.cli.main import main

DAYS = [0.0, 28.0, 56.0, 70.0, 98.0, 126.0]
SIZES = [12.1, 16.0, 21.3, 17.2, 11.9, 10.4]
RT_START = 60.0


def tumorgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tumorgen.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env=backend_env(), timeout=120)


def write_series(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def series(tmp_path):
    rows = "".join(f"{d:g},{s:g}\n" for d, s in zip(DAYS, SIZES))
    return write_series(tmp_path / "series.csv", "day,size\n" + rows)


def read_table(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and list(rows[0]) == ["day", "median", "low", "high"]
    return {key: np.array([float(row[key]) for row in rows]) for key in ("day", "median", "low", "high")}


def test_csv_to_stdout_matches_the_engine_with_the_default_horizon(series):
    proc = tumorgen("forecast", str(series), "--rt-start", "60", "--n-boot", "40", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    table = read_table(proc.stdout)
    expected_days = DAYS[-1] + np.arange(30.0, 181.0, 30.0)  # 180 days past the last scan in 30-day steps
    np.testing.assert_array_equal(table["day"], expected_days)
    direct = bootstrap_forecast(DAYS, SIZES, RT_START, expected_days, n_boot=40, seed=3)
    for column, values in (("median", direct.median), ("low", direct.lower), ("high", direct.upper)):
        np.testing.assert_allclose(table[column], values, rtol=1e-9, err_msg=column)
    assert np.all(table["low"] < table["median"]) and np.all(table["median"] < table["high"])
    assert "%|" in proc.stderr and "radiotherapy fit of 6 points" in proc.stderr  # progress bar, fit summary


def test_json_to_a_file_has_the_forecast_the_fit_and_r2(series, tmp_path):
    out = tmp_path / "results" / "forecast.json"
    proc = tumorgen("forecast", str(series), "--rt-start", "60", "--days", "130,160,250", "--n-boot", "30",
                    "--interval", "0.8", "--seed", "5", "--format", "json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(out.read_text())
    direct = bootstrap_forecast(DAYS, SIZES, RT_START, [130.0, 160.0, 250.0], n_boot=30, seed=5, interval=0.8)
    assert [row["day"] for row in document["forecast"]] == [130.0, 160.0, 250.0]
    # JSON floats round-trip exactly, and the same seed gives the same numbers
    assert [row["median"] for row in document["forecast"]] == direct.median.tolist()
    assert [row["low"] for row in document["forecast"]] == direct.lower.tolist()
    assert [row["high"] for row in document["forecast"]] == direct.upper.tolist()
    fit = fit_growth(DAYS, SIZES, RT_START)
    assert document["fit"]["model"] == "radiotherapy" and document["fit"]["free"] == ["s0", "lam", "alpha"]
    assert document["fit"]["parameters"]["lambda"] == pytest.approx(fit.lam, rel=1e-9)
    assert document["fit"]["parameters"]["alpha"] == pytest.approx(fit.alpha, rel=1e-9)
    assert document["fit"]["parameters"]["rt_start"] == 60.0
    assert document["fit"]["r2"] == pytest.approx(fit.r2, rel=1e-9) and 0.9 < document["fit"]["r2"] <= 1.0
    assert (document["interval"], document["n_boot"], document["seed"]) == (0.8, 30, 5)
    summary = json.loads(proc.stdout)  # with --out, stdout is a JSON summary
    assert summary["output"] == str(out) and summary["forecast_days"] == 3 and summary["r2"] == document["fit"]["r2"]
    assert [p.name for p in out.parent.iterdir()] == ["forecast.json"]  # no temporary file left behind


def test_rt_start_column_extra_columns_and_horizon_with_step(tmp_path):
    text = "\ufeffPatient, Size ,Day,rt_start,note\n" + "".join(
        f"p1,{s:g},{d:g},{'60' if i % 2 else ''},scan {i}\n" for i, (d, s) in enumerate(zip(DAYS, SIZES))
    )
    series = write_series(tmp_path / "with-rt.csv", text)
    out = tmp_path / "table.csv"
    proc = tumorgen("forecast", str(series), "--rt-start", "60", "--horizon", "100", "--step", "40", "--n-boot", "20",
                    "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet: no bar, no summary
    table = read_table(out.read_text())
    np.testing.assert_array_equal(table["day"], [166.0, 206.0, 226.0])  # the horizon itself is always included
    direct = bootstrap_forecast(DAYS, SIZES, RT_START, [166.0, 206.0, 226.0], n_boot=20, seed=0)
    np.testing.assert_allclose(table["median"], direct.median, rtol=1e-9)
    assert json.loads(proc.stdout)["parameters"]["rt_start"] == 60.0


def test_without_rt_the_model_is_exponential(series):
    proc = tumorgen("forecast", str(series), "--days", "150", "--n-boot", "20", "--format", "json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["fit"]["model"] == "exponential" and document["fit"]["parameters"]["alpha"] is None
    direct = bootstrap_forecast(DAYS, SIZES, None, [150.0], n_boot=20, seed=0)
    assert document["forecast"][0]["median"] == direct.median[0]


def test_a_flat_series_writes_valid_json(tmp_path):
    series = write_series(tmp_path / "flat.csv", "day,size\n0,5\n30,5\n60,5\n")
    proc = tumorgen("forecast", str(series), "--days", "90", "--n-boot", "10", "--format", "json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "NaN" not in proc.stdout and "Infinity" not in proc.stdout
    document = json.loads(proc.stdout)  # R2 of a flat series is undefined (NaN): written as null
    assert document["fit"]["r2"] is None and abs(document["fit"]["parameters"]["lambda"]) < 1e-12
    assert document["forecast"][0]["median"] == pytest.approx(5.0, rel=0.2)


GOOD = "day,size\n0,12.1\n28,16\n56,21.3\n70,17.2\n98,11.9\n"


@pytest.mark.parametrize(
    "text, args, message",
    [
        (None, [], "series file not found"),
        ("", [], "is empty"),
        ("day,size\n", [], "no measurements"),
        ("day,volume\n0,1\n10,2\n", [], "missing column size"),
        ("time;size\n0;1\n10;2\n", [], "missing columns day and size"),
        ("day,size\n0,1\n10,big\n20,3\n", [], "line 3: size 'big' is not a number"),
        ("day,size\n0,1\n,2\n20,3\n", [], "line 3: the day cell is empty"),
        ("day,size\n0,1\n10\n20,3\n", [], "line 3: the size cell is empty"),
        ("day,size\n0,1\n10,nan\n20,3\n", [], "line 3: size 'nan' is not a finite number"),
        ("day,size\n0,1\n", [], "need at least 2 measurements"),
        ("day,size\n0,1\n10,0\n20,3\n", [], "size at day 10 is 0; sizes must be positive"),
        ("day,size\n0,1\n10,-2\n20,3\n", [], "sizes must be positive"),
        ("day,size\n0,1\n20,2\n10,3\n", [], "increasing order"),
        ("day,size\n0,1\n10,2\n10,3\n", [], "day 10 appears more than once"),
        ("day,size,rt_start\n0,1,5\n10,2,6\n20,3,5\n", [], "rt_start column must hold one day"),
        ("day,size,rt_start\n0,1,50\n10,2,50\n20,3,50\n", [], "rt_start 50 is not before the last measurement"),
        ("day,size,rt_start\n0,1,5\n10,2,5\n20,3,5\n", ["--rt-start", "7"], "disagrees with the rt_start column"),
        ("day,size,day\n0,1,0\n10,2,10\n", [], "column day appears more than once"),
        (GOOD, ["--rt-start=-10"], "before the first measurement"),
        (GOOD, ["--days", "150,soon"], "--days: 'soon' is not a number"),
        (GOOD, ["--days", "150", "--horizon", "30"], "either --days or --horizon"),
        (GOOD, ["--days=-5"], "forecast day -5 is before the first measurement"),
        (GOOD, ["--horizon", "0"], "--horizon must be a positive number"),
        (GOOD, ["--step", "-1"], "--step must be a positive number"),
        (GOOD, ["--n-boot", "5"], "--n-boot must be at least 10"),
        (GOOD, ["--interval", "1.5"], "--interval must be between 0 and 1"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, text, args, message):
    """The whole table in-process through ``main`` (a subprocess each would take a second); see below for real runs."""
    series = tmp_path / "series.csv"
    if text is not None:
        series.write_text(text)
    out = tmp_path / "out" / "forecast.csv"
    fast = [] if "--n-boot" in args else ["--n-boot", "10"]
    code = main(["forecast", str(series), *args, *fast, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tumorgen forecast: error: ") and message in lines[0], captured.err
    assert captured.out == ""
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no output, no temporary file


@pytest.mark.parametrize(
    "text, args, message",
    [
        (None, [], "series file not found: "),
        ("day,size\n0,1\n10,big\n", [], "line 3: size 'big' is not a number"),
        ("day,size\n0,1\n", ["--rt-start", "0"], "need at least 2 measurements"),
        ("day\n0\n10\n", [], "missing column size"),
    ],
)
def test_bad_input_from_the_command_line(tmp_path, text, args, message):
    series = tmp_path / "series.csv"
    if text is not None:
        series.write_text(text)
    out = tmp_path / "out" / "forecast.csv"
    proc = tumorgen("forecast", "series.csv", *args, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tumorgen forecast: error: ") and message in lines[0], proc.stderr
    assert proc.stdout == ""
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_out_must_not_be_the_series_or_a_folder(series, tmp_path):
    for target, message in ((series, "is the series file itself"), (tmp_path, "is a folder")):
        proc = tumorgen("forecast", str(series), "--n-boot", "10", "--out", str(target))
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert series.read_text().startswith("day,size\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series.csv"]


def test_an_existing_output_is_replaced_only_on_success(series, tmp_path):
    out = tmp_path / "forecast.csv"
    out.write_text("old\n")
    bad = write_series(tmp_path / "bad.csv", "day,size\n0,1\n")
    proc = tumorgen("forecast", str(bad), "--out", str(out))
    assert proc.returncode == 2 and out.read_text() == "old\n"
    proc = tumorgen("forecast", str(series), "--n-boot", "10", "--days", "150", "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert read_table(out.read_text())["day"].tolist() == [150.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "forecast.csv", "series.csv"]


def test_help_has_an_example():
    proc = tumorgen("forecast", "--help")
    assert proc.returncode == 0 and "example:" in proc.stdout and "tumorgen forecast series.csv" in proc.stdout
