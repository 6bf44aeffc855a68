"""The settings of every task, defined once (see :mod:`tumorgen.schema` for how each layer uses them).

* :data:`GROWTH` — the Fisher–Kolmogorov model, when to stop, and the BraTS label thresholds (task ``grow``).
* :data:`INPAINTING` — healthy or tumor inpainting with RePaint (task ``inpaint``).
* :data:`POSTOP` — post-operative prediction for a resection box, guided by retrieved cases (task ``postop``).
* :data:`FOLLOWUP` — synthetic follow-ups: the forecast volume at a day, the regrown tumor, its image (task ``followup``).
* :data:`SYNTHESIS` — label map → four MR contrasts in a healthy scan (task ``synthesize``).
* :data:`EDITING` — hand edits of a concentration field and the resection box's margin (the panels).
* :data:`RUN` — where the backend runs, and how long its run folders stay on disk.

Ranges are what the method can use, not what a reader might try: a diffusivity
of zero grows nothing, zero denoising steps generate nothing, a negative
sigma is meaningless. Pure Python: the Slicer GUI process imports it.
"""

from __future__ import annotations

from tumorgen.device import DEVICES
from tumorgen.schema import Schema, Setting

GROWTH = Schema("growth", (
    Setting("d_white", float, 1.0, "diffusivity of tumor cells in white matter", label="D white", unit="mm²/day",
            minimum=0.01, maximum=10.0, step=0.1, decimals=2),
    Setting("rho", float, 0.1, "proliferation rate", label="ρ", unit="/day", minimum=0.001, maximum=1.0, step=0.01, decimals=3),
    Setting("gm_ratio", float, 0.1, "grey-matter diffusivity as a fraction of white matter's", label="D grey / D white",
            minimum=0.0, maximum=1.0, step=0.05, decimals=2),
    Setting("target_volume_cm3", float, 12.0, "grow until the tumor (c ≥ threshold) has this volume", label="Target volume",
            unit="cm³", minimum=0.1, maximum=500.0, step=1.0, decimals=1, flag="--volume"),
    Setting("days", float, None, "grow for this many days instead of up to a volume", label="Days", unit="days",
            minimum=0.1, maximum=3650.0, optional=True, step=1.0, decimals=1),
    Setting("threshold", float, 0.25, "concentration that counts as tumor for the target volume", minimum=0.01, maximum=1.0,
            step=0.05, decimals=2),
    Setting("edema_threshold", float, 0.25, "concentration at which oedema/infiltration (label 2) starts", minimum=0.01,
            maximum=1.0, flag="--edema", step=0.05, decimals=2),
    Setting("core_threshold", float, 0.6, "concentration at which the enhancing core (label 3) starts", minimum=0.01,
            maximum=1.0, flag="--core", step=0.05, decimals=2),
    Setting("necrosis_threshold", float, 0.95, "concentration of the necrotic centre (label 1), or none", minimum=0.01,
            maximum=1.0, optional=True, flag="--necrosis", step=0.05, decimals=2),
    Setting("solver", str, "auto", "numpy (CPU), torch (CUDA when present), or auto: torch on CUDA, numpy otherwise",
            choices=("auto", "numpy", "torch")),
))

