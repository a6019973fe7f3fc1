"""Writes tools/train/samples.png from the PyTorch checkpoints (DDIM 25, eta 0).

    /usr/bin/python3 tools/train/sample_grid.py [--ckpt /tmp/priorgraph_ckpt] [--seed 0]

Four blocks of 4×6 images (32 px), separated by black bars: (1) t2i, the 24 fine-tune prompts
(rows circle/square/triangle/cross, columns red…orange) with standard CFG w=5; (2) unconditional
samples of the base UNet; (3) real fine-tune-domain images; (4) their VAE reconstructions.
"""
import argparse
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import diffusion as DF  # noqa: E402
import nets as N  # noqa: E402
from tokenizer import make_tokenizer  # noqa: E402
from train_all import CFG, _Joint  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/tmp/priorgraph_ckpt")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    ld = lambda n: torch.load(os.path.join(a.ckpt, n))  # noqa: E731
    vae = N.VAE(ch=tuple(CFG["vae"]["ch"]))
    v = ld("vae.pt")
    vae.load_state_dict(v["state"])
    sf = v["scaling_factor"]
    tok = make_tokenizer(D.all_captions() + D.all_instructions())
    ch, dim = tuple(CFG["base"]["ch"]), CFG["t2i"]["text_dim"]
    base = N.UNet(ch=ch)
    base.load_state_dict(ld("base.pt")["state"])
    t2i = _Joint(N.UNet(ch=ch, ctx_dim=dim), N.TextEncoder(len(tok.vocab), tok.eot, d=dim))
    s = ld("t2i.pt")
    t2i.unet.load_state_dict(s["unet"])
    t2i.te.load_state_dict(s["te"])
    for m in [vae, base, t2i]:
        m.eval()
    acp = DF.alphas_cumprod("scaled_linear")
    caps = [D.caption(sh, c, "light") for sh in D.SHAPES for c in D.COLORS]
    with torch.no_grad():
        hc = t2i.te(torch.tensor(tok(caps)))[0]
        hu = t2i.te(torch.tensor(tok([""] * len(caps))))[0]
        g = torch.Generator().manual_seed(a.seed * 1000 + 8)

        def cfg(x, t):
            tt = torch.full((len(caps),), float(t))
            eu, ec = t2i.unet(x, tt, hu), t2i.unet(x, tt, hc)
            return eu + 5.0 * (ec - eu)

        b1 = vae.decode(DF.ddim_sample(cfg, (24, 4, 8, 8), acp, 25, g) / sf)
        b2 = vae.decode(DF.ddim_sample(lambda x, t: base(x, torch.full((24,), float(t))), (24, 4, 8, 8), acp, 25, g) / sf)
        real = torch.from_numpy(D.make_dataset(24, "ft", a.seed * 1000 + 954)[0])
        b4 = vae.decode(vae.encode(real)[0])
    blocks = []
    for b in [b1, b2, real, b4]:
        x = ((b.clamp(-1, 1) + 1) * 127.5).round().byte().numpy()  # [24,3,32,32]
        x = x.reshape(4, 6, 3, 32, 32).transpose(0, 3, 1, 4, 2).reshape(128, 192, 3)
        blocks.append(x)
    bar = np.zeros((4, 192, 3), np.uint8)
    img = np.concatenate([blocks[0], bar, blocks[1], bar, blocks[2], bar, blocks[3]])
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples.png")
    Image.fromarray(img).save(out)
    print("wrote", out, img.shape)


if __name__ == "__main__":
    main()
