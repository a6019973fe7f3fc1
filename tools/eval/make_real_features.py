"""Real-image features for the evaluation's noise floor and KID (tools/eval/run.ts).

The evaluation compares 64 generated images per prompt with statistics of 500 real images. Part of
every such Fréchet distance is estimation noise, not a difference between the sets. To show how much,
this script renders FRESH real images of the same prompts and domains (seeds disjoint from those
behind models/eval/reference_stats.json) and stores their features from the evaluation classifier:

  per fine-tune prompt: 3 sets of 64 real images (set 0 measures the floor, sets 1-2 are the
                        reference for KID)
  per domain (base, ft): 2 sets of 512 real images (same roles, for the unconditional table)

Output: tools/eval/real_features.bin (float32, little-endian, row-major) and real_features.json
(where each block starts, its shape, the seeds). Deterministic: numpy's PCG64 for the images and
onnxruntime with one thread for the features.

  /work/.venvs/tools/bin/python tools/eval/make_real_features.py     # ~1 minute on 2 cores
Needs numpy and onnxruntime only.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnxruntime as ort

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import data as D  # noqa: E402

SETS_PER_PROMPT = 3
PER_SET = 64
DOMAIN_SETS = 2
PER_DOMAIN_SET = 512
SEED_BASE = 20000  # reference_stats.json used seeds 700..999 and 901..904 (times 1000 for seed 0 stay below)


def main():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    model = os.path.join(ROOT, "models", "eval", "classifier.onnx")
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def features(x):
        return np.concatenate([sess.run(["features"], {"image": x[i:i + 256]})[0] for i in range(0, len(x), 256)])

    ref = json.load(open(os.path.join(ROOT, "models", "eval", "reference_stats.json")))
    blocks = []
    chunks = []
    offset = 0

    def add(kind, key, sets, per, seed, x):
        nonlocal offset
        f = features(x).astype(np.float32)
        blocks.append({"kind": kind, "key": key, "sets": sets, "per_set": per, "dim": int(f.shape[1]),
                       "offset": offset, "seed": seed})
        chunks.append(f)
        offset += f.size

    for p in ref["prompts"]:
        if p["domain"] != "ft":
            continue
        si, ci = D.SHAPES.index(p["shape"]), D.COLORS.index(p["color"])
        seed = SEED_BASE + si * len(D.COLORS) + ci
        x = D.make_prompt_images(SETS_PER_PROMPT * PER_SET, p["shape"], p["color"], "ft", seed, bg_word="light")
        add("prompt", p["caption"], SETS_PER_PROMPT, PER_SET, seed, x)
    for dom, k in [("base", 1), ("ft", 2)]:
        seed = SEED_BASE + 900 + k
        x = D.make_dataset(DOMAIN_SETS * PER_DOMAIN_SET, dom, seed)[0]
        add("domain", dom, DOMAIN_SETS, PER_DOMAIN_SET, seed, x)

    blob = np.concatenate([c.ravel() for c in chunks]).astype("<f4").tobytes()
    out = os.path.join(ROOT, "tools", "eval")
    with open(os.path.join(out, "real_features.bin"), "wb") as f:
        f.write(blob)
    meta = {
        "format": "priorgraph-real-features-v1",
        "dtype": "float32 little-endian, row-major [sets*per_set, dim] per block; offset in floats",
        "classifier_sha256": hashlib.sha256(open(model, "rb").read()).hexdigest(),
        "bin_sha256": hashlib.sha256(blob).hexdigest(),
        "blocks": blocks,
    }
    with open(os.path.join(out, "real_features.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{len(blocks)} blocks, {len(blob) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
