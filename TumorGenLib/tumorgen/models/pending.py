"""A model loading on a background thread while the caller does work that does not need it.

Importing PyTorch and MONAI and building and reading the networks take about 7 s
on 2 CPU cores. The follow-up starts the loading once its inputs are checked,
registers the template, fits the forecast and regrows the tumor meanwhile
(NumPy, SciPy and SimpleITK, which leave the interpreter to the loading thread
for most of their time), and takes the model when the image step starts.

This module imports neither PyTorch nor MONAI: the loading thread does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from tumorgen.errors import CancelledError, InputError

#: The weights file of each network, and the network it also needs (the ControlNets steer the denoiser).
NETWORK_FILES = {"denoiser": ("denoiser.safetensors", None), "controlnet": ("controlnet.safetensors", "denoiser"),
                 "regressor": ("regressor.safetensors", None), "postop": ("postop.safetensors", "denoiser")}


def weights_folder(weights: str | Path | None) -> Path:
    """The weights folder: ``weights``, or the bundled model's."""
    from tumorgen.models.config import bundled_weights

    return Path(weights) if weights else bundled_weights()


class PendingModel:
    """A :class:`~tumorgen.models.sampling.LatentDiffusion` loading on a background thread.

    What needs no loading is checked first, so that a wrong weights folder or a missing network still fails before
    the slow steps: the folder when it is made, and which networks it holds with :meth:`has`. :meth:`start` starts
    the loading (after those checks); :meth:`get` waits for it, or loads in the calling thread when it was not
    started, and raises whatever the loading raised (a corrupt file, a bad precision). The thread is not a daemon:
    a command that fails while it runs exits when the loading ends (seconds), never in the middle of an import.
    """

    def __init__(self, weights: str | Path | None = None, device: str = "auto", **kwargs):
        self.folder = weights_folder(weights)
        if not self.folder.is_dir():
            raise InputError(f"model weights folder not found: {self.folder}")
        self._device, self._kwargs = device, kwargs
        self._model = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PendingModel:
        """Start loading on a background thread (once); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="tumorgen-model-loading")
            self._thread.start()
        return self

    def _load(self) -> None:
        try:
            from tumorgen.models.sampling import LatentDiffusion

            self._model = LatentDiffusion(self.folder, device=self._device, **self._kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the caller of get()
            self._error = error
        finally:
            self._done.set()

    def has(self, network: str) -> bool:
        """Whether the folder holds ``network``'s weights (and those of the network it needs), without waiting."""
        name, needs = NETWORK_FILES[network]
        return (self.folder / name).is_file() and (needs is None or self.has(needs))

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self, cancelled: Callable[[], bool] | None = None):
        """The loaded model (waits for it); raises what loading raised, or :class:`~tumorgen.errors.CancelledError`
        when ``cancelled`` turns true while waiting."""
        if self._thread is None and not self._done.is_set():
            self._load()
        while not self._done.wait(0.1):
            if cancelled is not None and cancelled():
                raise CancelledError("cancelled while loading the model")
        if self._error is not None:
            raise self._error
        return self._model


__all__ = ["NETWORK_FILES", "PendingModel", "weights_folder"]
