"""Ending a command-line or backend process without the interpreter's slow finalisation.

Once PyTorch and MONAI are loaded, Python's own shutdown (tearing down thousands
of modules and their objects) takes about a second on 2 cores: 10 % of an
interactive what-if. :func:`exit_now` runs what ``atexit`` holds (Ray's
shutdown, ``weakref.finalize`` clean-ups), flushes the standard streams and
ends the process at once. Only the console script and the backend's
``__main__`` call it; code that calls :func:`tumorgen.cli.main.main` in-process
(the tests, a host application) returns normally.
"""

from __future__ import annotations

import atexit
import os
import sys


def exit_now(code: int | None) -> None:
    """Run the ``atexit`` handlers, flush stdout and stderr, and end the process with ``code`` (0 for None)."""
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(int(code or 0))


__all__ = ["exit_now"]
