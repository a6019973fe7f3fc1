"""Plain PyTorch (eager) sampling of the shipped shapes demo models, written the way a diffusers user
would: a DDIM loop over the UNet, guidance in Python, VAE decode at the end.

    /usr/bin/python3 tools/bench/torch_sample.py --mode cfg --steps 30 --batch 1 --threads 2 --rounds 5

Weights: read from the committed ONNX files (models/shapes-*/**/model.onnx) into the PyTorch modules
of tools/train/nets.py, so a fresh clone needs no checkpoints and no retraining, and no weights are
duplicated. The mapping from ONNX initializers to parameters is found by exporting each freshly built
module once with *marker* parameter values (parameter k, element i holds k*65536 + i) and decoding
which parameter elements every initializer holds (this covers renamed, transposed and reshaped
initializers such as MatMul weights and GroupNorm scales). The loaded module is then exported again
and every initializer is compared with the shipped file: loading fails unless they are identical.

Modes: cfg      — standard CFG, cond + uncond as ONE batch-2B UNet call per step (diffusers' way);
       priorswap — prior-swap CFG, the fine-tuned UNet (cond) and the base UNet (uncond) called one
                   after the other per step (the paper's reference implementation).
Prints one JSON line: {"mode", "steps", "batch", "threads", "per_image_ms": [...], "torch": ...}.
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import nets as N  # noqa: E402

OPSET = 17  # as tools/train/export.py


def _export_bytes(module, args, in_names, out_names):
    buf = io.BytesIO()
    dyn = {n: {0: "batch"} for n in in_names + out_names}
    with torch.no_grad():
        torch.onnx.export(module, args, buf, opset_version=OPSET, input_names=in_names, output_names=out_names,
                          dynamic_axes=dyn, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def _inits(model):
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def load_from_onnx(module, onnx_path, args, in_names, out_names, unused=()):
    """Fill `module`'s parameters from the initializers of `onnx_path` (exported from the same module class)."""
    N.Lin.conv = False
    module.eval()
    params = list(module.named_parameters())
    shipped = _inits(onnx.load(onnx_path))
    covered = [np.zeros(p.numel(), bool) for _, p in params]
    values = [np.zeros(p.numel(), np.float32) for _, p in params]
    S, G = 1 << 17, 120  # element index < 2^17, group label 1..G: every marker value is an exact float32
    if max(p.numel() for _, p in params) >= S:
        raise RuntimeError(f"{onnx_path}: a parameter has {S} or more elements; raise S")
    for g0 in range(0, len(params), G):
        with torch.no_grad():
            for k, (_, p) in enumerate(params):
                lab = k - g0 + 1
                p.copy_(((lab * S + torch.arange(p.numel(), dtype=torch.float64)) if 0 < lab <= G
                         else -(k + 1) - torch.arange(p.numel(), dtype=torch.float64) / (2 * p.numel())
                         ).reshape(p.shape).float())  # others: distinct negative values (no dedup)
        marker = _inits(_export_bytes(module, args, in_names, out_names))
        if set(marker) != set(shipped):
            raise RuntimeError(f"{onnx_path}: initializer names differ from a fresh export of {type(module).__name__}")
        for name, m in marker.items():
            if m.dtype != np.float32 or m.size == 0:
                continue
            v = m.astype(np.float64).ravel()
            lab = np.floor(v / S)
            i = v - lab * S
            if not (np.all(lab == lab[0]) and 1 <= lab[0] <= G and np.all(i == np.round(i))):
                continue  # not a plain copy of one parameter of this group (a constant of the graph)
            k = int(lab[0]) - 1 + g0
            i = i.astype(np.int64)
            if k >= len(params) or i.max() >= params[k][1].numel():
                continue
            values[k][i] = shipped[name].ravel()
            covered[k][i] = True
    missing = [params[k][0] for k in range(len(params))
               if not covered[k].all() and not params[k][0].startswith(tuple(unused))]
    if missing:
        raise RuntimeError(f"{onnx_path}: parameters not found among the initializers: {missing}")
    with torch.no_grad():
        for k, (_, p) in enumerate(params):
            p.copy_(torch.from_numpy(values[k]).reshape(p.shape))
    again = _inits(_export_bytes(module, args, in_names, out_names))
    for name, a in shipped.items():
        if a.shape != again[name].shape or not np.array_equal(a, again[name]):
            raise RuntimeError(f"{onnx_path}: initializer {name} differs after loading")
    return module


def tokenize(models, texts, max_len=16):
    """CLIP-style ids: [SOT, one token per word, EOT], padded with EOT (see tools/train/README.md)."""
    vocab = json.load(open(os.path.join(models, "shapes-t2i", "tokenizer", "vocab.json")))
    sot, eot = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    out = []
    for t in texts:
        ids = [sot] + [vocab[w + "</w>"] for w in t.lower().split()] + [eot]
        out.append((ids + [eot] * max_len)[:max_len])
    return torch.tensor(out, dtype=torch.int32)


