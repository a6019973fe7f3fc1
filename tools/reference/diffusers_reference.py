#!/usr/bin/env python3
"""Reference scheduler trajectories from diffusers' own scheduler code.

diffusers itself is not installed here. This script takes a diffusers source checkout (or a bare git
dir, from which it reads HEAD), copies ONLY the six scheduler modules into a temporary package, and
supplies minimal stand-ins written here for the framework modules they import (ConfigMixin /
register_to_config, BaseOutput, logging, deprecate, randn_tensor, huggingface_hub). Nothing from
diffusers is written into this repository: the output is JSON trajectories.

Model: a fixed deterministic function of (sample, t) (see `model_fn`, mirrored in the TS test).
Noise: every randn_tensor call (ancestral / DDPM / LCM / DDIM η>0 noise) pops the next array of a
pre-generated list that is stored in the fixture, so the TS test can replay it exactly.

Usage:
  /usr/bin/python3 tools/reference/diffusers_reference.py --diffusers /path/to/diffusers(.git) \
      --out packages/nodes/test/fixtures/schedulers/diffusers_trajectories.json
Requires torch and numpy.
"""
import argparse
import dataclasses
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

SCHEDULER_MODULES = {
    "ddim": ("scheduling_ddim", "DDIMScheduler"),
    "euler": ("scheduling_euler_discrete", "EulerDiscreteScheduler"),
    "euler_ancestral": ("scheduling_euler_ancestral_discrete", "EulerAncestralDiscreteScheduler"),
    "dpmpp_2m": ("scheduling_dpmsolver_multistep", "DPMSolverMultistepScheduler"),
    "ddpm": ("scheduling_ddpm", "DDPMScheduler"),
    "lcm": ("scheduling_lcm", "LCMScheduler"),
}

# ----------------------------------------------------------------------------- stand-in modules

CONFIG_UTILS = '''
import functools, inspect

class _Config(dict):
    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k)
    def __setattr__(self, k, v):
        self[k] = v

class ConfigMixin:
    config_name = "scheduler_config.json"
    def register_to_config(self, **kwargs):
        if not hasattr(self, "_internal_dict"):
            self._internal_dict = _Config()
        self._internal_dict.update(kwargs)
    @property
    def config(self):
        return self._internal_dict

def register_to_config(init):
    @functools.wraps(init)
    def inner(self, *args, **kwargs):
        sig = inspect.signature(init)
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("self")
        ConfigMixin.register_to_config(self, **params)
        init(self, *args, **kwargs)
    return inner
'''

UTILS = '''
import logging as _logging
class BaseOutput:
    pass
class PushToHubMixin:
    pass
class _Logging:
    def get_logger(self, name):
        return _logging.getLogger(name)
logging = _Logging()
def deprecate(*args, **kwargs):
    return None
def is_scipy_available():
    return False
'''

TORCH_UTILS = '''
import torch
NOISE_QUEUE = []
CALLS = []
def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
    if not NOISE_QUEUE:
        raise RuntimeError("reference driver: no injected noise left")
    arr = NOISE_QUEUE.pop(0)
    CALLS.append(tuple(shape))
    t = torch.from_numpy(arr.reshape(shape))
    return t.to(dtype if dtype is not None else torch.float32)
'''


def build_package(diffusers_src: str) -> str:
    root = tempfile.mkdtemp(prefix="diffusers_ref_")
    pkg = os.path.join(root, "diffusers")
    os.makedirs(os.path.join(pkg, "utils"))
    os.makedirs(os.path.join(pkg, "schedulers"))
    os.makedirs(os.path.join(root, "huggingface_hub"))
    open(os.path.join(pkg, "__init__.py"), "w").close()
    open(os.path.join(pkg, "schedulers", "__init__.py"), "w").close()
    with open(os.path.join(pkg, "configuration_utils.py"), "w") as f:
        f.write(CONFIG_UTILS)
    with open(os.path.join(pkg, "utils", "__init__.py"), "w") as f:
        f.write(UTILS)
    with open(os.path.join(pkg, "utils", "torch_utils.py"), "w") as f:
        f.write(TORCH_UTILS)
    with open(os.path.join(root, "huggingface_hub", "__init__.py"), "w") as f:
        f.write("")
    os.makedirs(os.path.join(root, "huggingface_hub", "utils"))
    with open(os.path.join(root, "huggingface_hub", "utils", "__init__.py"), "w") as f:
        f.write("def validate_hf_hub_args(fn):\n    return fn\n")
    is_git = os.path.exists(os.path.join(diffusers_src, "HEAD")) and not os.path.exists(
        os.path.join(diffusers_src, "src")
    )
    rev = None
    for mod in [m for m, _ in SCHEDULER_MODULES.values()] + ["scheduling_utils"]:
        rel = f"src/diffusers/schedulers/{mod}.py"
        if is_git:
            src = subprocess.check_output(["git", "--git-dir", diffusers_src, "show", f"HEAD:{rel}"]).decode()
            rev = subprocess.check_output(["git", "--git-dir", diffusers_src, "rev-parse", "HEAD"]).decode().strip()
        else:
            with open(os.path.join(diffusers_src, rel)) as f:
                src = f.read()
        with open(os.path.join(pkg, "schedulers", f"{mod}.py"), "w") as f:
            f.write(src)
    sys.path.insert(0, root)
    return rev or "unknown"


