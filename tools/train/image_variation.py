"""shapes-image-variation: Versatile-Diffusion style image variations, fine-tuned from shapes-t2i.

The UNet is conditioned on an image embedding only (no text): the cross-attention context is
image_projection(image_embeds) -> TOKENS tokens of 64 (a learned linear map of the shapes-image-encoder
embedding of the input image). Unconditional = a zero context (P_UNCOND of the training examples).
Data: the fine-tune domain's 2D shapes (data.py 'ft', the domain shapes-t2i was fine-tuned on), each
image its own target (as image-variation models are trained: reconstruct x from its embedding).
Staged fine-tune from the shipped shapes-t2i UNet (as Versatile Diffusion grows from SD in stages):
  stage 1: only the projection and the cross-attention layers train (the text-to-image UNet frozen);
  stage 2: everything trains.
Prior for prior swap: the same shapes-t2i UNet with its null text.

    nice -n 10 /work/.venvs/tools/bin/python tools/train/image_variation.py --seed 0
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import diffusion as DF  # noqa: E402
import export as E  # noqa: E402
import from_onnx as FO  # noqa: E402
import image_encoder as IE  # noqa: E402
import members as M  # noqa: E402
import nets as N  # noqa: E402
import novel_views as NV  # noqa: E402

FOLDER = "shapes-image-variation"
CFG = {"n": 3000, "domain": "ft", "tokens": 4, "stage1_steps": 300, "stage2_steps": 700, "batch": 64, "lr": 1e-3,
       "ema": 0.995, "p_uncond": 0.1, "init": "shapes-t2i"}


class ImageProjection(nn.Module):
    def __init__(self, dim=64, tokens=4):
        super().__init__()
        self.lin = nn.Linear(dim, tokens * dim)
        self.tokens, self.dim = tokens, dim

    def forward(self, image_embeds):
        return self.lin(image_embeds).reshape(-1, self.tokens, self.dim)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply both stages' steps (smoke runs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=CFG["n"], help="fewer images for a smoke run")
    a = ap.parse_args()
    CFG["n"] = a.n
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed * 100 + 61)
    N.Lin.conv = False
    s1, s2 = max(1, int(CFG["stage1_steps"] * a.scale)), max(1, int(CFG["stage2_steps"] * a.scale))
    imgs, _, _, _ = D.make_dataset(CFG["n"], CFG["domain"], a.seed * 1000 + 61)
    lat, _ = M.encode_images(imgs)
    emb = IE.embed(IE.load(), imgs)
    t2i = FO.unet("shapes-t2i", ctx_dim=64)
    unet = N.UNet(in_ch=4, ch=(32, 64), ctx_dim=64)
    N.init_from_base(unet, t2i)
    proj = ImageProjection(tokens=CFG["tokens"])
    acp = DF.alphas_cumprod("scaled_linear")
    B = CFG["batch"]

    def loss_fn(g):
        i = torch.randint(0, len(lat), (B,), generator=g)
        ctx = proj(emb[i]) * (torch.rand(B, generator=g) >= CFG["p_uncond"]).float()[:, None, None]
        t = torch.randint(0, DF.T, (B,), generator=g)
        eps = torch.randn(lat[i].shape, generator=g)
        return F.mse_loss(unet(DF.add_noise(lat[i], eps, acp, t), t.float(), ctx), eps)

    stage1 = list(proj.parameters()) + [p for n, p in unet.named_parameters() if n.startswith("x_")]
    everything = list(proj.parameters()) + list(unet.parameters())
    c = {**CFG, "steps": s1 + s2, "trainable": lambda step: stage1 if step < s1 else everything}
    ema, secs = NV.train({"unet": unet, "proj": proj}, loss_fn, c, a.seed, "image-variation")
    torch.save({"unet": ema["unet"].state_dict(), "proj": ema["proj"].state_dict()},
               os.path.join(M.CKPT, "image_variation.pt"))

    out = os.path.join(M.MODELS, FOLDER)
    g = torch.Generator().manual_seed(6)
    e = F.normalize(torch.randn(2, 64, generator=g), dim=-1)
    M.export(ema["proj"], (e,), os.path.join(out, "image_projection", "model.onnx"), ["image_embeds"],
             ["encoder_hidden_states"], "image_variation_projection")
    with torch.no_grad():
        ehs = ema["proj"](e)
    x = torch.randn(2, 4, 8, 8, generator=g)
    M.export(N.UNetCondExport(ema["unet"]), (x, torch.tensor([981.0, 1.0]), ehs),
             os.path.join(out, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
             "image_variation_unet")
    ucfg = E._unet_config(4, 64, "float32", (32, 64), "Versatile-Diffusion image variation: encoder_hidden_states = "
                          f"image_projection(image_embeds), [b,{CFG['tokens']},64]; no text")
    ucfg["priorgraph"]["fine_tuned_from"] = CFG["init"]
    M.write_json(os.path.join(out, "unet", "config.json"), ucfg)
    M.write_json(os.path.join(out, "image_projection", "config.json"), {
        "in_features": 64, "tokens": CFG["tokens"], "out_features": 64,
        "priorgraph": {"inputs": {"image_embeds": "[b,64] shapes-image-encoder output (L2-normalised)"}}})
    NV.scheduler_and_index(out, {
        "_class_name": "VersatileDiffusionImageVariationPipeline", "role": "image-variation",
        "conditioning": "image-embedding", "fine_tuned_from": CFG["init"], "prior": "../shapes-t2i",
        "prior_condition": "null text (\"\")", "image_encoder": "../shapes-image-encoder",
        "image_projection": "image_projection/model.onnx", "vae": "../shapes-t2i",
        "unconditional": "zero encoder_hidden_states", "condition_dropout": CFG["p_uncond"],
        "stages": {"1": f"{s1} steps: image_projection + cross-attention only", "2": f"{s2} steps: all weights"}})
    M.record("image-variation", {k: v for k, v in CFG.items()} | {"seed": a.seed, "stage1_steps": s1,
                                                                   "stage2_steps": s2},
             {"seconds": round(secs, 1)},
             f"nice -n 10 /work/.venvs/tools/bin/python tools/train/image_variation.py --seed {a.seed}")
    print("exported", sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs), "bytes")


if __name__ == "__main__":
    main()
