"""RePaint in latent space: generate inside a mask, keep what is known outside it.

Lugmayr et al., "RePaint: Inpainting using Denoising Diffusion Probabilistic
Models" (CVPR 2022), on the latents of the autoencoder as paper 000 does:

* **known-region injection**: after every denoising step the latents outside
  the mask are replaced by the known latents noised to the same level,
  ``x = m · x_generated + (1 − m) · q(x_t | z_known)``;
* **resampling**: every ``jump`` steps the chain goes back ``jump`` steps by the
  forward process, ``q(x_{t+j} | x_t)``, and denoises them again, ``resample``
  times in all, so that the generated region harmonises with the injected one
  (the paper's default is 10 × 10 on DDPM's 1000 steps). ``resample=1`` turns
  resampling off and leaves plain injection.

The chain runs on a time grid: the scheduler's timesteps (1000 for the paper's
DDPM, fewer for DDIM or strided DDPM). Steps between neighbouring grid points
use the closed forms of ``alphas_cumprod``: DDPM's posterior
``q(x_{t'} | x_t, x̂_0)`` with its variance (ancestral), or DDIM's
deterministic update (η = 0). On a plain chain (no mask, no jumps) both agree
with MONAI's ``DDPMScheduler.step`` / ``DDIMScheduler.step`` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from tumorgen.errors import CancelledError, InputError

if TYPE_CHECKING:  # PyTorch is imported where it is used: the schedule is read by commands that never sample
    import torch

#: The paper's RePaint configuration: DDPM with 1000 steps, jumps of 10 steps resampled 10 times.
PAPER = {"kind": "ddpm", "steps": 1000, "jump": 10, "resample": 10}


@dataclass(frozen=True)
class RePaintSchedule:
    """Which sampler, how many grid steps, and the RePaint jump length and resample count."""

    kind: str = "ddim"
    steps: int = 50
    jump: int = 10
    resample: int = 10

    def __post_init__(self):
        if self.kind not in ("ddpm", "ddim"):
            raise InputError(f"scheduler must be ddpm or ddim, got {self.kind!r}")
        if self.steps < 1:
            raise InputError(f"steps must be at least 1, got {self.steps}")
        if self.jump < 1:
            raise InputError(f"jump length must be at least 1, got {self.jump}")
        if self.resample < 1:
            raise InputError(f"resample count must be at least 1 (1: no resampling), got {self.resample}")

    def indices(self) -> list[int]:
        """The walk over grid indices, from ``steps − 1`` (pure noise) to −1 (the clean latents).

        A decrease is a denoising step, an increase a jump back by the forward
        process; every ``jump`` steps from the bottom the chain goes back
        ``jump`` steps ``resample − 1`` times (RePaint's ``get_schedule_jump``).
        """
        jumps = {j: self.resample - 1 for j in range(0, self.steps - self.jump, self.jump)}
        t = self.steps
        walk = []
        while t >= 1:
            t -= 1
            walk.append(t)
            if jumps.get(t, 0) > 0:
                jumps[t] -= 1
                for _ in range(self.jump):
                    t += 1
                    walk.append(t)
        walk.append(-1)
        return walk

    def walk_from(self, start: int | None = None) -> list[int]:
        """:meth:`indices` from the first time the walk reaches grid index ``start`` (None: the whole walk)."""
        walk = self.indices()
        return walk if start is None else walk[walk.index(start):]

    @property
    def evaluations(self) -> int:
        """How many times the network runs: the number of denoising moves in :meth:`indices`."""
        return self.evaluations_from(None)

    def evaluations_from(self, start: int | None) -> int:
        """How many times the network runs on the walk from grid index ``start``."""
        walk = self.walk_from(start)
        return sum(1 for a, b in zip(walk, walk[1:]) if b < a)


def time_grid(scheduler) -> list[int]:
    """The scheduler's timesteps, ascending: grid index ``i`` → timestep."""
    return sorted(int(t) for t in scheduler.timesteps)


class RePaintChain:
    """The closed-form moves between grid points for one scheduler's ``alphas_cumprod``."""

    def __init__(self, alphas_cumprod: torch.Tensor, grid: list[int], kind: str):
        self.abar = alphas_cumprod.double().cpu()
        self.grid = grid
        self.kind = kind

    def alpha_bar(self, index: int) -> float:
        """ᾱ at grid ``index``; 1 at index −1 (the clean latents)."""
        return 1.0 if index < 0 else float(self.abar[self.grid[index]])

    def timestep(self, index: int) -> int:
        return self.grid[index]

    def noised(self, z0: torch.Tensor, index: int, noise: Noise) -> torch.Tensor:
        """``q(x_t | z0)`` at grid ``index`` (z0 itself at −1), one draw per sample of ``noise``."""
        if index < 0:
            return z0
        a = self.alpha_bar(index)
        return a**0.5 * z0 + (1 - a) ** 0.5 * noise.like(z0)

    def forward(self, x: torch.Tensor, index: int, to: int, noise: Noise) -> torch.Tensor:
        """``q(x_to | x_index)`` for ``to > index``: a jump back up the chain."""
        ratio = self.alpha_bar(to) / self.alpha_bar(index)
        return ratio**0.5 * x + (1 - ratio) ** 0.5 * noise.like(x)

    def denoise(self, x: torch.Tensor, eps: torch.Tensor, index: int, to: int, noise: Noise) -> torch.Tensor:
        """One step from grid ``index`` down to ``to`` (< index) given the noise estimate ``eps``."""
        a_t, a_prev = self.alpha_bar(index), self.alpha_bar(to)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        if self.kind == "ddim":
            return a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps
        beta = 1 - a_t / a_prev
        mean = (a_prev**0.5 * beta / (1 - a_t)) * x0 + ((1 - beta) ** 0.5 * (1 - a_prev) / (1 - a_t)) * x
        if to < 0:
            return mean
        variance = max((1 - a_prev) / (1 - a_t) * beta, 1e-20)
        return mean + variance**0.5 * noise.like(x)


class Noise:
    """Standard normal draws for a batch of samples, sample ``k``'s from its own CPU generator seeded ``seeds[k]``.

    Each draw is ``(len(seeds), *shape)``; sample ``k`` gets exactly the values a run of that sample alone with
    seed ``seeds[k]`` gets, so a batch of samples equals the samples run one after another, and the same seed
    gives the same noise on every device. On CUDA the draws are made ahead, ``prefetch`` at a time, into pinned
    memory and copied in one asynchronous transfer, so that the sampling loop does not wait for the device at
    every step (a copy from pageable memory synchronises the stream).
    """

    def __init__(self, seeds: int | Sequence[int], device: torch.device | str = "cpu", prefetch: int | None = None):
        import torch

        seeds = [int(seeds)] if isinstance(seeds, int) else [int(s) for s in seeds]
        if not seeds:
            raise InputError("at least one seed is needed")
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.device = torch.device(device)
        self.prefetch = int(prefetch if prefetch is not None else (32 if self.device.type == "cuda" else 0))
        self._bank: torch.Tensor | None = None
        self._shape: tuple | None = None
        self._next = 0

    @property
    def batch(self) -> int:
        return len(self.generators)

    def _draw(self, shape) -> torch.Tensor:
        import torch

        return torch.stack([torch.randn(shape, generator=g) for g in self.generators])

    def like(self, x: torch.Tensor) -> torch.Tensor:
        """A draw shaped like one sample of ``x`` (its shape without the batch axis), for every sample, on ``x``'s
        device and in its dtype."""
        shape = tuple(x.shape[1:])
        if self.prefetch <= 1:
            return self._draw((1, *shape)).flatten(0, 1).to(device=x.device, dtype=x.dtype)
        if self._bank is None or self._shape != shape or self._next >= self._bank.shape[0] or self._bank.device != x.device:
            import torch

            host = torch.stack([self._draw((1, *shape)).flatten(0, 1) for _ in range(self.prefetch)])
            if x.device.type == "cuda":
                host = host.pin_memory()
            self._bank = host.to(x.device, non_blocking=True)
            self._shape, self._next = shape, 0
        self._next += 1
        return self._bank[self._next - 1].to(dtype=x.dtype)


def start_index(steps: int, strength: float) -> int:
    """The grid index a chain of ``steps`` starts from at ``strength``: ``round(strength · steps) − 1`` (1: pure noise)."""
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must be in (0, 1], got {strength}")
    return max(0, min(steps - 1, int(strength * steps + 0.5) - 1))  # rounded half up


def repaint(predict_noise: Callable[[torch.Tensor, int], torch.Tensor], known: torch.Tensor, mask: torch.Tensor,
            chain: RePaintChain, schedule: RePaintSchedule, seed: int | Sequence[int] = 0,
            progress: Callable[[float], None] | None = None, cancelled: Callable[[], bool] | None = None,
            prior: torch.Tensor | None = None, strength: float = 1.0) -> torch.Tensor:
    """Latents that equal ``known`` where ``mask`` is 0 and are generated where it is 1.

    ``predict_noise(x, timestep)`` is the (controlled) denoiser, called on the whole batch at once; ``known`` the
    clean latents (1 or B, C, x, y, z); ``mask`` (1 or B, 1, x, y, z) in [0, 1]. ``seed``: one seed (one sample)
    or a sequence of B seeds: B samples run as one batch through the network, each with the noise of its own
    seed (:class:`Noise`), and the result is (B, C, x, y, z). The walk follows ``schedule.indices()``.
    ``cancelled()`` is polled between steps. Nothing in the loop reads a value back from the device.

    ``prior`` (latents like ``known``) and ``strength`` < 1 start the chain part of the way down (SDEdit): from
    ``prior`` noised to grid index :func:`start_index` instead of pure noise, so the low frequencies of the
    prior survive and the network supplies the detail.
    """
    noise = Noise(seed, known.device)
    mask = mask.to(known.dtype)
    walk = schedule.indices()
    anything_known = bool((mask < 1).any())  # once, before the loop

    def inject(generated: torch.Tensor, index: int) -> torch.Tensor:
        return mask * generated + (1 - mask) * chain.noised(known, index, noise) if anything_known else generated

    shape = (noise.batch, *known.shape[1:])
    if prior is not None and strength < 1.0:
        first = start_index(schedule.steps, strength)
        walk = schedule.walk_from(first)
        x = inject(chain.noised(prior.to(known.dtype).expand(shape), first, noise), first)
    else:
        x = inject(noise.like(known.expand(shape)), walk[0])
    total = max(len(walk) - 1, 1)
    for n, (index, to) in enumerate(zip(walk, walk[1:])):
        if cancelled is not None and cancelled():
            raise CancelledError("cancelled")
        if to < index:
            eps = predict_noise(x, chain.timestep(index))
            x = inject(chain.denoise(x, eps, index, to, noise), to)
        else:
            x = chain.forward(x, index, to, noise)
        if progress is not None:
            progress((n + 1) / total)
    return mask * x + (1 - mask) * known


__all__ = ["PAPER", "Noise", "RePaintChain", "RePaintSchedule", "repaint", "start_index", "time_grid"]