# ----------------------------------------------------------------------------- the run

SHAPE = (1, 4, 4, 4)
N_ELEM = int(np.prod(SHAPE))


def model_fn(sample: np.ndarray, t: float) -> np.ndarray:
    """Deterministic stand-in for a network: float64 math on the float32 sample, rounded to float32.
    m_i = 0.9·tanh(x_i) + 0.05·cos(0.003·t + 0.1·i)   (i = flat element index)"""
    x = sample.astype(np.float64).reshape(-1)
    i = np.arange(x.size, dtype=np.float64)
    out = 0.9 * np.tanh(x) + 0.05 * np.cos(0.003 * float(t) + 0.1 * i)
    return out.astype(np.float32)


def f32list(a) -> list:
    """float32 values as the shortest decimal that round-trips through float32 (9 significant digits)"""
    return [float(f"{v:.9g}") for v in np.asarray(a, dtype=np.float32).reshape(-1).tolist()]


def run_case(case: dict, rng: np.random.Generator, torch_utils) -> dict:
    name = case["scheduler"]
    mod_name, cls_name = SCHEDULER_MODULES[name]
    mod = importlib.import_module(f"diffusers.schedulers.{mod_name}")
    cls = getattr(mod, cls_name)
    cfg = dict(case.get("config", {}))
    sched = cls(**cfg)
    steps = case["steps"]
    strength = case.get("strength")
    step_kwargs = {}
    eta = case.get("eta", 0.0)
    if name == "ddim" and eta:
        step_kwargs["eta"] = eta

    if name == "lcm" and strength is not None:
        sched.set_timesteps(steps, strength=strength)
        timesteps = sched.timesteps
    else:
        sched.set_timesteps(steps)
        timesteps = sched.timesteps
        if strength is not None:
            # diffusers' img2img get_timesteps (StableDiffusionImg2ImgPipeline)
            init_timestep = min(int(steps * strength), steps)
            t_start = max(steps - init_timestep, 0)
            timesteps = sched.timesteps[t_start * sched.order :]
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(t_start * sched.order)

    # noise budget: one array per possible randn call, plus the initial latent noise
    noises = [rng.standard_normal(N_ELEM).astype(np.float32) for _ in range(len(timesteps) + 1)]
    init_noise = noises[0]
    torch_utils.NOISE_QUEUE[:] = [n.copy() for n in noises[1:]]
    torch_utils.CALLS.clear()

    record = {
        "scheduler": name,
        "config": cfg,
        "steps": steps,
        "eta": eta,
        "strength": strength,
        "timesteps": [float(t) for t in timesteps.tolist()],
        "all_timesteps": [float(t) for t in sched.timesteps.tolist()],
        "init_noise_sigma": float(sched.init_noise_sigma),
        "sigmas": f32list(sched.sigmas) if hasattr(sched, "sigmas") and name in ("euler", "euler_ancestral", "dpmpp_2m") else None,
        "alphas_cumprod": f32list(sched.alphas_cumprod),
        "init_noise": f32list(init_noise),
        "step_noise": [f32list(n) for n in noises[1:]],
    }

    if strength is not None:
        x0 = (np.linspace(-1, 1, N_ELEM) * np.cos(np.arange(N_ELEM))).astype(np.float32)
        latent_t = timesteps[:1]
        sample = sched.add_noise(
            torch.from_numpy(x0.reshape(SHAPE)), torch.from_numpy(init_noise.reshape(SHAPE)), latent_t
        )
        record["img2img_x0"] = f32list(x0)
        record["img2img_latent"] = f32list(sample)
    else:
        sample = torch.from_numpy(init_noise.reshape(SHAPE)) * sched.init_noise_sigma

    trajectory = []
    for t in timesteps:
        inp = sched.scale_model_input(sample, t)
        mo = torch.from_numpy(model_fn(inp.numpy(), float(t)).reshape(SHAPE))
        out = sched.step(mo, t, sample, **step_kwargs)
        prev = out.prev_sample
        trajectory.append(
            {
                "t": float(t),
                "sample": f32list(sample),
                "model_input": f32list(inp),
                "model_output": f32list(mo),
                "prev_sample": f32list(prev),
            }
        )
        sample = prev
    record["noise_draws"] = len(torch_utils.CALLS)
    record["trajectory"] = trajectory
    return record


