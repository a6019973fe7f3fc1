"""Class-conditional DiT pair (issue 12 §1; the paper's Table 3 experiment in miniature).

    /work/.venvs/tools/bin/python tools/train/cdit.py --seed 0            # train both + export + record
    /work/.venvs/tools/bin/python tools/train/cdit.py --stages export     # re-export from checkpoints

The paper fine-tunes ImageNet's class-conditional DiT-XL/2 to a new label set (SUN397, Food101,
Caltech101: 20k steps, batch 64, lr 1e-4, 10% label dropout) and takes the unconditional branch of
CFG from the ImageNet model's null class. Here:

* "ImageNet" base (models/shapes-dit-class-base): the family's DiT (nets.DiT, same width/depth/patch)
  with a label table of 24 classes = every (shape, colour) pair, plus a null class (row 24), 10% of
  labels dropped to null; trained on the broad base-domain data (data.make_dataset(..., 'base'),
  the 20,000 images the family's base models saw). It starts from the SHIPPED unconditional
  shapes-dit (weights recovered from its ONNX file, replay-checked), so its timestep path and
  transformer start trained; the label table starts at N(0, 0.02) as DiT's.
* fine-tune (models/shapes-dit-class-ft): a NEW label set, the 6 colours only (plus null, row 6),
  on the narrower, shifted fine-tune domain (light pastel backgrounds, small shapes; the family's
  3,000 fine-tune images), 10% label dropout. Every weight comes from the base except the label
  table, which is new: N(0, 0.02) rows for the 6 colours and the base's null row as its null row
  (the fine-tune's unconditional branch starts as the base's).
* Learned sigma as DiT: 2C = 8 output channels; channels 0-3 are the prediction, 4-7 a value
  v ∈ [-1, 1] interpolating the log variance between β_t and the posterior's β̃_t (Improved DDPM's
  "learned_range"). Loss = MSE on the prediction + the variational bound term (KL between the true
  posterior q(x_{t-1}|x_t,x_0) and p(x_{t-1}|x_t) in bits per dimension, with the predicted mean
  detached so the bound trains only the variance; at t = 0 the Gaussian NLL of x_0), weight 1 as DiT's
  loss. Deterministic DDIM (the paper's sampler, and priorgraph's) does not use the variance channels.
* Schedule and parameterization: shapes-dit's (squaredcos_cap_v2, v_prediction; export.DIT_SCHED),
  since the base starts from shapes-dit. (DiT itself predicts ε on a linear schedule; the guidance
  formulas are the same after priorgraph's conversion to ε.)
* Latents: data through the shipped VAE encoder (members.encode_images), scaled.

Scaled down from the paper's 20k steps at batch 64 to what fits ~10-15 min of one CPU thread; the
settings that produced models/ are CFG below (recorded in models/manifest.json under members.dit-class).
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import diffusion as DF  # noqa: E402
import export as E  # noqa: E402
import from_onnx as FO  # noqa: E402
import members as M  # noqa: E402
import nets as N  # noqa: E402
import train_all as TA  # noqa: E402

BASE_LABELS = [f"{c} {s}" for s in D.SHAPES for c in D.COLORS]  # class k = shape (k // 6), colour (k % 6)
FT_LABELS = list(D.COLORS)

CFG = {
    "arch": {"d": TA.CFG["dit"]["d"], "depth": TA.CFG["dit"]["depth"], "patch": TA.CFG["dit"]["patch"],
             "heads": 4, "out_channels": 8, "learned_sigma": "learned_range (Improved DDPM), hybrid loss"},
    "schedule": {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"},
    "vb_weight": 1.0,
    "base": {"steps": 10000, "batch": 64, "lr": 1e-3, "ema": 0.995, "p_uncond": 0.10, "n_images": 20000,
             "data": "base domain, data.make_dataset(20000, 'base', seed*1000+1)", "labels": BASE_LABELS,
             "init": "models/shapes-dit (recovered from ONNX); label table N(0, 0.02)"},
    "ft": {"steps": 5000, "batch": 64, "lr": 3e-4, "ema": 0.995, "p_uncond": 0.10, "n_images": 3000,
           "data": "fine-tune domain, data.make_dataset(3000, 'ft', seed*1000+2)", "labels": FT_LABELS,
           "init": "the base (every weight but the label table); new label table: N(0, 0.02), null row = base's"},
    "paper": {"steps": 20000, "batch": 64, "lr": 1e-4, "p_uncond": 0.10},
}


class ClassDiT(N.DiT):
    """nets.DiT plus DiT's label embedding: the adaLN vector is t_emb + label_emb(y); row n = null class."""

    def __init__(self, n_classes, d, depth, patch):
        super().__init__(d=d, depth=depth, patch=patch)
        self.n_classes = n_classes
        self.label = nn.Embedding(n_classes + 1, d)
        nn.init.normal_(self.label.weight, std=0.02)

    def cond(self, t, y):
        return super().cond(t) + self.label(y)