class DDIMScheduler:
    """diffusers' DDIMScheduler for this config: scaled_linear betas, 'leading' spacing, steps_offset 1,
    set_alpha_to_one False, eta 0, epsilon prediction."""

    def __init__(self, cfg):
        T = cfg["num_train_timesteps"]
        betas = torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, T, dtype=torch.float32) ** 2
        self.acp = torch.cumprod(1.0 - betas, 0)
        self.final = self.acp[0]
        self.T, self.offset = T, cfg["steps_offset"]

    def set_timesteps(self, n):
        self.ratio = self.T // n
        self.timesteps = (torch.arange(0, n) * self.ratio).flip(0) + self.offset

    def step(self, eps, t, x):
        prev = int(t) - self.ratio
        a = self.acp[int(t)]
        ap = self.acp[prev] if prev >= 0 else self.final
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return ap.sqrt() * x0 + (1 - ap).sqrt() * eps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--mode", choices=["cfg", "priorswap"], default="cfg")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--prompt", default="a red circle on a light background")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--linear", choices=["plain", "conv"], default="plain",
                    help="plain: nn.Linear as diffusers runs it; conv: tools/train's 1-D-convolution workaround "
                         "for Debian torch's reference BLAS (same numbers, faster here)")
    ap.add_argument("--save", default="", help="write the decoded images of the last round here (.npy, [b,3,32,32])")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    M = a.models
    t_load = time.time()
    t2i_cfg = json.load(open(os.path.join(M, "shapes-t2i", "unet", "config.json")))
    ch, dim = tuple(t2i_cfg["block_out_channels"]), t2i_cfg["cross_attention_dim"]
    vocab = json.load(open(os.path.join(M, "shapes-t2i", "tokenizer", "vocab.json")))
    te_cfg = json.load(open(os.path.join(M, "shapes-t2i", "text_encoder", "config.json")))
    vae_cfg = json.load(open(os.path.join(M, "shapes-t2i", "vae_decoder", "config.json")))
    sched_cfg = json.load(open(os.path.join(M, "shapes-t2i", "scheduler", "scheduler_config.json")))
    ids2 = tokenize(M, [a.prompt, ""])
    te = load_from_onnx(N.TextEncoder(len(vocab), te_cfg["eos_token_id"], d=dim),
                        os.path.join(M, "shapes-t2i", "text_encoder", "model.onnx"),
                        (ids2,), ["input_ids"], ["last_hidden_state", "pooler_output"])
    x2 = torch.zeros(2, 4, 8, 8)
    with torch.no_grad():
        ehs2 = te(ids2.long())[0]
    unet = load_from_onnx(N.UNetCondExport(N.UNet(ch=ch, ctx_dim=dim)),
                          os.path.join(M, "shapes-t2i", "unet", "model.onnx"), (x2, torch.tensor([981.0, 1.0]), ehs2),
                          ["sample", "timestep", "encoder_hidden_states"], ["out_sample"]).m
    base = None
    if a.mode == "priorswap":
        base = load_from_onnx(N.UNetUncondExport(N.UNet(ch=ch)), os.path.join(M, "shapes-base", "unet", "model.onnx"),
                              (x2, torch.tensor([999, 421])), ["sample", "timestep"], ["out_sample"]).m
    vae = N.VAE()
    load_from_onnx(N.VAEDecoderExport(vae), os.path.join(M, "shapes-t2i", "vae_decoder", "model.onnx"),
                   (x2,), ["latent_sample"], ["sample"], unused=("vae.enc.",))
    sf = vae_cfg["scaling_factor"]
    N.Lin.conv = a.linear == "conv"
    load_s = time.time() - t_load
    sched = DDIMScheduler(sched_cfg)

    @torch.no_grad()
    def pipeline(seed):
        # as diffusers: encode the prompt (and the empty prompt for CFG), loop, decode
        b = a.batch
        ids = tokenize(M, [a.prompt] * b + [""] * b).long()
        hidden = te(ids)[0]
        cond, uncond = hidden[:b], hidden[b:]
        g = torch.Generator().manual_seed(seed)
        lat = torch.randn((b, 4, 8, 8), generator=g)
        sched.set_timesteps(a.steps)
        for t in sched.timesteps:
            tt = t.float()
            if a.mode == "cfg":
                inp = torch.cat([lat, lat])
                e = unet(inp, tt.expand(2 * b), torch.cat([uncond, cond]))
                eu, ec = e.chunk(2)
            else:
                ec = unet(lat, tt.expand(b), cond)
                eu = base(lat, tt.expand(b))
            eps = eu + a.guidance * (ec - eu)
            lat = sched.step(eps, t, lat)
        return vae.decode(lat / sf).clamp(-1, 1)

    for r in range(a.warmup):
        pipeline(a.seed)
    per = []
    for r in range(a.rounds):
        t0 = time.perf_counter()
        img = pipeline(a.seed + r)
        per.append((time.perf_counter() - t0) * 1000 / a.batch)
    if a.save:
        np.save(a.save, img.numpy())
    print(json.dumps({"mode": a.mode, "steps": a.steps, "batch": a.batch, "guidance": a.guidance,
                      "threads": torch.get_num_threads(), "linear": a.linear, "per_image_ms": per,
                      "load_s": round(load_s, 2), "torch": torch.__version__,
                      "weights": "ONNX initializers of models/ loaded into tools/train/nets.py modules"}))


if __name__ == "__main__":
    main()
