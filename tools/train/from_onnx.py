"""Recover PyTorch weights from the shipped ONNX files, so new family members can be fine-tuned
from the exact models in models/ without their (uncommitted) training checkpoints.

torch.onnx.export keeps most parameters under their state-dict names; the rest become anonymous
initializers (GroupNorm affine terms folded to [C,1,1] Mul/Add constants, Linear weights stored
transposed for MatMul). Those are matched to the remaining state-dict keys in order and by shape,
and every recovered model is then replayed against onnxruntime on random inputs: a wrong match
cannot pass that check.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nets as N  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models")


def load_into(model, onnx_path, prefix, only=None):
    """Load the parameters of `model` (those whose key starts with `only`, if given) from onnx_path."""
    g = onnx.load(onnx_path).graph
    inits = [(i.name, numpy_helper.to_array(i)) for i in g.initializer]
    full = model.state_dict()
    sd = {k: v for k, v in full.items() if only is None or k.startswith(only)}
    named = {n: a for n, a in inits if n.startswith(prefix) and n[len(prefix):] in sd}
    anon = {n: a for n, a in inits if n not in named}
    out = {}
    for k, v in sd.items():
        if prefix + k in named:
            out[k] = torch.from_numpy(named[prefix + k].copy()).reshape(v.shape)
    # an anonymous initializer is named by the node that consumes it: '/m/u2a/norm/Mul' holds
    # u2a.norm.weight (GroupNorm scale), '.../Add' its bias, '.../MatMul' a Linear weight transposed
    role = {"Mul": "weight", "Add": "bias", "MatMul": "weight"}
    for node in g.node:
        for x in node.input:
            if x not in anon or node.op_type not in role:
                continue
            path = node.name.strip("/").split("/")[:-1]
            key = ".".join(path)[len(prefix):] + "." + role[node.op_type]
            if key not in sd or key in out:
                continue
            a = anon[x]
            t = torch.from_numpy((a.T if node.op_type == "MatMul" else a).copy())
            out[key] = t.reshape(sd[key].shape)
    missing = [k for k in sd if k not in out]
    if missing:
        raise RuntimeError(f"{onnx_path}: no initializer for {missing[:5]}")
    full.update(out)
    model.load_state_dict(full)
    return model


def replay(module, onnx_path, feeds, tol=1e-4):
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    with torch.no_grad():
        got = module(*feeds.values())
        got = (got[0] if isinstance(got, tuple) else got).numpy()
    err = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-12))
    if not err < tol:
        raise RuntimeError(f"{onnx_path}: recovered weights disagree with ONNX (rel err {err:.2e})")
    return err


def _unet_cfg(folder):
    import json
    return json.load(open(os.path.join(ROOT, folder, "unet", "config.json")))


def vae():
    v = N.VAE(ch=(32, 64))
    load_into(v, os.path.join(ROOT, "shapes-t2i", "vae_encoder", "model.onnx"), "vae.", only="enc")
    load_into(v, os.path.join(ROOT, "shapes-t2i", "vae_decoder", "model.onnx"), "vae.", only="dec")
    g = torch.Generator().manual_seed(0)
    replay(N.VAEDecoderExport(v), os.path.join(ROOT, "shapes-t2i", "vae_decoder", "model.onnx"),
           {"latent_sample": torch.randn(2, 4, 8, 8, generator=g)})
    return v.eval()


def unet(folder, in_ch=4, ctx_dim=None):
    m = N.UNet(in_ch=in_ch, ch=(32, 64), ctx_dim=ctx_dim)
    p = os.path.join(ROOT, folder, "unet", "model.onnx")
    load_into(m, p, "m.")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, in_ch, 8, 8, generator=g)
    if ctx_dim is None:
        replay(N.UNetUncondExport(m), p, {"sample": x, "timestep": torch.tensor([999, 421])})
    else:
        replay(N.UNetCondExport(m), p, {"sample": x, "timestep": torch.tensor([981.0, 1.0]),
                                        "encoder_hidden_states": torch.randn(2, 16, ctx_dim, generator=g)})
    return m.eval()


if __name__ == "__main__":
    vae()
    print("vae ok")
    unet("shapes-base")
    print("base ok")
    unet("shapes-t2i", ctx_dim=64)
    print("t2i ok")