INPAINTING = Schema("inpainting", (
    Setting("mode", str, "healthy", "healthy: turn the region into healthy tissue; tumor: grow the concentration's tumor into it",
            choices=("healthy", "tumor")),
    Setting("scheduler", str, "ddim", "ddim (deterministic per seed, few steps) or ddpm (ancestral; the paper: 1000 steps)",
            choices=("ddim", "ddpm")),
    Setting("steps", int, 25, "denoising steps (the paper: ddpm 1000)", label="Steps", minimum=1, maximum=1000),
    Setting("jump", int, 5, "RePaint jump length in steps (the paper: 10); at most the steps", label="Jump", minimum=1, maximum=100),
    Setting("resample", int, 5, "RePaint resample count, 1 for none (the paper: 10)", label="Resample", minimum=1, maximum=20),
    Setting("method", str, "diffusion", "healthy mode: diffusion (the latent diffusion model with RePaint) or unet (the "
            "learned deterministic fill alone: a few seconds, smooth where the tissue cannot be known)", label="Method",
            choices=("diffusion", "unet")),
    Setting("prior", str, "auto", "what healthy inpainting starts from: noise (pure noise, the paper's RePaint), harmonic "
            "(the harmonic fill of the mask from its surroundings, noised to --strength: the network adds the detail), unet "
            "(the learned fill, noised likewise), or auto: harmonic when the tissue maps come from registering the template "
            "(uncertain inside the mask), noise when they are given. Tumor mode always starts from noise",
            choices=("auto", "noise", "harmonic", "unet")),
    Setting("confidence_mm", float, 0.0, "healthy mode with registered tissue maps: how far into the mask the tissue "
            "condition is trusted; deeper, the generated tissue is blended toward the learned smooth fill as exp(-depth / "
            "this). 0 (the default: every reach scored lower on the fidelity benchmark) turns the blend off",
            label="Condition reach", unit="mm", minimum=0.0, maximum=100.0, step=1.0,
            decimals=1, flag="--confidence"),
    Setting("fallback", str, "auto", "auto: when the self-check scores the result below the classical fill on known tissue "
            "of the scan, the result is the fill that scored best there instead (said in the result); off: never",
            label="Fallback", choices=("auto", "off")),
    Setting("strength", float, 0.2, "with the harmonic prior, how far up the chain the fill is noised: 1 is pure noise, "
            "lower keeps more of the fill", label="Strength", minimum=0.01, maximum=1.0, step=0.05, decimals=2),
    Setting("samples", int, 1, "samples with seeds seed, seed+1, …: the result is their mean, their spread the uncertainty",
            label="Samples", minimum=1, maximum=16),
    Setting("seed", int, 0, "random seed of the first sample", label="Seed", minimum=0, maximum=2**31 - 1),
    Setting("histogram", bool, False, "match the generated tissue's histogram to the surrounding tissue (off by default: it cost 2 dB on "
            "scans unlike the training data)", label="Histogram matching"),
    Setting("poisson", bool, True, "blend the generated tissue into its surroundings in the gradient domain",
            label="Poisson blending"),
    Setting("self_check", bool, True, "healthy mode: also inpaint a region of the mask's shape in known tissue of the scan and "
            "score it against a classical fill, so a doubtful result says so (about doubles the time)", label="Self-check"),
    Setting("margin_mm", float, 8.0, "context around the mask", label="Context", unit="mm", minimum=0.0, maximum=64.0,
            flag="--margin", step=1.0, decimals=1),
    Setting("weights", str, None, "model weights folder (default: the bundled tiny models)", optional=True),
))

POSTOP = Schema("postop", (
    Setting("k", int, 1, "how many similar cases to retrieve from the library and paste into the composite prompt",
            label="Cases (k)", minimum=1, maximum=16),
    Setting("retrieval", str, "tumor", label="Retrieval", help="how cases are chosen: tumor (IoU of tumor masks in template space, paper 004), image "
            "(cosine similarity of autoencoder latents) or random", choices=("tumor", "image", "random")),
    Setting("cfg", float, 3.0, "classifier-free guidance scale: 1 is the conditional model alone, larger follows the prompt "
            "harder (two network passes a step; 3 scored best on held-out folded pairs)", label="Guidance (CFG)", minimum=0.0, maximum=10.0, step=0.5, decimals=1),
    Setting("samples", int, 4, "samples with seeds seed, seed+1, …: the prediction is their mean, their spread the uncertainty",
            label="Samples", minimum=1, maximum=16),
    Setting("seed", int, 0, "random seed of the first sample", label="Seed", minimum=0, maximum=2**31 - 1),
    Setting("steps", int, 25, "DDIM denoising steps", label="Steps", minimum=1, maximum=1000),
    Setting("strength", float, 0.8, "how far up the chain the composite prompt is noised before denoising: 1 starts from "
            "pure noise, lower keeps more of the composite", label="Strength", minimum=0.05, maximum=1.0, step=0.05, decimals=2),
    Setting("margin_mm", float, 5.0, "the box grown by this much is generated (tissue shifts near the cavity); everything "
            "beyond it is the pre-operative image unchanged", label="Margin", unit="mm", minimum=0.0, maximum=30.0,
            flag="--margin", step=1.0, decimals=1),
    Setting("composite", bool, True, "condition on the composite prompt (off: the ablation without it)", label="Composite prompt"),
    Setting("tumor_prompt", bool, True, "condition on the tumor's segmentation or concentration (off: the ablation without it)",
            label="Tumor prompt"),
    Setting("library", str, None, "case library (.npz from tumorgen library build; default: the bundled simulated one)",
            optional=True),
    Setting("weights", str, None, "model weights folder (default: the bundled tiny models)", optional=True),
))

