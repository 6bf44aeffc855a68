"""Training data for the post-operative ControlNet: pairs, their composite prompts, condition dropout.

Each pre-/post-operative pair of the data folder (:func:`tumorgen.postop.library.find_pairs`)
becomes :data:`NEIGHBOURS` training cases, one per library case retrieved for it
(tumor-guided, the pair itself left out, as paper 004 draws one of its top
cases per batch): the target is the post-operative T1's latents on a
:data:`WINDOW_MM` window around the resection box, the condition the composite
prompt made with that neighbour, the tumor prompt and the box mask, exactly as
:func:`tumorgen.postop.predict.predict_postop` builds them.

:class:`PromptDropoutSampler` drops the whole condition (a null condition of
zeros) with probability ``condition_dropout``, so the model also learns the
unconditional estimate that classifier-free guidance needs, and otherwise the
composite or the tumor prompt alone with probability ``prompt_dropout`` each
(the ablations without them run the same network).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tumorgen.models.data import LatentCase, LatentCropSampler

#: Retrieved neighbours (composites) per pair.
NEIGHBOURS = 3
#: Side of the window kept around each resection box, mm (a multiple of 16 voxels at 1 mm).
WINDOW_MM = 96
CONDITION = ("composite", "tumor", "box")


def prepare_pair(data, library, *, neighbours: int = NEIGHBOURS, margin_mm: float = 5.0, window_mm: int = WINDOW_MM):
    """The window, the post-operative target and one condition stack per neighbour for a prepared pair (:class:`~tumorgen.postop.library.PairData`)."""
    from tumorgen.biophysics.edit import box_mask
    from tumorgen.postop.composite import carried_cases, composite_image
    from tumorgen.postop.library import template_grids
    from tumorgen.postop.predict import generated_region, tumor_prompt
    from tumorgen.inpainting.core import crop_volume

    pre = data.pre
    grid = pre.grid
    box = box_mask(grid, data.box["centre_ras_mm"], data.box["size_mm"]).array
    prompt, tumor = tumor_prompt(None, pre.with_array(data.concentration)) if data.concentration is not None else \
        tumor_prompt(pre.with_array(data.seg), None)
    size = [min(int(round(window_mm / s)) // 16 * 16, n // 16 * 16) for s, n in zip(grid.spacing, grid.size)]
    centre = np.argwhere(box).mean(0) if box.any() else np.asarray(grid.size) / 2
    start = [int(np.clip(round(c - k / 2), 0, n - k)) for c, k, n in zip(centre, size, grid.size)]
    window = tuple(slice(s, s + k) for s, k in zip(start, size))
    region = generated_region(box, pre.array > 0, margin_mm, grid.spacing)
    template, _ = template_grids()
    matches = library.retrieve(min(neighbours, len(library) - (data.name in library.names)), "tumor",
                               tumor=_template_tumor(data), exclude=[data.name])
    window_grid = crop_volume(pre, window).grid
    carried = carried_cases([library.cases[m.index] for m in matches], data.affine, window_grid, template)
    conditions = []
    for case in carried:
        composite, _ = composite_image(pre.array[window], region[window], [case], grid.spacing)
        conditions.append(np.stack([composite, prompt[window], box[window].astype(np.float32)]).astype(np.float32))
    return window, data.post.array[window].astype(np.float32), conditions, prompt[window], [m.name for m in matches]


def _template_tumor(data) -> np.ndarray:
    from tumorgen.postop.library import template_tumor

    return template_tumor(data.seg, data.pre.grid, data.affine)


def postop_latent_cases(root: str | Path, encode, downsampling: int, *, library=None, progress=None,
                        register=None) -> tuple[list[LatentCase], dict]:
    """The training cases of a data folder of pairs (see the module docstring) and a record of what they are;
    ``register`` as for :func:`~tumorgen.postop.library.read_pair`."""
    from tumorgen.postop.library import CaseLibrary, find_pairs, library_case, read_pair

    say = progress or (lambda fraction, message: None)
    pairs = find_pairs(root)
    if library is None:  # one pair in memory at a time: the library first, then each pair again (its registration is cached)
        entries = []
        for n, pair in enumerate(pairs):
            entries.append(library_case(read_pair(pair, register=register), None))
            say(0.5 * (n + 1) / len(pairs), f"registered {pair.name}")
        library = CaseLibrary(entries)
    if len(library) < 2:
        from tumorgen.errors import InputError

        raise InputError("training the post-operative ControlNet needs at least two pairs (each learns from another's resection)")
    cases: list[LatentCase] = []
    record: dict = {"pairs": [p.name for p in pairs], "neighbours": {}}
    for n, pair in enumerate(pairs):
        data = read_pair(pair, register=register)
        window, target, conditions, prompt, names = prepare_pair(data, library)
        prompt = np.ascontiguousarray(prompt)  # a copy: the whole volumes are let go
        padded = target  # the window is a multiple of 16 voxels: nothing to pad
        latents = np.asarray(encode(padded[None, None]))[0].astype(np.float32)
        blocks = [k // downsampling for k in padded.shape]
        foreground = (padded > 0).reshape(blocks[0], downsampling, blocks[1], downsampling, blocks[2], downsampling).any(axis=(1, 3, 5))
        for j, stacked in enumerate(conditions):
            condition = {name: stacked[c] for c, name in enumerate(CONDITION)}
            condition["concentration"] = prompt  # where the sampler centres half of its crops
            cases.append(LatentCase(f"{data.name}-{j}", [latents], ("t1n",), condition, data.pre.grid.voxel_volume_mm3 / 1000.0,
                                    np.argwhere(foreground)))
        record["neighbours"][data.name] = names
        say(0.5 + 0.5 * (n + 1) / len(pairs), f"composites of {data.name}")
    return cases, record


class PromptDropoutSampler(LatentCropSampler):
    """:class:`~tumorgen.models.data.LatentCropSampler` with condition dropout (see the module docstring)."""

    def __init__(self, cases, latent_crop, downsampling: int, seed: int, condition, *, condition_dropout: float, prompt_dropout: float,
                 record: dict | None = None):
        super().__init__(cases, latent_crop, downsampling, seed, condition)
        self.condition_dropout = float(condition_dropout)
        self.prompt_dropout = float(prompt_dropout)
        self.record = record or {}

    def batch(self, step: int, size: int) -> dict[str, np.ndarray]:
        out = super().batch(step, size)
        rng = np.random.default_rng([self.seed, step, 2])  # its own stream: the crops are those of a run without dropout
        condition = out["condition"]
        for b in range(condition.shape[0]):
            if rng.random() < self.condition_dropout:
                condition[b] = 0.0
                continue
            for c, name in enumerate(self.condition):
                if name in ("composite", "tumor") and rng.random() < self.prompt_dropout:
                    condition[b, c] = 0.0
        return out


__all__ = ["CONDITION", "NEIGHBOURS", "PromptDropoutSampler", "WINDOW_MM", "postop_latent_cases", "prepare_pair"]
