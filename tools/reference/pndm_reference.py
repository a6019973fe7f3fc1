#!/usr/bin/env python3
"""Reference trajectories of diffusers' PNDMScheduler (and zero-terminal-SNR cases), same format and
model function as diffusers_reference.py (whose stand-in package and run_case this reuses).

Usage (needs torch and numpy):
  python3 tools/reference/pndm_reference.py --diffusers /work/.snapshots/diffusers --commit a3608b5 \
      --out packages/nodes/test/fixtures/schedulers/pndm_trajectories.json
"""
import argparse
import importlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diffusers_reference as ref  # noqa: E402

ref.SCHEDULER_MODULES["pndm"] = ("scheduling_pndm", "PNDMScheduler")
SD = ref.SD
SD15 = {**SD, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1}


def cases() -> list:
    c = []
    add = lambda steps, strength=None, **cfg: c.append({"scheduler": "pndm", "steps": steps, "config": cfg, **({"strength": strength} if strength else {})})
    add(10, **SD15)  # Stable Diffusion 1.5's own config
    add(15, **SD15)
    add(1, **SD15)
    add(2, **SD15)
    add(7, **{**SD15, "prediction_type": "v_prediction", "timestep_spacing": "trailing", "steps_offset": 0})
    add(9, **{**SD15, "timestep_spacing": "linspace", "set_alpha_to_one": True})
    add(20, strength=0.6, **SD15)
    # the pseudo Runge–Kutta warm-up (skip_prk_steps false, diffusers' default)
    add(10, **SD)
    add(4, **SD)
    add(6, **{**SD, "prediction_type": "v_prediction", "set_alpha_to_one": True, "timestep_spacing": "trailing"})
    add(12, **{"timestep_spacing": "leading", "steps_offset": 1})
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", help="diffusers' commit, when --diffusers is not a git checkout")
    ap.add_argument("--seed", type=int, default=20261202)
    args = ap.parse_args()
    rev = ref.build_package(args.diffusers)
    if rev == "unknown" and args.commit:
        rev = args.commit
    torch_utils = importlib.import_module("diffusers.utils.torch_utils")
    rng = np.random.default_rng(args.seed)
    records = []
    for case in cases():
        case.setdefault("strength", None)
        r = ref.run_case(case, rng, torch_utils)
        assert r["noise_draws"] == 0  # PNDM is deterministic: the injected noise arrays are not kept
        r["step_noise"] = []
        records.append(r)
    out = {
        "generator": "tools/reference/pndm_reference.py",
        "diffusers_commit": rev,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "shape": list(ref.SHAPE),
        "model": "m_i = 0.9*tanh(x_i) + 0.05*cos(0.003*t + 0.1*i), float64 on the float32 model input, rounded to float32",
        "cases": records,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {len(records)} cases to {args.out}")


if __name__ == "__main__":
    main()
