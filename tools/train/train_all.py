"""Retrain the whole priorgraph demo model family and export it to models/.

    /usr/bin/python3 tools/train/train_all.py --seed 0            # everything (train + export + eval stats)
    /usr/bin/python3 tools/train/train_all.py --seed 0 --stages vae,cls
    /usr/bin/python3 tools/train/train_all.py --seed 0 --stages export   # re-export from checkpoints

Every stage seeds its own RNGs from --seed and a fixed stage number, and all data are rendered
deterministically, so running the stages one by one gives the same weights as one full run.
PyTorch checkpoints go to --ckpt (default /tmp/priorgraph_ckpt); they are not committed.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import diffusion as DF  # noqa: E402
import nets as N  # noqa: E402
from tokenizer import make_tokenizer  # noqa: E402

STAGES = ["vae", "cls", "base", "t2i", "edit", "dit", "export"]
STAGE_NO = {s: i + 1 for i, s in enumerate(STAGES)}

# All training settings in one place (recorded in models/manifest.json).
CFG = {
    "data": {"n_base": 20000, "n_ft": 3000, "n_edit": 4000},
    "vae": {"steps": 900, "batch": 48, "lr": 2e-3, "kl_weight": 1e-3, "ch": [32, 64], "p_ft": 0.5, "edge_weight": 1.0},
    "cls": {"steps": 1000, "batch": 64, "lr": 2e-3, "n_recon": 4000},
    "base": {"steps": 1200, "batch": 64, "lr": 1.5e-3, "ema": 0.995, "ch": [32, 64]},
    "t2i": {"steps": 1200, "batch": 64, "lr": 1e-3, "ema": 0.995, "p_uncond": 0.10, "text_dim": 64},
    "edit": {"steps": 400, "batch": 64, "lr": 1e-3, "ema": 0.995, "p_drop_text": 0.05,
             "p_drop_image": 0.05, "p_drop_both": 0.05},
    "dit": {"steps": 900, "batch": 64, "lr": 1.5e-3, "ema": 0.995, "d": 64, "depth": 3, "patch": 2},
}

LOG = None


def wait_for(path, timeout=3600):
    """Stages may run in two parallel processes; a stage that needs another's checkpoint waits."""
    t = time.time()
    while not os.path.exists(path):
        if time.time() - t > timeout:
            raise FileNotFoundError(path)
        time.sleep(5)
    time.sleep(1)
    return path


def log(*a):
    msg = time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a)
    print(msg, flush=True)
    if LOG:
        with open(LOG, "a") as f:
            f.write(msg + "\n")


def save_atomic(obj, path):
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def seed_all(seed, stage):
    s = seed * 100 + STAGE_NO[stage]
    torch.manual_seed(s)
    return np.random.default_rng(s)


