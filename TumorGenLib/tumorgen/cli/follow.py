"""Follow a backend job on the terminal: a progress bar, log lines, the outcome."""

from __future__ import annotations

import sys

from tqdm import tqdm

from tumorgen.backend.events import ErrorEvent, LogEvent, ProgressEvent
from tumorgen.backend.runner import JobOutcome, JobProcess


def follow_job(job: JobProcess, *, quiet: bool = False, verbose: bool = False) -> JobOutcome:
    """Show ``job``'s progress until it ends; Ctrl-C cancels it cleanly."""
    bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr, dynamic_ncols=True,
               bar_format="{desc:<28.28} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
    try:
        for event in job.events():
            if isinstance(event, ProgressEvent):
                bar.set_description_str(event.message or event.stage)
                bar.update(round(100 * event.fraction) - bar.n)
            elif isinstance(event, LogEvent) and (verbose or event.level not in ("stderr", "debug")):
                bar.write(f"  {event.message}", file=sys.stderr)
            elif isinstance(event, ErrorEvent) and not quiet:
                bar.write(f"  {event.kind}: {event.message}", file=sys.stderr)
    except KeyboardInterrupt:
        bar.write("  cancelling ...", file=sys.stderr)
        job.cancel()
    finally:
        bar.close()
    return job.wait()
