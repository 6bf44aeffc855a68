"""RePaint: the jump schedule, the closed-form chain against MONAI's schedulers, known-region injection."""

from __future__ import annotations

import pytest
import torch

from tumorgen.errors import InputError
from tumorgen.models import networks as N
from tumorgen.models.config import load_config
from tumorgen.models.repaint import PAPER, Noise, RePaintChain, RePaintSchedule, repaint, time_grid


def _scheduler(kind: str, steps: int):
    scheduler = N.build_scheduler(load_config("tiny"), kind)
    scheduler.set_timesteps(steps)
    return scheduler


def _fake_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    """A stand-in noise estimate that depends on x and t."""
    return 0.3 * x + 0.01 * t / 1000 * torch.sin(torch.arange(x.numel(), dtype=x.dtype).reshape(x.shape))


def test_walk_goes_back_jump_steps_resample_minus_one_times_every_jump():
    walk = RePaintSchedule("ddim", steps=6, jump=2, resample=2).indices()
    assert walk == [5, 4, 3, 2, 3, 4, 3, 2, 1, 0, 1, 2, 1, 0, -1]
    assert RePaintSchedule("ddim", 50, 10, 1).indices() == list(range(49, -2, -1))  # resample 1: a plain chain
    assert RePaintSchedule("ddim", 50, 10, 1).evaluations == 50
    paper = RePaintSchedule(**PAPER)
    assert paper.evaluations == 1000 + 99 * 9 * 10  # jumps at 0, 10, …, 980: 9 extra passes of 10 steps each
    assert RePaintSchedule("ddim", 50, 5, 5).evaluations == 50 + 9 * 4 * 5


@pytest.mark.parametrize("bad", [dict(kind="euler"), dict(steps=0), dict(jump=0), dict(resample=0)])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(InputError):
        RePaintSchedule(**bad)


@pytest.mark.parametrize("kind,steps,rtol", [("ddim", 20, 1e-5), ("ddpm", 1000, 1e-3)])
def test_a_plain_chain_matches_monai_step_for_step(kind, steps, rtol):
    """No mask, no jumps: RePaint's moves are MONAI's DDIM (η = 0) and DDPM (ancestral) updates, noise draw for noise draw.

    (Over DDPM's 1000 steps float32 rounding in MONAI's coefficients against
    our float64 ones compounds to about 2e-4 relative.)
    """
    scheduler = _scheduler(kind, steps)
    known = torch.zeros(1, 4, 3, 3, 3)
    chain = RePaintChain(scheduler.alphas_cumprod, time_grid(scheduler), kind)
    ours = repaint(_fake_eps, known, torch.ones(1, 1, 3, 3, 3), chain, RePaintSchedule(kind, steps, 1, 1), seed=7)

    generator = torch.Generator().manual_seed(7)
    x = torch.randn(known.shape, generator=generator)
    for t in scheduler.timesteps:
        eps = _fake_eps(x, int(t))
        x, _ = scheduler.step(eps, int(t), x, generator=generator) if kind == "ddpm" else scheduler.step(eps, int(t), x)
    assert torch.allclose(ours, x, atol=2e-5, rtol=rtol), float((ours - x).abs().max())


def test_known_region_is_kept_exactly_and_the_masked_region_is_generated():
    scheduler = _scheduler("ddim", 10)
    chain = RePaintChain(scheduler.alphas_cumprod, time_grid(scheduler), "ddim")
    known = torch.randn(1, 4, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 4, 4, 4)
    mask[..., 1:3, 1:3, 1:3] = 1
    seen = []
    out = repaint(_fake_eps, known, mask, chain, RePaintSchedule("ddim", 10, 3, 3), seed=0, progress=seen.append)
    outside = mask.expand_as(known) == 0
    assert torch.equal(out[outside], known[outside])
    assert not torch.allclose(out[~outside], known[~outside])
    assert seen[-1] == pytest.approx(1.0) and len(seen) == len(RePaintSchedule("ddim", 10, 3, 3).indices()) - 1
    again = repaint(_fake_eps, known, mask, chain, RePaintSchedule("ddim", 10, 3, 3), seed=0)
    other = repaint(_fake_eps, known, mask, chain, RePaintSchedule("ddim", 10, 3, 3), seed=1)
    assert torch.equal(out, again) and not torch.equal(out, other)


def test_a_jump_back_adds_the_forward_process_noise():
    scheduler = _scheduler("ddim", 50)
    chain = RePaintChain(scheduler.alphas_cumprod, time_grid(scheduler), "ddim")
    x = torch.zeros(1, 200_000)
    jumped = chain.forward(x, 10, 20, Noise(0))
    expected = 1 - chain.alpha_bar(20) / chain.alpha_bar(10)
    assert float(jumped.var()) == pytest.approx(expected, rel=0.02)
    ones = chain.forward(torch.ones(1, 200_000), 10, 20, Noise(0))
    assert float(ones.mean()) == pytest.approx((chain.alpha_bar(20) / chain.alpha_bar(10)) ** 0.5, abs=0.01)