FOLLOWUP = Schema("followup", (
    Setting("day", float, None, "the day to show (on the series' time axis); default 90 days after the latest scan",
            label="Day", unit="day", minimum=0.0, maximum=3650.0, optional=True, step=5.0, decimals=0),
    Setting("rt_start", float, None, "radiotherapy start day (default: the series' rt_start column, else no radiotherapy)",
            label="RT start", unit="day", minimum=0.0, maximum=3650.0, optional=True, step=1.0, decimals=0),
    Setting("growth_law", str, "radial", label="Growth law", help="the untreated growth curve fitted to the series: radial (the "
            "radius grows linearly, as a Fisher–Kolmogorov front and glioma diameters do; the median forecast error on held-out "
            "simulated series on the documentation's Synthetic follow-ups results page) or exponential (papers 001/002)", choices=("radial", "exponential")),
    Setting("route", str, "fk", label="Route", help="fk: regrow the tumor's concentration with Fisher–Kolmogorov to the "
            "forecast volume and draw it into the latest scan (tumor inpainting); guided: sample from the latest scan's "
            "partly noised latent, steered by the size regressor's gradient towards the forecast volume", choices=("fk", "guided")),
    Setting("samples", int, 4, "image samples with seeds seed, seed+1, …: the follow-up is their mean, their spread the uncertainty",
            label="Samples", minimum=1, maximum=16),
    Setting("seed", int, 0, "random seed of the first sample and of the forecast's bootstrap", label="Seed", minimum=0, maximum=2**31 - 1),
    Setting("draws", int, 16, "forecast volumes drawn from the bootstrap distribution at the day: the tumor probability map is "
            "the fraction of draws in which a voxel is tumor", label="Forecast draws", minimum=2, maximum=64),
    Setting("n_boot", int, 200, "bootstrap refits of the growth curve", label="Bootstrap refits", minimum=10, maximum=5000),
    Setting("interval", float, 0.9, "coverage of the forecast interval (low, high)", label="Interval", minimum=0.5, maximum=0.99,
            step=0.05, decimals=2),
    Setting("recalibrate", bool, True, "correct the forecast's bias and spread and blur the probability map by the model error "
            "learned on simulated tuning series (tumorgen.followup.calibration; off: the bootstrap's distribution as it is and "
            "the map unblurred)", label="Correct the forecast"),
    Setting("d_white", float, 1.0, "diffusivity of the regrown field in white matter (with ρ it sets the tumor's shape, the "
            "forecast sets its size)", label="D white", unit="mm²/day", minimum=0.01, maximum=10.0, step=0.1, decimals=2),
    Setting("rho", float, 0.1, "proliferation rate of the regrown field", label="ρ", unit="/day", minimum=0.001, maximum=1.0,
            step=0.01, decimals=3),
    Setting("steps", int, 10, "DDIM denoising steps of the biophysical route's image (10 scored as well as 25 on tuning series "
            "in 40 % of the time; the documentation's Synthetic follow-ups results)", label="Steps", minimum=1, maximum=1000),
    Setting("guided_steps", int, 25, "guided route: DDIM steps of the whole chain, of which the strength's share runs (its "
            "guidance was tuned at 25)", label="Guided steps", minimum=1, maximum=1000),
    Setting("guidance", float, 50.0, "guided route: scale of the size regressor's gradient (50 brought the drawn tumor, read "
            "by a separate network, within 20 % of the request in 11 of 12 tuning series; 100 and 150 did worse)",
            label="Guidance", minimum=0.0,
            maximum=1000.0, step=5.0, decimals=1),
    Setting("strength", float, 0.6, "guided route: how far up the chain the latest scan, its growth painted as its tumor's rim, "
            "is noised (1: pure noise; 0.6 drew closer to the request than 0.5 and 0.7 on tuning series)",
            label="Strength", minimum=0.05, maximum=1.0, step=0.05, decimals=2),
    Setting("margin_mm", float, 4.0, "the tumor now and at the day, grown by this much, is generated; everything beyond is the "
            "latest scan unchanged (the guided route keeps a growing tumor's core unchanged as well)", label="Margin", unit="mm",
            minimum=0.0, maximum=30.0, flag="--margin", step=1.0, decimals=1),
    Setting("library", str, None, "with a resection: case library of the post-operative prediction (default: the bundled one)",
            optional=True),
    Setting("weights", str, None, "model weights folder (default: the bundled tiny models)", optional=True),
))
SYNTHESIS = Schema("synthesis", (
    Setting("steps", int, 20, "DDIM denoising steps of the generator (the four contrasts are sampled together)", label="Steps",
            minimum=1, maximum=1000),
    Setting("seed", int, 0, "random seed of the initial noise, shared by the four contrasts", label="Seed", minimum=0, maximum=2**31 - 1),
    Setting("samples", int, 2, "draws with seeds seed, seed+1, …, averaged into the result (1: a single draw, with its texture; "
            "more: smoother and closer to the truth, see the documentation's Label-map synthesis results)", label="Samples", minimum=1, maximum=16),
    Setting("blend_mm", float, 6.0, "t1n: the generated image replaces the scan over the whole tumor grown by this margin "
            "(ramping over its outer half); beyond it the t1n is the scan unchanged", label="Blend margin", unit="mm",
            minimum=0.0, maximum=30.0, flag="--blend", step=1.0, decimals=1),
    Setting("weights", str, None, "model weights folder (default: the bundled tiny models)", optional=True),
))
EDITING = Schema("editing", (
    Setting("blob_sigma_mm", float, 3.0, "width (σ) of an added or erased Gaussian blob", label="Blob σ", unit="mm",
            minimum=0.5, maximum=30.0, step=0.5, decimals=1),
    Setting("blob_amplitude", float, 0.5, "peak concentration an added blob adds (or an erased one removes)",
            label="Blob amplitude", minimum=0.01, maximum=1.0, step=0.05, decimals=2),
    Setting("scale_factor", float, 0.5, "factor the concentration inside the box is multiplied by", label="Scale factor",
            minimum=0.0, maximum=5.0, step=0.1, decimals=2),
    Setting("smooth_sigma_mm", float, 1.0, "width (σ) of the Gaussian smoothing", label="Smooth σ", unit="mm",
            minimum=0.1, maximum=20.0, step=0.5, decimals=1),
    Setting("box_margin_mm", float, 5.0, "margin around the tumor when the box is fitted to it", label="Margin", unit="mm",
            minimum=0.0, maximum=50.0, step=1.0, decimals=1),
))

RUN = Schema("run", (
    Setting("device", str, "auto", "where the backend computes: CUDA when PyTorch sees a GPU, else the CPU", choices=DEVICES),
    Setting("keep_runs", int, 10, "how many run folders to keep on disk (the newest); 0 keeps none once the results are loaded",
            label="Run folders kept", minimum=0, maximum=1000, step=1),
    Setting("clean_runs_on_close", bool, True, "delete the run folders when the scene is closed", label="Clean up on close"),
))

#: Every schema by name.
SCHEMAS = {s.name: s for s in (GROWTH, INPAINTING, POSTOP, FOLLOWUP, SYNTHESIS, EDITING, RUN)}
