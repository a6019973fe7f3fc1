"""Quick PyTorch check of the trained family (the real evaluation is done in TypeScript).

    /usr/bin/python3 tools/train/quick_eval.py [--ckpt /tmp/priorgraph_ckpt] [--n 6] [--steps 20]

Samples with DDIM (eta 0, 'leading' spacing) from the PyTorch checkpoints and judges the decoded
images with the eval classifier:
  * t2i on the 24 fine-tune-domain prompts ("... on a light background"): standard CFG (own
    unconditional branch) vs prior swap (base UNet as the unconditional branch) vs prior swap with
    the DiT prior (closest-variance timestep, v -> eps), at several guidance scales;
  * unconditional samples of base, DiT and the t2i model's own empty-prompt branch vs the base data;
  * the editor on held-out pairs, standard two-condition CFG vs prior swap.
Metrics: shape / colour / both accuracy (against the prompt), mean border brightness (the domain
statistic: base data ~0.2, fine-tune data ~0.83), FD of classifier features against the real
fine-tune-domain (or base) data. Writes tools/train/quick_eval.json.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import diffusion as DF  # noqa: E402
import nets as N  # noqa: E402
from train_all import CFG, _Joint  # noqa: E402
from tokenizer import make_tokenizer  # noqa: E402


def fd(f1, mu2, cov2):
    mu1, cov1 = f1.mean(0), np.cov(f1, rowvar=False)
    w, v = np.linalg.eigh(cov1)
    s1h = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(s1h @ cov2 @ s1h)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def stats(f):
    return f.mean(0), np.cov(f, rowvar=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/tmp/priorgraph_ckpt")
    ap.add_argument("--n", type=int, default=6, help="samples per prompt")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck = args.ckpt
    t_start = time.time()
    ld = lambda n: torch.load(os.path.join(ck, n))
    vae = N.VAE(ch=tuple(CFG["vae"]["ch"]))
    v = ld("vae.pt")
    vae.load_state_dict(v["state"])
    sf = v["scaling_factor"]
    cls = N.Classifier()
    cls.load_state_dict(ld("cls.pt")["state"])
    tok = make_tokenizer(D.all_captions() + D.all_instructions())
    ch, dim = tuple(CFG["base"]["ch"]), CFG["t2i"]["text_dim"]
    base = N.UNet(ch=ch)
    base.load_state_dict(ld("base.pt")["state"])
    t2i = _Joint(N.UNet(ch=ch, ctx_dim=dim), N.TextEncoder(len(tok.vocab), tok.eot, d=dim))
    s = ld("t2i.pt")
    t2i.unet.load_state_dict(s["unet"])
    t2i.te.load_state_dict(s["te"])
    edit = _Joint(N.UNet(in_ch=8, ch=ch, ctx_dim=dim), N.TextEncoder(len(tok.vocab), tok.eot, d=dim))
    s = ld("edit.pt")
    edit.unet.load_state_dict(s["unet"])
    edit.te.load_state_dict(s["te"])
    c = CFG["dit"]
    dit = N.DiT(d=c["d"], depth=c["depth"], patch=c["patch"])
    dit.load_state_dict(ld("dit.pt")["state"])
    for m in [vae, cls, base, t2i, edit, dit]:
        m.eval()
    acp = DF.alphas_cumprod("scaled_linear")
    acp_dit = DF.alphas_cumprod("squaredcos_cap_v2")

    # real reference features
    def feats(x):
        with torch.no_grad():
            return torch.cat([cls(x[i:i + 500])[2] for i in range(0, len(x), 500)]).numpy().astype(np.float64)
    real_ft = D.make_dataset(3000, "ft", args.seed * 1000 + 951)[0]
    real_base = D.make_dataset(3000, "base", args.seed * 1000 + 952)[0]
    st_ft, st_base = stats(feats(torch.from_numpy(real_ft))), stats(feats(torch.from_numpy(real_base)))

    def judge(lat, shape_idx=None, color_idx=None, ref=None):
        with torch.no_grad():
            img = vae.decode(lat / sf).clamp(-1, 1)
            ls, lc, f = cls(img)
        r = {"border_brightness": float(D.border_brightness(img.numpy()).mean())}
        if shape_idx is not None:
            ok_s = (ls.argmax(1) == shape_idx).numpy()
            ok_c = (lc.argmax(1) == color_idx).numpy()
            r.update({"shape_acc": float(ok_s.mean()), "color_acc": float(ok_c.mean()), "both_acc": float((ok_s & ok_c).mean())})
        else:
            r["classifier_confidence"] = float((torch.softmax(ls, 1).max(1)[0] * torch.softmax(lc, 1).max(1)[0]).mean())
        if ref is not None:
            r["fd"] = fd(f.numpy().astype(np.float64), *ref)
        return {k: round(v, 4) for k, v in r.items()}

    results = {"settings": {"sampler": f"DDIM {args.steps} steps, eta 0", "n_per_prompt": args.n, "seed": args.seed}}

    def dit_eps(x, t):
        tp = DF.nearest_t(acp_dit, acp[t])
        a = acp_dit[tp]
        vpred = dit(x, torch.full((x.shape[0],), float(tp)))[:, :4]
        return a.sqrt() * vpred + (1 - a).sqrt() * x

    # ---- t2i on the fine-tune-domain prompts
    prompts = [(si, ci) for si in range(len(D.SHAPES)) for ci in range(len(D.COLORS))]
    caps = [D.caption(D.SHAPES[si], D.COLORS[ci], "light") for si, ci in prompts for _ in range(args.n)]
    sidx = torch.tensor([si for si, ci in prompts for _ in range(args.n)])
    cidx = torch.tensor([ci for si, ci in prompts for _ in range(args.n)])
    with torch.no_grad():
        hc = t2i.te(torch.tensor(tok(caps)))[0]
        hu = t2i.te(torch.tensor(tok([""] * len(caps))))[0]
    B = len(caps)

    def t2i_fn(w, prior):
        def fn(x, t):
            tt = torch.full((B,), float(t))
            ec = t2i.unet(x, tt, hc)
            if w == 1.0:
                return ec
            if prior == "own":
                eu = t2i.unet(x, tt, hu)
            elif prior == "base":
                eu = base(x, tt)
            else:
                eu = dit_eps(x, t)
            return eu + w * (ec - eu)
        return fn

    t2i_res = {}
    for w, prior in [(1.0, "own"), (3.0, "own"), (3.0, "base"), (3.0, "dit"), (5.0, "own"), (5.0, "base")]:
        t = time.time()
        g = torch.Generator().manual_seed(args.seed * 1000 + 5)
        lat = DF.ddim_sample(t2i_fn(w, prior), (B, 4, 8, 8), acp, args.steps, g)
        key = f"w{w:g}_" + ("cond_only" if w == 1.0 else {"own": "cfg", "base": "prior_swap_base", "dit": "prior_swap_dit"}[prior])
        t2i_res[key] = judge(lat, sidx, cidx, st_ft)
        print(key, t2i_res[key], f"{time.time() - t:.0f}s", flush=True)
    results["t2i_ft_prompts"] = t2i_res

    # ---- unconditional quality vs the base data
    unc = {}
    Bu = 96
    with torch.no_grad():
        hu2 = t2i.te(torch.tensor(tok([""] * Bu)))[0]
    for name, fn in [("base_unet", lambda x, t: base(x, torch.full((Bu,), float(t)))),
                     ("dit", dit_eps),
                     ("t2i_empty_prompt", lambda x, t: t2i.unet(x, torch.full((Bu,), float(t)), hu2))]:
        g = torch.Generator().manual_seed(args.seed * 1000 + 6)
        lat = DF.ddim_sample(fn, (Bu, 4, 8, 8), acp, args.steps, g)
        r = judge(lat, ref=st_base)
        r["fd_to_ft_data"] = judge(lat, ref=st_ft)["fd"]
        unc[name] = r
        print("uncond", name, r, flush=True)
    unc["real_base_data"] = {"border_brightness": round(float(D.border_brightness(real_base).mean()), 4),
                             "fd": round(fd(feats(torch.from_numpy(real_base[:Bu])), *st_base), 4)}
    unc["real_ft_data"] = {"border_brightness": round(float(D.border_brightness(real_ft).mean()), 4)}
    results["unconditional_vs_base_data"] = unc

    # ---- editor
    src, tgt, ins, ss, sc, ts, tc = D.make_edit_pairs(64, args.seed * 1000 + 953)
    with torch.no_grad():
        src_lat = vae.encode(torch.from_numpy(src))[0]
        he = edit.te(torch.tensor(tok(ins)))[0]
        he0 = edit.te(torch.tensor(tok([""] * len(ins))))[0]
    Be = len(ins)
    zeros = torch.zeros_like(src_lat)

    def edit_fn(gt, gi, prior):
        def fn(x, t):
            tt = torch.full((Be,), float(t))
            e_full = edit.unet(torch.cat([x, src_lat], 1), tt, he)
            e_img = edit.unet(torch.cat([x, src_lat], 1), tt, he0)
            e_unc = edit.unet(torch.cat([x, zeros], 1), tt, he0) if prior == "own" else base(x, tt)
            return e_unc + gi * (e_img - e_unc) + gt * (e_full - e_img)
        return fn

    ed = {}
    for gt, gi, prior in [(7.5, 1.5, "own"), (7.5, 1.5, "base")]:
        g = torch.Generator().manual_seed(args.seed * 1000 + 7)
        lat = DF.ddim_sample(edit_fn(gt, gi, prior), (Be, 4, 8, 8), acp, args.steps, g)
        key = f"text{gt:g}_image{gi:g}_" + ("cfg" if prior == "own" else "prior_swap_base")
        ed[key] = judge(lat, torch.from_numpy(ts), torch.from_numpy(tc), st_ft)
        print("edit", key, ed[key], flush=True)
    results["edit"] = ed
    results["seconds"] = round(time.time() - t_start, 1)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quick_eval.json")
    json.dump(results, open(out, "w"), indent=2)
    print("wrote", out, flush=True)


if __name__ == "__main__":
    main()
