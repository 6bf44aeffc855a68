"""A progress bar for in-process commands, fed by ``progress(stage, fraction, message)`` callbacks."""

from __future__ import annotations

import sys

from tqdm import tqdm


class StageBar:
    """A 0–100 % tqdm bar on stderr, created on the first report so an early error prints one line only.

    Use as a context manager; call the instance as the engine's ``progress`` callback.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar = None

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if self._bar is None:
            self._bar = tqdm(total=100, unit="%", disable=self.quiet, file=sys.stderr, dynamic_ncols=True,
                             bar_format="{desc:<34.34} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        self._bar.set_description_str(message or stage)
        self._bar.update(max(0, round(100 * min(max(fraction, 0.0), 1.0)) - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StageBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