def new_model(n_classes):
    a = CFG["arch"]
    return ClassDiT(n_classes, a["d"], a["depth"], a["patch"])


def shipped_dit():
    """The shipped unconditional shapes-dit, its weights recovered from the ONNX file and replay-checked."""
    a = CFG["arch"]
    m = N.DiT(d=a["d"], depth=a["depth"], patch=a["patch"])
    p = os.path.join(M.MODELS, "shapes-dit", "transformer", "model.onnx")
    g = onnx.load(p).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    sd = m.state_dict()
    out = {k: torch.from_numpy(inits[k].copy()) for k in sd if k in inits}
    for node in g.node:  # anonymous initializers, named by their consumer (from_onnx.load_into's rule)
        for x in node.input:
            if x not in inits or x in sd:
                continue
            if node.name == "/Add" and "pos" not in out:  # pos[None], folded into the first Add
                out["pos"] = torch.from_numpy(inits[x].copy()).reshape(sd["pos"].shape)
            elif node.op_type == "MatMul":  # a Linear weight, transposed; nn.Sequential repeats its name
                key = ".".join(node.name.strip("/").split("/")[:-1]).replace("mlp.mlp.", "mlp.") + ".weight"
                out[key] = torch.from_numpy(inits[x].T.copy())
    missing = [k for k in sd if k not in out or out[k].shape != sd[k].shape]
    if missing:
        raise RuntimeError(f"{p}: no initializer for {missing}")
    m.load_state_dict(out)
    g = torch.Generator().manual_seed(0)
    err = FO.replay(m, p, {"hidden_states": torch.randn(2, 4, 8, 8, generator=g),
                           "timestep": torch.tensor([999.0, 37.0])})
    TA.log(f"shapes-dit recovered from ONNX, replay rel err {err:.1e}")
    return m


# ------------------------------------------------------------------ learned-range variance (VLB term)
class Schedule:
    def __init__(self):
        acp = DF.alphas_cumprod(CFG["schedule"]["beta_schedule"]).double()
        prev = torch.cat([torch.ones(1, dtype=torch.float64), acp[:-1]])
        betas = 1 - acp / prev
        post_var = betas * (1 - prev) / (1 - acp)
        self.acp = acp.float()
        self.log_beta = betas.log().float()
        self.post_logvar = torch.cat([post_var[1:2], post_var[1:]]).log().float()  # clipped at t = 0
        self.c_x0 = (betas * prev.sqrt() / (1 - acp)).float()
        self.c_xt = ((1 - prev) * (1 - betas).sqrt() / (1 - acp)).float()

    def at(self, name, t):
        return getattr(self, name)[t].view(-1, 1, 1, 1)


def vb_bits(sch, pred_v, var_out, x0, xt, t):
    """Per-sample variational bound term in bits/dim for the variance channels (mean detached)."""
    a = sch.at("acp", t)
    x0_hat = a.sqrt() * xt - (1 - a).sqrt() * pred_v.detach()
    mean = sch.at("c_x0", t) * x0_hat + sch.at("c_xt", t) * xt
    true_mean = sch.at("c_x0", t) * x0 + sch.at("c_xt", t) * xt
    frac = (var_out + 1) / 2
    logvar = frac * sch.at("log_beta", t) + (1 - frac) * sch.at("post_logvar", t)
    true_logvar = sch.at("post_logvar", t)
    kl = 0.5 * (-1 + logvar - true_logvar + (true_logvar - logvar).exp() + (true_mean - mean) ** 2 * (-logvar).exp())
    nll = 0.5 * (math.log(2 * math.pi) + logvar + (x0 - mean) ** 2 * (-logvar).exp())
    per = torch.where((t == 0).view(-1, 1, 1, 1), nll, kl).mean(dim=(1, 2, 3))
    return per / math.log(2.0)


