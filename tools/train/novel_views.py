"""shapes-novel-views: Zero-1-to-3 style novel-view synthesis, fine-tuned from shapes-t2i.

Data: render3d.py objects, each seen from VIEWS random cameras; a training example is (input view,
target view) of one object. Model (Zero-1-to-3's signature):
  * UNet input = x_t (4) ++ the input view's latent (4; the VAE mean, UNSCALED, as InstructPix2Pix
    and Zero-1-to-3 concatenate it) -> conv_in widened to 8 channels, the new weights zero;
  * cross-attention context = cc_projection([image_embeds(input view) (64), Δelevation (rad),
    sin Δazimuth, cos Δazimuth, Δradius]) -> one 64-d token; cc_projection starts as the identity
    on the embedding and zero on the pose (as Zero-1-to-3 initialises it);
  * unconditional input: the concatenated latent AND the context both zero (Zero-1-to-3's sampling
    form); trained with P_UNCOND of the examples dropped that way.
Fine-tuned from the shipped shapes-t2i UNet (from_onnx.py), which never saw a pose or a 3D render.
The prior for prior swap is that same shapes-t2i UNet with its null text (the text encoder on "").

    nice -n 10 /work/.venvs/tools/bin/python tools/train/novel_views.py --seed 0
"""
import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diffusion as DF  # noqa: E402
import export as E  # noqa: E402
import from_onnx as FO  # noqa: E402
import image_encoder as IE  # noqa: E402
import members as M  # noqa: E402
import nets as N  # noqa: E402
import render3d as R  # noqa: E402

FOLDER = "shapes-novel-views"
CFG = {"n_obj": 3000, "views": 6, "steps": 1500, "batch": 64, "lr": 1e-3, "ema": 0.995, "p_uncond": 0.075,
       "init": "shapes-t2i", "pose": ["delta_elevation_rad", "sin_delta_azimuth", "cos_delta_azimuth", "delta_radius"]}


class CCProjection(nn.Module):
    """[image_embeds ++ pose] -> one context token (Zero-1-to-3's cc_projection)."""

    def __init__(self, dim=64, pose=4):
        super().__init__()
        self.lin = nn.Linear(dim + pose, dim)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.weight[:, :dim] = torch.eye(dim)
            self.lin.bias.zero_()

    def forward(self, image_embeds, pose):
        return self.lin(torch.cat([image_embeds, pose], -1))[:, None, :]


def lr_at(step, steps, lr, warm=50):
    if step < warm:
        return lr * (step + 1) / warm
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))


def train(modules, loss_fn, c, seed, tag):
    """AdamW + EMA loop shared with image_variation.py. modules: dict of name -> module; returns EMA copies.
    c may carry 'trainable' (a function step -> list of parameters) for staged fine-tuning."""
    ema = {k: copy.deepcopy(m) for k, m in modules.items()}
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=c["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(seed * 100 + 77)
    t0, run = time.time(), None
    for step in range(c["steps"]):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, c["steps"], c["lr"])
        if "trainable" in c:
            on = {id(p) for p in c["trainable"](step)}
            for p in params:
                p.requires_grad_(id(p) in on)
        loss = loss_fn(g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], 1.0)
        opt.step()
        with torch.no_grad():
            d = c["ema"] if step > 50 else 0.0
            for k in modules:
                for pe, p in zip(ema[k].parameters(), modules[k].parameters()):
                    pe.mul_(d).add_(p.detach(), alpha=1 - d)
        run = loss.item() if run is None else 0.98 * run + 0.02 * loss.item()
        if step % 100 == 0 or step == c["steps"] - 1:
            print(f"{tag} step {step} loss {run:.4f} ({(time.time() - t0) / (step + 1):.3f}s/step)", flush=True)
    return {k: m.eval() for k, m in ema.items()}, time.time() - t0


def vae_sf():
    import json
    return json.load(open(os.path.join(M.MODELS, "shapes-t2i", "vae_encoder", "config.json")))["scaling_factor"]


