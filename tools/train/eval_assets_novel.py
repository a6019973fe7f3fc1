"""Held-out evaluation inputs for the novel-views and image-variation members (new files only):
  models/eval/novel_views_samples.json — render3d.eval_set: per object one input view (elevation
    0–30°, random azimuth, radius 3) and the 5 TRUE target renders at azimuth +60°, …, +300°;
  models/eval/image_variation_samples.json — fine-tune-domain images: `inputs` (varied by the model)
    and `reals` (an independent real set of the same size: the FD noise floor).
Seeds and sizes are fixed here, before any result is seen.

    /work/.venvs/tools/bin/python tools/train/eval_assets_novel.py
"""
import base64
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import members as M  # noqa: E402
import render3d as R  # noqa: E402

N_OBJ, N_VAR, SEED = 24, 64, 0
FMT = "uint8 CHW [3,32,32] per image, base64; image = byte/127.5 - 1 gives [-1,1]"


def enc(x):
    return base64.b64encode(np.round((x + 1) * 127.5).clip(0, 255).astype(np.uint8).tobytes()).decode()


def main():
    inp, tgt, sp, tp = R.eval_set(N_OBJ, SEED * 1000 + 951)
    M.write_json(os.path.join(M.MODELS, "eval", "novel_views_samples.json"), {
        "format": FMT, "protocol": "input view at elevation U(0,30) deg, azimuth U(0,360), radius 3; targets at the "
        "same elevation and radius, azimuth +60, +120, +180, +240, +300 deg (relative pose = [0, sin, cos, 0])",
        "target_azimuths": [60, 120, 180, 240, 300],
        "samples": [{"input_pose": [round(float(v), 4) for v in sp[i]], "input": enc(inp[i]),
                     "targets": [enc(tgt[i, k]) for k in range(5)]} for i in range(N_OBJ)]})
    x, _, _, caps = D.make_dataset(2 * N_VAR, "ft", SEED * 1000 + 952)
    M.write_json(os.path.join(M.MODELS, "eval", "image_variation_samples.json"), {
        "format": FMT, "domain": "ft", "inputs": [{"caption": caps[i], "image": enc(x[i])} for i in range(N_VAR)],
        "reals": [enc(x[i]) for i in range(N_VAR, 2 * N_VAR)]})


if __name__ == "__main__":
    main()