def hybrid_loss(sch, model, x0, y, g, p_uncond):
    b = x0.shape[0]
    t = torch.randint(0, DF.T, (b,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    xt = DF.add_noise(x0, eps, sch.acp, t)
    drop = torch.rand(b, generator=g) < p_uncond
    y = torch.where(drop, torch.full_like(y, model.n_classes), y)
    out = model(xt, t.float(), y)
    mse = F.mse_loss(out[:, :4], DF.v_target(x0, eps, sch.acp, t))
    vb = vb_bits(sch, out[:, :4], out[:, 4:], x0, xt, t).mean()
    return mse, vb


def train(name, model, lat, labels, c, seed_no):
    sch = Schedule()
    ema = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(seed_no)
    run_m = run_v = 0.0
    t0 = time.time()
    for step in range(c["steps"]):
        TA.set_lr(opt, TA.lr_at(step, c["steps"], c["lr"], warm=50))
        idx = torch.randint(0, len(lat), (c["batch"],), generator=g)
        mse, vb = hybrid_loss(sch, model, lat[idx], labels[idx], g, c["p_uncond"])
        loss = mse + CFG["vb_weight"] * vb
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        TA.ema_update(ema, model, c["ema"] if step > 50 else 0.0)
        run_m = 0.98 * run_m + 0.02 * mse.item() if step else mse.item()
        run_v = 0.98 * run_v + 0.02 * vb.item() if step else vb.item()
        if step % 100 == 0 or step == c["steps"] - 1:
            TA.log(f"{name} step {step} mse {run_m:.4f} vb {run_v:.4f} ({(time.time() - t0) / (step + 1):.3f}s/step)")
    return ema.eval(), {"final_mse": round(run_m, 5), "final_vb_bits": round(run_v, 5)}


def stage_base(args):
    c = CFG["base"]
    torch.manual_seed(args.seed * 100 + 41)
    x, shp, col, _ = D.make_dataset(c["n_images"], "base", args.seed * 1000 + 1)
    lat, _ = M.encode_images(x)
    y = torch.from_numpy(shp * len(D.COLORS) + col)
    model = new_model(len(BASE_LABELS))
    missing = model.load_state_dict(shipped_dit().state_dict(), strict=False)
    assert missing.missing_keys == ["label.weight"] and not missing.unexpected_keys, missing
    TA.log("cdit base params", N.n_params(model))
    ema, res = train("cdit-base", model, lat, y, c, args.seed * 100 + 42)
    TA.save_atomic({"state": ema.state_dict()}, os.path.join(args.ckpt, "cdit_base.pt"))
    return {"params": N.n_params(model), **res}


def load(n_classes, path):
    m = new_model(n_classes)
    m.load_state_dict(torch.load(path)["state"])
    return m.eval()


def stage_ft(args):
    c = CFG["ft"]
    torch.manual_seed(args.seed * 100 + 43)
    base = load(len(BASE_LABELS), TA.wait_for(os.path.join(args.ckpt, "cdit_base.pt")))
    x, _, col, _ = D.make_dataset(c["n_images"], "ft", args.seed * 1000 + 2)
    lat, _ = M.encode_images(x)
    y = torch.from_numpy(col)
    model = new_model(len(FT_LABELS))
    sd = {k: v for k, v in base.state_dict().items() if k != "label.weight"}
    model.load_state_dict(sd, strict=False)
    with torch.no_grad():
        model.label.weight[len(FT_LABELS)] = base.label.weight[len(BASE_LABELS)]
    ema, res = train("cdit-ft", model, lat, y, c, args.seed * 100 + 44)
    TA.save_atomic({"state": ema.state_dict()}, os.path.join(args.ckpt, "cdit_ft.pt"))
    return {"params": N.n_params(model), **res}


def _export_one(model, labels, folder, tag, role, extra):
    f = os.path.join(M.MODELS, folder)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 8, 8, generator=g)
    ts = torch.tensor([999.0, 421.0, 3.0])
    y = torch.tensor([0, len(labels) - 1, len(labels)], dtype=torch.int64)  # first, last and null class
    M.export(model, (x, ts, y), os.path.join(f, "transformer", "model.onnx"),
             ["hidden_states", "timestep", "class_labels"], ["out_sample"], tag)
    a = CFG["arch"]
    M.write_json(os.path.join(f, "transformer", "config.json"), {
        "_class_name": "DiTTransformer2DModel", "_diffusers_version": "0.30.0", "sample_size": 8,
        "in_channels": 4, "out_channels": 8, "patch_size": a["patch"], "num_layers": a["depth"],
        "attention_head_dim": a["d"] // a["heads"], "num_attention_heads": a["heads"],
        "num_embeds_ada_norm": len(labels), "id2label": {str(i): l for i, l in enumerate(labels)},
        "priorgraph": {"prediction_type": "v_prediction", "learned_sigma": True,
                       "note": "output channels 0-3: the v prediction; 4-7: learned_range variance value in [-1,1] "
                               "(log variance = frac*log(beta_t) + (1-frac)*log(posterior variance), frac=(v+1)/2)",
                       "null_class": len(labels), "timestep_dtype": "float32", "class_labels_dtype": "int64",
                       "latent_space": E.LATENT_SPACE}})
    M.write_json(os.path.join(f, "scheduler", "scheduler_config.json"), E.DIT_SCHED)
    idx = {"_class_name": "OnnxDiTPipeline", "_diffusers_version": "0.30.0",
           "transformer": E.ORT, "scheduler": ["diffusers", "DDIMScheduler"],
           "priorgraph": {"latent_space": E.LATENT_SPACE, "role": role, "conditioning": "class",
                          "classes": labels, "null_class": len(labels),
                          "vae": "../shapes-t2i (shared: vae_encoder/ and vae_decoder/ are not copied here)",
                          **extra}}
    M.write_json(os.path.join(f, "model_index.json"), idx)


def stage_export(args):
    base = load(len(BASE_LABELS), os.path.join(args.ckpt, "cdit_base.pt"))
    ft = load(len(FT_LABELS), os.path.join(args.ckpt, "cdit_ft.pt"))
    _export_one(base, BASE_LABELS, "shapes-dit-class-base", "dit_class_base_transformer",
                "class-conditional base ('ImageNet' of the Table 3 experiment)",
                {"condition_dropout": CFG["base"]["p_uncond"], "initialised_from": "shapes-dit"})
    _export_one(ft, FT_LABELS, "shapes-dit-class-ft", "dit_class_ft_transformer",
                "class-conditional fine-tune to a new label set (colour only) on the fine-tune domain",
                {"condition_dropout": CFG["ft"]["p_uncond"], "fine_tuned_from": "shapes-dit-class-base",
                 "prior": "../shapes-dit-class-base"})
    return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default="base,ft,export")
    ap.add_argument("--ckpt", default=M.CKPT)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="21 steps per stage, to test the code path")
    args = ap.parse_args()
    if args.smoke:
        CFG["base"]["steps"] = CFG["ft"]["steps"] = 21
        if "export" in args.stages.split(","):
            raise SystemExit("--smoke trains 21 steps only: it does not export over models/ (drop 'export')")
    torch.set_num_threads(args.threads)
    # torch 2.x links a fast BLAS: plain MatMul trains ~7x faster here than nets.Lin's conv1d path
    # (measured 0.032 vs 0.235 s/step at batch 64, 1 thread); the weights are the same either way
    N.Lin.conv = False
    os.makedirs(args.ckpt, exist_ok=True)
    TA.LOG = os.path.join(args.ckpt, "cdit.log")
    info_path = os.path.join(args.ckpt, "cdit_stages.json")
    info = json.load(open(info_path)) if os.path.exists(info_path) else {}
    for st in args.stages.split(","):
        t = time.time()
        TA.log(f"=== cdit stage {st} (seed {args.seed})")
        res = {"base": stage_base, "ft": stage_ft, "export": stage_export}[st](args)
        if st != "export":
            info[st] = {"seconds": round(time.time() - t, 1), "seed": args.seed, "threads": args.threads, **res}
            json.dump(info, open(info_path, "w"), indent=2)
        TA.log(f"=== cdit stage {st} done in {time.time() - t:.0f}s")
    if "export" in args.stages.split(","):
        total = M.record("dit-class", CFG, info,
                         f"/work/.venvs/tools/bin/python tools/train/cdit.py --seed {args.seed} --threads {args.threads}")
        TA.log(f"models/ total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
