"""Shared plumbing for the family members added after the first export (DiT class-conditional,
novel views, image variations, video). Each member has its own training script next to this file
(`<member>.py`), trains from the shipped ONNX weights where it fine-tunes (from_onnx.py), exports
only its own networks into models/<folder>/ (the VAE, text encoder and tokenizer stay shared in
shapes-t2i), and records itself here in models/manifest.json.

    python tools/train/<member>.py --seed 0        # the venv python (torch 2.x); see README.md
"""
import hashlib
import json
import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch

import export as E

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODELS = os.path.join(ROOT, "models")
CKPT = os.environ.get("PRIORGRAPH_CKPT", "/tmp/priorgraph_ckpt")
CHECK_DIR = os.path.join(CKPT, "onnx_check")


def export(module, args, path, in_names, out_names, tag, dynamic_axes=None):
    """torch.onnx.export (opset 17, dynamic batch) plus a replay fixture for check_onnx.mjs.
    dynamic_axes (torch.onnx's form) replaces the batch-only default, e.g. to add a frame axis."""
    os.makedirs(CHECK_DIR, exist_ok=True)
    kw = {} if dynamic_axes is None else {"dynamic_axes": dynamic_axes}
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        kw["dynamo"] = False  # the TorchScript exporter, as the first export used
    orig = torch.onnx.export

    def patched(*a, **k):
        return orig(*a, **{**k, **kw})

    torch.onnx.export = patched
    try:
        E._export(module, args, path, in_names, out_names, CHECK_DIR, tag)
    finally:
        torch.onnx.export = orig


def encode_images(imgs, batch=256):
    """[n,3,32,32] float in [-1,1] -> scaled latents [n,4,8,8] through the SHIPPED VAE encoder (ONNX),
    so new members live in exactly the latent space of models/."""
    p = os.path.join(MODELS, "shapes-t2i", "vae_encoder", "model.onnx")
    cfg = json.load(open(os.path.join(MODELS, "shapes-t2i", "vae_encoder", "config.json")))
    sf = cfg.get("scaling_factor")
    s = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    x = imgs.numpy() if torch.is_tensor(imgs) else imgs
    out = [s.run(None, {name: x[i:i + batch].astype(np.float32)})[0] for i in range(0, len(x), batch)]
    lat = np.concatenate(out)[:, :4]  # the mean when the encoder returns mean ++ logvar
    return torch.from_numpy(lat * sf), sf


def write_json(path, obj):
    E._json(path, obj)


def record(member, training, stages, command):
    """Add (or replace) this member's entry in models/manifest.json and rehash every file."""
    path = os.path.join(MODELS, "manifest.json")
    m = json.load(open(path))
    m.setdefault("members", {})[member] = {
        "training": training, "stages": stages, "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch_version": torch.__version__, "onnx_version": onnx.__version__,
    }
    files = {}
    for root, _, names in os.walk(MODELS):
        for n in sorted(names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, MODELS)
            if rel == "manifest.json":
                continue
            b = open(p, "rb").read()
            files[rel] = {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
    m["files"] = dict(sorted(files.items()))
    m["total_bytes"] = sum(v["size"] for v in files.values())
    write_json(path, m)
    if m["total_bytes"] > 40e6:
        raise SystemExit(f"models/ is {m['total_bytes'] / 1e6:.1f} MB, over the 40 MB budget")
    return m["total_bytes"]
