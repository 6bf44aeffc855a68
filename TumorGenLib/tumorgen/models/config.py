"""Model size configs: JSON files in ``tumorgen/models/configs`` (``tiny``, ``small``, ``full``) or any path."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tumorgen.errors import InputError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: The bundled models' weights folders, one per model (no PyTorch needed to find them).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "tiny"
SECTIONS = ("autoencoder", "denoiser", "controlnet", "regressor", "scheduler")

#: The networks ``tumorgen train`` trains (here, so the command line lists them without importing PyTorch).
MODELS = ("autoencoder", "denoiser", "controlnet", "regressor", "postop", "synthesis")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    spacing_mm: float
    crop: tuple[int, int, int]
    autoencoder: dict
    denoiser: dict
    controlnet: dict
    regressor: dict
    scheduler: dict
    description: str = ""
    #: The post-operative ControlNet (optional): its condition channels and training options, on top of ``controlnet``'s.
    postop: dict = field(default_factory=dict)
    #: The label-map synthesis generator (optional, :mod:`tumorgen.synthesis`): its contrasts and network sizes.
    synthesis: dict = field(default_factory=dict)
    #: The file it was read from.
    source: str = field(default="", compare=False)

    @property
    def reference(self) -> str:
        """How a model card names it: a bundled config by its name, any other by its file's absolute path."""
        bundled = CONFIG_DIR / f"{self.name}.json"
        return self.name if not self.source or Path(self.source).resolve() == bundled.resolve() else str(Path(self.source).resolve())

    @property
    def latent_channels(self) -> int:
        return int(self.autoencoder["latent_channels"])

    @property
    def downsampling(self) -> int:
        """Spatial downsampling of the autoencoder per axis (2 per level after the first)."""
        return 2 ** (len(self.autoencoder["channels"]) - 1)

    @property
    def latent_crop(self) -> tuple[int, int, int]:
        return tuple(c // self.downsampling for c in self.crop)

    def crop_for(self, model: str) -> tuple[int, int, int]:
        """The training crop of ``model``: its section's own ``crop`` when it has one, else the config's."""
        section = getattr(self, model, {})
        return tuple(int(c) for c in section.get("crop", self.crop))

    @property
    def condition(self) -> tuple[str, ...]:
        return tuple(self.controlnet["condition"])

    def with_condition(self, channels) -> ModelConfig:
        """The same config with another list of ControlNet condition channels."""
        from dataclasses import replace

        return replace(self, controlnet={**self.controlnet, "condition": list(channels)})

    def for_postop(self) -> ModelConfig:
        """The config of the post-operative ControlNet: the ControlNet's section with the ``postop`` section's keys on top."""
        from dataclasses import replace

        if not self.postop:
            raise InputError(f"model config {self.name} has no postop section (the post-operative ControlNet)")
        return replace(self, controlnet={**self.controlnet, **self.postop})


def bundled_weights(name: str = DEFAULT_MODEL) -> Path:
    return WEIGHTS_DIR / name


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A bundled config by name (``tiny``, ``small``, ``full``) or a JSON file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise InputError(f"unknown model config {str(name_or_path)!r}; available: {', '.join(available_configs())}")
    if not path.is_file():
        raise InputError(f"model config not found: {path}")
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"model config {path} is not valid JSON: {exc}") from None
    missing = [s for s in (*SECTIONS, "crop", "spacing_mm") if s not in raw]
    if missing:
        raise InputError(f"model config {path} lacks {', '.join(missing)}")
    config = ModelConfig(
        name=str(raw.get("name", path.stem)),
        spacing_mm=float(raw["spacing_mm"]),
        crop=tuple(int(c) for c in raw["crop"]),
        description=str(raw.get("description", "")),
        postop=dict(raw.get("postop", {})),
        synthesis=dict(raw.get("synthesis", {})),
        source=str(path),
        **{s: dict(raw[s]) for s in SECTIONS},
    )
    for model in ("autoencoder", "denoiser", "controlnet", "regressor"):
        crop = config.crop_for(model)
        if len(crop) != 3 or any(c <= 0 or c % config.downsampling for c in crop):
            raise InputError(f"model config {path}: the {model} crop {crop} must be 3 sizes divisible by the autoencoder's downsampling {config.downsampling}")
    if not config.condition:
        raise InputError(f"model config {path}: the ControlNet needs at least one condition channel")
    resampling = config.controlnet.get("condition_resampling", "nearest")
    embedding = config.controlnet.get("conditioning_embedding_num_channels", [])
    if resampling not in ("nearest", "embedding"):
        raise InputError(f"model config {path}: condition_resampling must be nearest or embedding, got {resampling!r}")
    levels = len(config.autoencoder["channels"])
    if resampling == "embedding" and len(embedding) != levels:
        raise InputError(f"model config {path}: with embedding resampling the ControlNet needs {levels} conditioning_embedding_num_channels "
                         f"(one stride-2 step per autoencoder downsampling), got {len(embedding)}")
    return config