def scheduler_and_index(out, extra):
    M.write_json(os.path.join(out, "scheduler", "scheduler_config.json"), E.UNET_SCHED)
    idx = {"_class_name": extra.pop("_class_name"), "_diffusers_version": "0.30.0",
           "unet": ["diffusers", "OnnxRuntimeModel"], "scheduler": ["diffusers", "DDIMScheduler"],
           "priorgraph": {"latent_space": E.LATENT_SPACE, **extra}}
    M.write_json(os.path.join(out, "model_index.json"), idx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=CFG["steps"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-obj", type=int, default=CFG["n_obj"], help="fewer objects for a smoke run")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    CFG["steps"], CFG["n_obj"] = a.steps, a.n_obj
    torch.manual_seed(a.seed * 100 + 41)
    N.Lin.conv = False  # torch 2.x links a real BLAS: plain matmuls are fastest
    t0 = time.time()
    imgs, poses, _ = R.make_multiview(CFG["n_obj"], CFG["views"], a.seed * 1000 + 41)
    flat = imgs.reshape(-1, 3, 32, 32)
    lat, sf = M.encode_images(flat)  # scaled latents
    lat = lat.reshape(CFG["n_obj"], CFG["views"], 4, 8, 8)
    enc = IE.load()
    emb = IE.embed(enc, flat).reshape(CFG["n_obj"], CFG["views"], -1)
    poses = torch.from_numpy(poses)
    print(f"data {time.time() - t0:.1f}s", flush=True)

    t2i = FO.unet("shapes-t2i", ctx_dim=64)
    unet = N.UNet(in_ch=8, ch=(32, 64), ctx_dim=64)
    N.init_from_base(unet, t2i)  # every weight from shapes-t2i; conv_in's 4 new input channels zero
    proj = CCProjection()
    acp = DF.alphas_cumprod("scaled_linear")
    B, V = CFG["batch"], CFG["views"]

    def loss_fn(g):
        o = torch.randint(0, CFG["n_obj"], (B,), generator=g)
        i = torch.randint(0, V, (B,), generator=g)
        j = (i + torch.randint(1, V, (B,), generator=g)) % V
        x0 = lat[o, j]
        cond_lat = lat[o, i] / sf
        rel = torch.from_numpy(R.relative_pose(poses[o, i].numpy(), poses[o, j].numpy()))
        ctx = proj(emb[o, i], rel)
        keep = (torch.rand(B, generator=g) >= CFG["p_uncond"]).float()
        ctx = ctx * keep[:, None, None]
        cond_lat = cond_lat * keep[:, None, None, None]
        t = torch.randint(0, DF.T, (B,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        xt = DF.add_noise(x0, eps, acp, t)
        return F.mse_loss(unet(torch.cat([xt, cond_lat], 1), t.float(), ctx), eps)

    ema, secs = train({"unet": unet, "proj": proj}, loss_fn, CFG, a.seed, "novel-views")
    torch.save({"unet": ema["unet"].state_dict(), "proj": ema["proj"].state_dict(), "cfg": CFG},
               os.path.join(M.CKPT, "novel_views.pt"))
    export(ema["unet"], ema["proj"], a.seed, secs)


def export(unet, proj, seed, secs):
    out = os.path.join(M.MODELS, FOLDER)
    g = torch.Generator().manual_seed(5)
    e = F.normalize(torch.randn(2, 64, generator=g), dim=-1)
    pose = torch.tensor([[0.2, 0.5, 0.866, 0.0], [0.0, 0.0, 0.0, 0.0]])
    M.export(proj, (e, pose), os.path.join(out, "cc_projection", "model.onnx"), ["image_embeds", "pose"],
             ["encoder_hidden_states"], "novel_views_cc_projection")
    with torch.no_grad():
        ehs = proj(e, pose)
    x = torch.randn(2, 8, 8, 8, generator=g)
    M.export(N.UNetCondExport(unet), (x, torch.tensor([981.0, 1.0]), ehs), os.path.join(out, "unet", "model.onnx"),
             ["sample", "timestep", "encoder_hidden_states"], ["out_sample"], "novel_views_unet")
    ucfg = E._unet_config(8, 64, "float32", (32, 64),
                          "Zero-1-to-3 novel views: sample = noisy latent (4) ++ input view latent (4, VAE mean, "
                          "unscaled); encoder_hidden_states = cc_projection(image_embeds ++ relative pose), [b,1,64]")
    ucfg["priorgraph"]["fine_tuned_from"] = CFG["init"]
    M.write_json(os.path.join(out, "unet", "config.json"), ucfg)
    M.write_json(os.path.join(out, "cc_projection", "config.json"), {
        "in_features": 68, "out_features": 64, "tokens": 1,
        "priorgraph": {"inputs": {"image_embeds": "[b,64] shapes-image-encoder output (L2-normalised)",
                                  "pose": "[b,4] " + ", ".join(CFG["pose"]) + " (target minus input camera)"},
                       "camera": {"elevation_deg": list(R.ELEV), "radius": list(R.RADIUS), "azimuth_deg": [0, 360],
                                  "focal": R.FOCAL, "convention": "y up; azimuth 0 looks along -z"}}})
    scheduler_and_index(out, {
        "_class_name": "Zero1to3StableDiffusionPipeline", "role": "novel-views", "conditioning": "zero123",
        "fine_tuned_from": CFG["init"], "prior": "../shapes-t2i", "prior_condition": "null text (\"\")",
        "image_encoder": "../shapes-image-encoder", "cc_projection": "cc_projection/model.onnx",
        "vae": "../shapes-t2i", "image_latent": "vae mean, not scaled",
        "unconditional": "zero image latent and zero encoder_hidden_states", "condition_dropout": CFG["p_uncond"]})
    M.record("novel-views", {**CFG, "seed": seed}, {"seconds": round(secs, 1)},
             f"nice -n 10 /work/.venvs/tools/bin/python tools/train/novel_views.py --seed {seed}")
    print("exported", sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs), "bytes")


if __name__ == "__main__":
    main()
