#!/usr/bin/env python3
"""Benchmark: does the growth-ODE fit recover known parameters, and does the bootstrap interval cover the truth?

Synthetic series with multiplicative log-normal noise are drawn from known
parameters; for each trial the model is fitted (R² on log sizes, error of λ
and α) and a bootstrap forecast made; coverage is the fraction of trials whose
interval (nominal 90 %) holds the true, noise-free future size. Scenarios:

* ``exponential``: 8 scans over 120 days, 7 % noise, λ = 0.012/day, no radiotherapy;
* ``rt-3-after``: 8 scans, radiotherapy at day 60 with 3 scans after it
  (λ, α free; τ, k at their defaults), 5 % noise;
* ``rt-7-after``: 11 scans, 7 after radiotherapy, all five parameters free, 5 % noise.

    .venv/bin/python Testing/benchmarks/bench_forecast.py               # 200/100/60 trials
    .venv/bin/python Testing/benchmarks/bench_forecast.py --trials 50
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from tumorgen.biophysics import growth_ode as g

SCENARIOS = {
    "exponential": dict(days=np.linspace(0.0, 120.0, 8), noise=0.07, rt_start=None, truth=dict(s0=10.0, lam=0.012),
                        horizon=np.array([150.0, 210.0, 300.0]), trials=200, n_boot=200),
    "rt-3-after": dict(days=np.array([0, 15, 30, 45, 60, 80, 105, 130.0]), noise=0.05, rt_start=60.0,
                       truth=dict(s0=10.0, lam=0.015, alpha=0.75), horizon=np.array([160.0, 220.0, 300.0]), trials=100, n_boot=100),
    "rt-7-after": dict(days=np.array([0, 20, 40, 60, 75, 90, 110, 130, 150, 170, 190.0]), noise=0.05, rt_start=60.0,
                       truth=dict(s0=20.0, lam=0.02, alpha=0.8, tau=10.0, k=0.06), horizon=np.array([220.0, 260.0, 320.0]),
                       trials=60, n_boot=60),
}


def run(name: str, spec: dict, trials: int | None) -> dict:
    trials = trials or spec["trials"]
    truth = dict(spec["truth"])
    curve = dict(truth, rt_start=spec["rt_start"]) if spec["rt_start"] is not None else truth
    true_future = g.growth_curve(spec["horizon"], **curve)
    clean = g.growth_curve(spec["days"], **curve)
    hits = np.zeros(spec["horizon"].size)
    r2, lam_err, alpha_err, width = [], [], [], []
    started = time.perf_counter()
    for trial in range(trials):
        rng = np.random.default_rng(10_000 + trial)
        sizes = clean * np.exp(rng.normal(0.0, spec["noise"], clean.size))
        forecast = g.bootstrap_forecast(spec["days"], sizes, spec["rt_start"], spec["horizon"], n_boot=spec["n_boot"], seed=trial)
        hits += (forecast.lower <= true_future) & (true_future <= forecast.upper)
        fit = forecast.fit
        r2.append(fit.r2)
        lam_err.append(abs(fit.lam - truth["lam"]) / truth["lam"])
        if "alpha" in truth:
            alpha_err.append(abs(fit.alpha - truth["alpha"]))
        width.append(float(np.mean(forecast.upper / forecast.lower)))
    return {
        "scenario": name,
        "trials": trials,
        "n_boot": spec["n_boot"],
        "coverage": hits / trials,
        "median_r2": float(np.median(r2)),
        "min_r2": float(np.min(r2)),
        "median_lam_rel_err": float(np.median(lam_err)),
        "median_alpha_abs_err": float(np.median(alpha_err)) if alpha_err else float("nan"),
        "mean_high_over_low": float(np.mean(width)),
        "seconds_per_forecast": (time.perf_counter() - started) / trials,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, help="trials per scenario (default: 200, 100, 60)")
    parser.add_argument("--scenarios", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args()
    print("| scenario | trials | coverage of the 90 % interval (per forecast day) | median R² | min R² | median λ error | median α error | high/low | s per forecast |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.scenarios:
        r = run(name, SCENARIOS[name], args.trials)
        alpha = "–" if np.isnan(r["median_alpha_abs_err"]) else f"{r['median_alpha_abs_err']:.3f}"
        print(f"| {name} | {r['trials']} | {' / '.join(f'{c:.2f}' for c in r['coverage'])} | {r['median_r2']:.3f} | {r['min_r2']:.3f} | "
              f"{100 * r['median_lam_rel_err']:.1f} % | {alpha} | {r['mean_high_over_low']:.2f} | {r['seconds_per_forecast']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