def lr_at(step, steps, lr, warm=100):
    if step < warm:
        return lr * (step + 1) / warm
    p = (step - warm) / max(1, steps - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def ema_update(ema, model, decay):
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.mul_(decay).add_(p.detach(), alpha=1 - decay)


class Ctx:
    """Lazily built shared data (rendered images, latents, tokenizer)."""

    def __init__(self, seed, ckpt):
        self.seed, self.ckpt, self._c = seed, ckpt, {}

    def get(self, key, fn):
        if key not in self._c:
            t = time.time()
            self._c[key] = fn()
            log(f"  built {key} in {time.time() - t:.1f}s")
        return self._c[key]

    def base(self):
        return self.get("base", lambda: D.make_dataset(CFG["data"]["n_base"], "base", self.seed * 1000 + 1))

    def ft(self):
        return self.get("ft", lambda: D.make_dataset(CFG["data"]["n_ft"], "ft", self.seed * 1000 + 2))

    def edit(self):
        return self.get("edit", lambda: D.make_edit_pairs(CFG["data"]["n_edit"], self.seed * 1000 + 3))

    def tokenizer(self):
        return self.get("tok", lambda: make_tokenizer(D.all_captions() + D.all_instructions()))

    def vae(self):
        def load():
            ck = torch.load(wait_for(os.path.join(self.ckpt, "vae.pt")))
            v = N.VAE(ch=tuple(CFG["vae"]["ch"]))
            v.load_state_dict(ck["state"])
            v.eval()
            return v, ck["scaling_factor"]
        return self.get("vae", load)

    def latents(self, name, imgs_fn):
        def enc():
            vae, _ = self.vae()
            x = torch.from_numpy(imgs_fn())
            out = []
            with torch.no_grad():
                for i in range(0, len(x), 256):
                    out.append(vae.encode(x[i:i + 256])[0])
            return torch.cat(out)
        return self.get("lat_" + name, enc)


# ------------------------------------------------------------------ stages
def stage_vae(ctx, seed):
    c = CFG["vae"]
    seed_all(seed, "vae")
    x = torch.from_numpy(np.concatenate([ctx.base()[0], ctx.ft()[0]]))
    nb = len(ctx.base()[0])
    vae = N.VAE(ch=tuple(c["ch"]))
    log("vae params", N.n_params(vae))
    opt = torch.optim.Adam(vae.parameters(), lr=c["lr"])
    g = torch.Generator().manual_seed(seed * 100 + 11)
    t0 = time.time()
    for step in range(c["steps"]):
        set_lr(opt, lr_at(step, c["steps"], c["lr"]))
        # the small fine-tune-domain shapes are the hard part: draw them p_ft of the time
        use_ft = torch.rand(c["batch"], generator=g) < c["p_ft"]
        ib = torch.randint(0, nb, (c["batch"],), generator=g)
        jf = nb + torch.randint(0, len(x) - nb, (c["batch"],), generator=g)
        xb = x[torch.where(use_ft, jf, ib)]
        mean, logvar = vae.encode(xb)
        z = mean + torch.randn(mean.shape, generator=g) * (0.5 * logvar).exp()
        rec = vae.decode(z)
        d = rec - xb
        # L1 + L2, plus an L1 on image gradients (keeps shape edges sharp)
        edge = (d[:, :, 1:] - d[:, :, :-1]).abs().mean() + (d[:, :, :, 1:] - d[:, :, :, :-1]).abs().mean()
        lrec = d.abs().mean() + d.pow(2).mean() + c["edge_weight"] * edge
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = lrec + c["kl_weight"] * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == c["steps"] - 1:
            log(f"vae step {step} rec {lrec.item():.4f} kl {kl.item():.3f} ({(time.time() - t0) / (step + 1):.3f}s/step)")
    vae.eval()
    with torch.no_grad():
        means = torch.cat([vae.encode(x[i:i + 256])[0] for i in range(0, len(x), 256)])
        rec = torch.cat([vae.decode(means[i:i + 256]) for i in range(0, 1024, 256)])
    sf = float(1.0 / means.std())
    mse = float((rec - x[:1024]).pow(2).mean())
    log(f"vae scaling_factor {sf:.5f} recon mse {mse:.5f} latent mean {means.mean():.3f}")
    save_atomic({"state": vae.state_dict(), "scaling_factor": sf, "recon_mse": mse}, os.path.join(ctx.ckpt, "vae.pt"))
    return {"scaling_factor": sf, "recon_mse": mse}


def stage_cls(ctx, seed):
    c = CFG["cls"]
    seed_all(seed, "cls")
    b, f = ctx.base(), ctx.ft()
    x = torch.from_numpy(np.concatenate([b[0], f[0]]))
    ys = torch.from_numpy(np.concatenate([b[1], f[1]]))
    yc = torch.from_numpy(np.concatenate([b[2], f[2]]))
    # half of the time the classifier sees VAE reconstructions, like the generated images it will judge
    vae, _ = ctx.vae()
    nr = c["n_recon"]  # reconstructions of a fixed subset (VAE decoding is the costly part on 2 cores)
    ridx = torch.from_numpy(np.random.default_rng(seed * 100 + 22).choice(len(x), nr, replace=False))
    with torch.no_grad():
        xr = torch.cat([vae.decode(vae.encode(x[ridx[i:i + 256]])[0]) for i in range(0, nr, 256)]).clamp(-1, 1)
    model = N.Classifier(len(D.SHAPES), len(D.COLORS))
    opt = torch.optim.Adam(model.parameters(), lr=c["lr"])
    g = torch.Generator().manual_seed(seed * 100 + 21)
    for step in range(c["steps"]):
        set_lr(opt, lr_at(step, c["steps"], c["lr"]))
        idx = torch.randint(0, len(x), (c["batch"],), generator=g)
        use_r = (torch.rand(c["batch"], generator=g) < 0.5)[:, None, None, None]
        ri = torch.randint(0, nr, (c["batch"],), generator=g)
        xb = torch.where(use_r, xr[ri], x[idx])
        idx = torch.where(use_r[:, 0, 0, 0], ridx[ri], idx)
        xb = xb + torch.randn(xb.shape, generator=g) * torch.rand(c["batch"], 1, 1, 1, generator=g) * 0.1
        ls, lc, _ = model(xb)
        loss = F.cross_entropy(ls, ys[idx]) + F.cross_entropy(lc, yc[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == c["steps"] - 1:
            log(f"cls step {step} loss {loss.item():.4f}")
    model.eval()
    # held-out accuracy on fresh images of both domains (and their VAE reconstructions)
    acc = {}
    for dom in ["base", "ft"]:
        xt, st, ct, _ = D.make_dataset(500, dom, seed * 1000 + 50 + STAGE_NO["cls"])
        xt = torch.from_numpy(xt)
        with torch.no_grad():
            for kind, inp in [("real", xt), ("vae", vae.decode(vae.encode(xt)[0]).clamp(-1, 1))]:
                ls, lc, _ = model(inp)
                acc[f"{dom}_{kind}_shape"] = float((ls.argmax(1).numpy() == st).mean())
                acc[f"{dom}_{kind}_color"] = float((lc.argmax(1).numpy() == ct).mean())
    log("cls accuracy", acc)
    torch.save({"state": model.state_dict(), "accuracy": acc}, os.path.join(ctx.ckpt, "cls.pt"))
    return acc


def _train_diffusion(name, model, ema, batch_fn, loss_fn, c, seed):
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(seed * 100 + 31 + STAGE_NO[name])
    run = 0.0
    t0 = time.time()
    for step in range(c["steps"]):
        set_lr(opt, lr_at(step, c["steps"], c["lr"], warm=50))
        loss = loss_fn(model, batch_fn(g), g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, c["ema"] if step > 50 else 0.0)
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        if step % 100 == 0 or step == c["steps"] - 1:
            log(f"{name} step {step} loss {run:.4f} ({(time.time() - t0) / (step + 1):.3f}s/step)")
    return ema


def _eps_loss(acp):
    def fn(model, batch, g):
        x0, cond = batch
        t = torch.randint(0, DF.T, (x0.shape[0],), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        xt = DF.add_noise(x0, eps, acp, t)
        out = model(xt, t.float(), *cond)
        return F.mse_loss(out[:, : eps.shape[1]], eps)
    return fn


def stage_base(ctx, seed):
    c = CFG["base"]
    seed_all(seed, "base")
    _, sf = ctx.vae()
    lat = ctx.latents("base", lambda: ctx.base()[0]) * sf
    model = N.UNet(ch=tuple(c["ch"]))
    ema = copy.deepcopy(model)
    log("base unet params", N.n_params(model))
    acp = DF.alphas_cumprod("scaled_linear")

    def batch(g):
        return lat[torch.randint(0, len(lat), (c["batch"],), generator=g)], ()

    ema = _train_diffusion("base", model, ema, batch, _eps_loss(acp), c, seed)
    save_atomic({"state": ema.state_dict()}, os.path.join(ctx.ckpt, "base.pt"))
    return {"params": N.n_params(model)}


def load_base(ctx):
    m = N.UNet(ch=tuple(CFG["base"]["ch"]))
    m.load_state_dict(torch.load(wait_for(os.path.join(ctx.ckpt, "base.pt")))["state"])
    return m


def stage_t2i(ctx, seed):
    c = CFG["t2i"]
    seed_all(seed, "t2i")
    _, sf = ctx.vae()
    tok = ctx.tokenizer()
    lat = ctx.latents("ft", lambda: ctx.ft()[0]) * sf
    ids = torch.tensor(tok(ctx.ft()[3]), dtype=torch.long)
    empty = torch.tensor(tok([""]), dtype=torch.long)
    base = load_base(ctx)
    unet = N.UNet(ch=tuple(CFG["base"]["ch"]), ctx_dim=c["text_dim"])
    N.init_from_base(unet, base)
    te = N.TextEncoder(len(tok.vocab), tok.eot, d=c["text_dim"])
    model = _Joint(unet, te)
    ema = copy.deepcopy(model)
    log("t2i unet params", N.n_params(unet), "text encoder params", N.n_params(te))
    acp = DF.alphas_cumprod("scaled_linear")

    def batch(g):
        idx = torch.randint(0, len(lat), (c["batch"],), generator=g)
        b_ids = ids[idx].clone()
        drop = torch.rand(c["batch"], generator=g) < c["p_uncond"]
        b_ids[drop] = empty[0]
        return lat[idx], (b_ids,)

    ema = _train_diffusion("t2i", model, ema, batch, _eps_loss(acp), c, seed)
    torch.save({"unet": ema.unet.state_dict(), "te": ema.te.state_dict()}, os.path.join(ctx.ckpt, "t2i.pt"))
    return {"unet_params": N.n_params(unet), "text_encoder_params": N.n_params(te)}


class _Joint(torch.nn.Module):
    """UNet + text encoder trained together. forward(x, t, ids[, image_latent])."""

    def __init__(self, unet, te):
        super().__init__()
        self.unet, self.te = unet, te

    def forward(self, x, t, ids, img=None):
        h, _ = self.te(ids)
        if img is not None:
            x = torch.cat([x, img], 1)
        return self.unet(x, t, h)


def stage_edit(ctx, seed):
    c = CFG["edit"]
    seed_all(seed, "edit")
    _, sf = ctx.vae()
    tok = ctx.tokenizer()
    src, tgt, ins = ctx.edit()[0], ctx.edit()[1], ctx.edit()[2]
    src_lat = ctx.latents("edit_src", lambda: src)  # unscaled VAE mean, as InstructPix2Pix
    tgt_lat = ctx.latents("edit_tgt", lambda: tgt) * sf
    ids = torch.tensor(tok(ins), dtype=torch.long)
    empty = torch.tensor(tok([""]), dtype=torch.long)
    base = load_base(ctx)
    unet = N.UNet(in_ch=8, ch=tuple(CFG["base"]["ch"]), ctx_dim=CFG["t2i"]["text_dim"])
    N.init_from_base(unet, base)
    te = N.TextEncoder(len(tok.vocab), tok.eot, d=CFG["t2i"]["text_dim"])
    model = _Joint(unet, te)
    ema = copy.deepcopy(model)
    log("edit unet params", N.n_params(unet))
    acp = DF.alphas_cumprod("scaled_linear")
    pt, pi, pb = c["p_drop_text"], c["p_drop_image"], c["p_drop_both"]

    def batch(g):
        idx = torch.randint(0, len(tgt_lat), (c["batch"],), generator=g)
        b_ids, img = ids[idx].clone(), src_lat[idx].clone()
        r = torch.rand(c["batch"], generator=g)
        drop_text = (r < pt) | ((r >= pt + pi) & (r < pt + pi + pb))
        drop_img = ((r >= pt) & (r < pt + pi)) | ((r >= pt + pi) & (r < pt + pi + pb))
        b_ids[drop_text] = empty[0]
        img[drop_img] = 0.0
        return tgt_lat[idx], (b_ids, img)

    ema = _train_diffusion("edit", model, ema, batch, _eps_loss(acp), c, seed)
    torch.save({"unet": ema.unet.state_dict(), "te": ema.te.state_dict()}, os.path.join(ctx.ckpt, "edit.pt"))
    return {"unet_params": N.n_params(unet)}


def stage_dit(ctx, seed):
    c = CFG["dit"]
    seed_all(seed, "dit")
    _, sf = ctx.vae()
    lat = ctx.latents("base", lambda: ctx.base()[0]) * sf
    model = N.DiT(d=c["d"], depth=c["depth"], patch=c["patch"])
    ema = copy.deepcopy(model)
    log("dit params", N.n_params(model))
    acp = DF.alphas_cumprod("squaredcos_cap_v2")

    def batch(g):
        return lat[torch.randint(0, len(lat), (c["batch"],), generator=g)], ()

    def vloss(model, b, g):
        x0 = b[0]
        t = torch.randint(0, DF.T, (x0.shape[0],), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        out = model(DF.add_noise(x0, eps, acp, t), t.float())
        return F.mse_loss(out[:, :4], DF.v_target(x0, eps, acp, t))  # last 4 channels untrained

    ema = _train_diffusion("dit", model, ema, batch, vloss, c, seed)
    torch.save({"state": ema.state_dict()}, os.path.join(ctx.ckpt, "dit.pt"))
    return {"params": N.n_params(model)}


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--ckpt", default="/tmp/priorgraph_ckpt")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny step counts, to test the code path")
    args = ap.parse_args()
    if args.smoke:
        CFG["data"] = {"n_base": 600, "n_ft": 300, "n_edit": 300}
        for k in CFG:
            if "steps" in CFG[k]:
                CFG[k]["steps"] = 3
    torch.set_num_threads(args.threads)
    os.makedirs(args.ckpt, exist_ok=True)
    LOG = os.path.join(args.ckpt, "train.log")
    ctx = Ctx(args.seed, args.ckpt)
    info = {}
    for st in args.stages.split(","):
        t = time.time()
        log(f"=== stage {st} (seed {args.seed})")
        if st == "export":
            import export
            for s2 in STAGES[:-1]:
                p = os.path.join(args.ckpt, f"stage_{s2}.json")
                if os.path.exists(p):
                    info[s2] = json.load(open(p))
            export.export_all(ctx, args, CFG, info)
            continue
        res = globals()["stage_" + st](ctx, args.seed)
        info[st] = {"seconds": round(time.time() - t, 1), "seed": args.seed, "threads": args.threads, **res}
        log(f"=== stage {st} done in {time.time() - t:.0f}s")
        json.dump(info[st], open(os.path.join(args.ckpt, f"stage_{st}.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
