#!/usr/bin/env python3
"""diffusers' timestep grids for every step count, as compact hashes (a test fixture).

Runs diffusers' own scheduler modules (copied into a temporary package by diffusers_reference.py's
build_package, with its stand-ins for the framework imports) and records, for each scheduler and
config below and every step count n = 1..up_to (num_train_timesteps; LCM: original_inference_steps), then the
counts in "over" (above num_train_timesteps), the model-call timesteps after
set_timesteps(n). Each grid is written as 4 base64 characters (the first 24 bits of sha256 over its
values joined by ",": integers as integers, other values as the shortest repr of the float64 of the
float32 value), concatenated in count order, so the whole fixture is small; a class that refuses n
records "!!!!". Grids whose length is not n are also listed with their length (not for PNDM, whose
model-call list is always longer than n).

Usage (needs torch and numpy):
  python3 tools/reference/timestep_grids.py --diffusers /work/.snapshots/diffusers --commit a3608b5 \
      --out packages/nodes/test/fixtures/schedulers/timestep_grids.json
"""
import argparse
import base64
import hashlib
import importlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diffusers_reference as ref  # noqa: E402

ref.SCHEDULER_MODULES["pndm"] = ("scheduling_pndm", "PNDMScheduler")

N = 1000
OVER = [1001, 1500, 2000]
SPACINGS = [("leading", 0), ("leading", 1), ("linspace", 0), ("trailing", 0)]


def configs():
    out = []
    for name in ["ddim", "ddpm", "euler", "euler_ancestral", "dpmpp_2m"]:
        for spacing, offset in SPACINGS:
            out.append((name, {"timestep_spacing": spacing, "steps_offset": offset}))
    for skip in [True, False]:
        for spacing, offset in SPACINGS:
            out.append(("pndm", {"timestep_spacing": spacing, "steps_offset": offset, "skip_prk_steps": skip}))
    # DPM-Solver on the cosine schedule with λ clipping (as DeepFloyd IF ships it)
    out.append(("dpmpp_2m", {"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1}))
    out.append(("dpmpp_2m", {"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1, "timestep_spacing": "trailing"}))
    out.append(("lcm", {}))
    out.append(("lcm", {"original_inference_steps": 200}))
    return out


def fmt(v) -> str:
    f = float(np.float32(v))
    return str(int(f)) if f.is_integer() else repr(f)


def grid_hash(ts) -> str:
    return base64.b64encode(hashlib.sha256(",".join(fmt(v) for v in ts).encode()).digest()[:3]).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", help="diffusers' commit, when --diffusers is not a git checkout")
    args = ap.parse_args()
    rev = ref.build_package(args.diffusers)
    if rev == "unknown" and args.commit:
        rev = args.commit
    records = []
    for name, cfg in configs():
        mod, cls = ref.SCHEDULER_MODULES[name]
        klass = getattr(importlib.import_module(f"diffusers.schedulers.{mod}"), cls)
        extra = {"algorithm_type": "dpmsolver++", "solver_order": 2} if name == "dpmpp_2m" else {}
        top = cfg.get("original_inference_steps", 50) if name == "lcm" else N
        counts = list(range(1, top + 1)) + ([] if name == "lcm" else OVER)
        hashes, lengths, errors = [], {}, []
        for n in counts:
            s = klass(num_train_timesteps=N, **extra, **cfg)
            try:
                s.set_timesteps(n)
            except ValueError:
                hashes.append("!!!!")
                errors.append(n)
                continue
            ts = s.timesteps.numpy()
            hashes.append(grid_hash(ts))
            if len(ts) != n and name != "pndm":
                lengths[str(n)] = len(ts)
        records.append({"scheduler": name, "config": cfg, "up_to": top, "over": [] if name == "lcm" else OVER, "hashes": "".join(hashes), "lengths": lengths})
        print(name, cfg, "lengths≠n:", len(lengths), "errors:", len(errors), file=sys.stderr)
    out = {
        "generator": "tools/reference/timestep_grids.py",
        "diffusers_commit": rev,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "num_train_timesteps": N,
        "hash": "per count, base64 of the first 3 bytes of sha256 of the timesteps joined by ',' (integers as integers, else the shortest repr of the float32 value); '!!!!' = the class refuses the count",
        "grids": records,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