SD = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def cases() -> list:
    c = []
    add = lambda s, steps, **kw: c.append({"scheduler": s, "steps": steps, **kw})
    # DDIM
    add("ddim", 10, config={**SD, "steps_offset": 1, "clip_sample": False, "set_alpha_to_one": False})
    add("ddim", 25, config={**SD, "timestep_spacing": "trailing", "clip_sample": False})
    add("ddim", 7, config={"timestep_spacing": "linspace", "prediction_type": "v_prediction", "clip_sample": True})
    add("ddim", 10, config={"prediction_type": "sample"})
    add("ddim", 12, config={**SD, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "clip_sample": False})
    add("ddim", 10, config={"beta_schedule": "squaredcos_cap_v2", "clip_sample": False}, eta=0.5)
    add("ddim", 20, config={**SD, "steps_offset": 1, "clip_sample": False}, strength=0.6)
    # Euler
    add("euler", 10, config={**SD})
    add("euler", 25, config={**SD, "timestep_spacing": "leading", "steps_offset": 1})
    add("euler", 9, config={**SD, "timestep_spacing": "trailing", "prediction_type": "v_prediction"})
    add("euler", 15, config={**SD, "use_karras_sigmas": True})
    add("euler", 8, config={"use_karras_sigmas": True, "prediction_type": "sample", "final_sigmas_type": "sigma_min"})
    add("euler", 20, config={**SD, "use_karras_sigmas": True, "timestep_spacing": "leading", "steps_offset": 1})
    add("euler", 20, config={**SD}, strength=0.75)
    # Euler ancestral
    add("euler_ancestral", 10, config={**SD})
    add("euler_ancestral", 12, config={**SD, "timestep_spacing": "leading", "steps_offset": 1, "prediction_type": "v_prediction"})
    add("euler_ancestral", 6, config={"timestep_spacing": "trailing"})
    add("euler_ancestral", 20, config={**SD}, strength=0.5)
    # DPM-Solver++ 2M
    add("dpmpp_2m", 10, config={**SD})
    add("dpmpp_2m", 20, config={**SD, "use_karras_sigmas": True})
    add("dpmpp_2m", 25, config={**SD, "timestep_spacing": "leading", "steps_offset": 1})
    add("dpmpp_2m", 8, config={**SD, "timestep_spacing": "trailing", "prediction_type": "v_prediction", "use_karras_sigmas": True})
    add("dpmpp_2m", 16, config={"prediction_type": "sample", "final_sigmas_type": "sigma_min", "solver_type": "heun"})
    add("dpmpp_2m", 12, config={**SD, "final_sigmas_type": "sigma_min", "lower_order_final": True})
    add("dpmpp_2m", 18, config={**SD, "final_sigmas_type": "sigma_min", "euler_at_final": True, "use_karras_sigmas": True})
    add("dpmpp_2m", 20, config={**SD, "use_karras_sigmas": True}, strength=0.7)
    add("dpmpp_2m", 15, config={"beta_schedule": "squaredcos_cap_v2", "use_karras_sigmas": True})
    # DDPM
    add("ddpm", 10, config={})
    add("ddpm", 25, config={**SD, "timestep_spacing": "trailing", "clip_sample": False, "variance_type": "fixed_large"})
    add("ddpm", 9, config={"timestep_spacing": "linspace", "variance_type": "fixed_small_log", "prediction_type": "v_prediction"})
    add("ddpm", 20, config={**SD, "steps_offset": 1, "clip_sample": False}, strength=0.5)
    # LCM
    add("lcm", 4, config={})
    add("lcm", 8, config={"prediction_type": "v_prediction", "set_alpha_to_one": False})
    add("lcm", 1, config={})
    add("lcm", 6, config={"original_inference_steps": 100, "timestep_scaling": 5.0, "clip_sample": True})
    add("lcm", 4, config={}, strength=0.6)
    # zero terminal SNR (Lin et al. 2023) with the σ-based schedulers; trained betas
    add("euler", 10, config={**SD, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "prediction_type": "v_prediction"})
    add("dpmpp_2m", 10, config={**SD, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "prediction_type": "v_prediction"})
    add("euler_ancestral", 8, config={**SD, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "prediction_type": "v_prediction"})
    trained = [round(0.0002 + 0.015 * (i / 999) ** 1.5, 8) for i in range(1000)]
    add("ddim", 10, config={"trained_betas": trained, "clip_sample": False, "steps_offset": 1})
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True, help="diffusers source checkout or bare git dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    rev = build_package(args.diffusers)
    torch_utils = importlib.import_module("diffusers.utils.torch_utils")
    rng = np.random.default_rng(args.seed)
    records = [run_case(c, rng, torch_utils) for c in cases()]
    out = {
        "generator": "tools/reference/diffusers_reference.py",
        "diffusers_commit": rev,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "shape": list(SHAPE),
        "model": "m_i = 0.9*tanh(x_i) + 0.05*cos(0.003*t + 0.1*i), float64 on the float32 model input, rounded to float32",
        "cases": records,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {len(records)} cases to {args.out}")


if __name__ == "__main__":
    main()
