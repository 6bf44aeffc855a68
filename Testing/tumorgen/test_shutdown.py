"""The console script's fast exit (tumorgen.shutdown): exit codes, output and atexit handlers are kept."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_console_script_keeps_exit_codes_output_and_atexit_handlers():
    done = _run("import atexit, sys; import tumorgen.cli.main as m; atexit.register(lambda: print('atexit ran')); "
                "sys.argv = ['tumorgen', 'tasks']; m.entry()")
    assert done.returncode == 0 and "inpaint" in done.stdout and done.stdout.rstrip().endswith("atexit ran")
    done = _run("import sys; import tumorgen.cli.main as m; sys.argv = ['tumorgen', 'grow']; m.entry()")
    assert done.returncode == 2 and "required" in done.stderr  # argparse's error
    done = _run("import sys; import tumorgen.cli.main as m; sys.argv = ['tumorgen', 'inpaint', '--t1n', 'nowhere.nii.gz', "
                "'--mask', 'nowhere.nii.gz', '--out', 'x.nii.gz']; m.entry()")
    assert done.returncode == 2 and "not found" in done.stderr


def test_a_bug_still_prints_its_traceback_and_exits_1():
    done = _run("import tumorgen.cli.main as m; m.main = lambda: 1 / 0; m.entry()")
    assert done.returncode == 1 and "ZeroDivisionError" in done.stderr and "Traceback" in done.stderr