def test_cancelling_stops_the_chain():
    from tumorgen.errors import CancelledError

    scheduler = _scheduler("ddim", 10)
    chain = RePaintChain(scheduler.alphas_cumprod, time_grid(scheduler), "ddim")
    calls = []

    def eps(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    with pytest.raises(CancelledError):
        repaint(eps, torch.zeros(1, 4, 2, 2, 2), torch.ones(1, 1, 2, 2, 2), chain, RePaintSchedule("ddim", 10, 1, 1),
                cancelled=lambda: len(calls) >= 3)
    assert len(calls) == 3


def test_a_prior_start_runs_the_lower_part_of_the_walk_from_the_noised_prior():
    """strength s: the chain starts at grid index round(s·steps) − 1 from the prior noised to that level (SDEdit)."""
    from tumorgen.models.repaint import start_index

    assert start_index(25, 1.0) == 24 and start_index(25, 0.5) == 12 and start_index(25, 0.01) == 0
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(InputError, match="strength"):
            start_index(25, bad)
    scheduler = _scheduler("ddim", 10)
    chain = RePaintChain(scheduler.alphas_cumprod, time_grid(scheduler), "ddim")
    known = torch.zeros(1, 4, 4, 4, 4)
    mask = torch.ones(1, 1, 4, 4, 4)
    prior = torch.full((1, 4, 4, 4, 4), 3.0)
    calls = []

    def zero_eps(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    schedule = RePaintSchedule("ddim", 10, 1, 1)
    out = repaint(zero_eps, known, mask, chain, schedule, seed=0, prior=prior, strength=0.3)
    # DDIM with ε = 0 carries x̂0 = x_t / √ᾱ_t unchanged down to t = 0: the noised prior's own x̂0
    start = chain.noised(prior, 2, Noise(0))
    assert calls == [chain.timestep(i) for i in (2, 1, 0)]
    assert torch.allclose(out, start / chain.alpha_bar(2) ** 0.5, atol=1e-5)
    assert abs(float(out.mean()) - 3.0) < 0.5  # the prior survives at low strength
    full = repaint(zero_eps, known, mask, chain, schedule, seed=0, prior=prior, strength=1.0)
    assert abs(float(full.mean()) - 3.0) > 1.0  # strength 1: pure noise, the prior is ignored


def test_a_batch_of_samples_equals_the_samples_run_one_by_one():
    """Seeds (3, 4, 5) as one batch: each sample equals the run of its seed alone, and the network sees the batch."""
    scheduler = _scheduler("ddpm", 20)
    chain = RePaintChain(scheduler.alphas_cumprod, time_grid(scheduler), "ddpm")
    known = torch.randn(1, 4, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 4, 4, 4)
    mask[..., 1:3, 1:3, :] = 1
    weight = torch.randn(4, 4, generator=torch.Generator().manual_seed(2)) * 0.1
    batches = []

    def eps(x, t):  # a deterministic stand-in network that mixes channels per sample
        batches.append(x.shape[0])
        return torch.einsum("oc,bcxyz->boxyz", weight, x) * (t / 1000.0)

    schedule = RePaintSchedule("ddpm", 20, 5, 3)
    together = repaint(eps, known, mask, chain, schedule, seed=[3, 4, 5])
    assert together.shape == (3, 4, 4, 4, 4) and set(batches) == {3}
    for k, seed in enumerate((3, 4, 5)):
        alone = repaint(eps, known, mask, chain, schedule, seed=seed)
        assert torch.allclose(together[k:k + 1], alone, atol=1e-6)
    assert not torch.allclose(together[0], together[1])
    assert torch.equal(together[:, :, 0], known.expand(3, -1, -1, -1, -1)[:, :, 0])  # the known region is kept


def test_noise_drawn_ahead_equals_noise_drawn_step_by_step():
    """What the CUDA path does (draws made ahead in chunks, one transfer) gives the same values as drawing each step."""
    like = torch.zeros(2, 4, 3, 3, 3)
    direct, ahead = Noise([7, 8], prefetch=0), Noise([7, 8], prefetch=4)
    draws_direct = [direct.like(like) for _ in range(6)]
    draws_ahead = [ahead.like(like) for _ in range(6)]  # two chunks of 4 drawn ahead
    for a, b in zip(draws_direct, draws_ahead):
        assert torch.equal(a, b)
    assert draws_direct[0].shape == (2, 4, 3, 3, 3) and not torch.equal(draws_direct[0][0], draws_direct[0][1])
    with pytest.raises(InputError, match="seed"):
        Noise([])
