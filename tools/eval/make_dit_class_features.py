"""Real-image features for the class-conditional DiT evaluation (tools/eval/systems/dit-class.ts).

The fine-tuned class-conditional DiT (models/shapes-dit-class-ft) has a new label set: the 6 colours,
on the fine-tune domain (light pastel backgrounds, small shapes, any of the 4 shapes). Its "FID-like
distance per fine-tune class set" compares a class-balanced set of generated images (the same number
per colour) with real images of the same classes from the same generator (data.py), through the
evaluation classifier's 64-d features. This script renders FRESH real images (seeds disjoint from
every other data set: 30000+) and stores:

  ref     per colour 500 real images -> the reference statistics (mean, cov of the 3,000 class-balanced
          features), in the JSON
  floor   SETS sets of PER_CLASS images per colour (each set class-balanced, PER_CLASS*6 rows): the FD
          of each against `ref` is the noise floor at the evaluation's sample size
  kid     KID_PER_CLASS images per colour: the KID reference set (independent of `floor`)

Output: tools/eval/dit_class_features.bin (float32 little-endian, row-major) and dit_class_features.json.
Deterministic (numpy PCG64; onnxruntime, one thread).

  /work/.venvs/tools/bin/python tools/eval/make_dit_class_features.py
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

REF_PER_CLASS = 500
SETS = 3
PER_CLASS = 32  # the evaluation's generated images per class and run (tools/eval/systems/dit-class.ts)
KID_PER_CLASS = 64
SEED_BASE = 30000


def colour_images(n, color, seed):
    """n fine-tune-domain images of one colour, any shape (the fine-tune's class = the colour)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, D.SIZE, D.SIZE), np.float32)
    for i in range(n):
        s = D.sample_scene(rng, "ft")
        s["color"] = color
        out[i] = D.render(s)
    return out * 2 - 1


def main():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    model = os.path.join(ROOT, "models", "eval", "classifier.onnx")
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def features(x):
        return np.concatenate([sess.run(["features"], {"image": x[i:i + 256]})[0] for i in range(0, len(x), 256)])

    per = {}
    for ci, c in enumerate(D.COLORS):
        n = REF_PER_CLASS + SETS * PER_CLASS + KID_PER_CLASS
        per[c] = features(colour_images(n, c, SEED_BASE + ci)).astype(np.float64)
    ref = np.concatenate([per[c][:REF_PER_CLASS] for c in D.COLORS])
    floor = []
    for s in range(SETS):
        a = REF_PER_CLASS + s * PER_CLASS
        floor.append(np.concatenate([per[c][a:a + PER_CLASS] for c in D.COLORS]))
    a = REF_PER_CLASS + SETS * PER_CLASS
    kid = np.concatenate([per[c][a:a + KID_PER_CLASS] for c in D.COLORS])

    blocks, chunks, offset = [], [], 0
    for key, rows in [*[(f"floor{s}", f) for s, f in enumerate(floor)], ("kid", kid)]:
        blocks.append({"key": key, "rows": int(rows.shape[0]), "dim": int(rows.shape[1]), "offset": offset})
        chunks.append(rows.astype(np.float32))
        offset += rows.size
    blob = np.concatenate([c.ravel() for c in chunks]).astype("<f4").tobytes()
    out = os.path.join(ROOT, "tools", "eval")
    with open(os.path.join(out, "dit_class_features.bin"), "wb") as f:
        f.write(blob)
    r = lambda a: [float(f"{v:.6g}") for v in np.asarray(a).ravel()]
    meta = {
        "format": "priorgraph-dit-class-features-v1",
        "classes": D.COLORS, "domain": "ft",
        "rows": "class-balanced: per block, PER_CLASS rows of colour 0, then colour 1, ...",
        "per_class": {"ref": REF_PER_CLASS, "floor": PER_CLASS, "kid": KID_PER_CLASS}, "floor_sets": SETS,
        "seeds": {c: SEED_BASE + i for i, c in enumerate(D.COLORS)},
        "dtype": "float32 little-endian, row-major [rows, dim] per block; offset in floats",
        "classifier_sha256": hashlib.sha256(open(model, "rb").read()).hexdigest(),
        "bin_sha256": hashlib.sha256(blob).hexdigest(),
        "ref": {"n": int(ref.shape[0]), "mean": r(ref.mean(0)), "cov": r(np.cov(ref, rowvar=False))},
        "blocks": blocks,
    }
    with open(os.path.join(out, "dit_class_features.json"), "w") as f:
        json.dump(meta, f)
        f.write("\n")
    print(f"{len(blocks)} blocks, {len(blob) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
