"""shapes-image-encoder: a CLIP-vision-like image encoder for the shapes family (32×32 -> 64-d).

Objective (two InfoNCE terms, both CLIP's form, fixed temperature):
  * 2D shapes (base + fine-tune domain, 72 captions): the image embedding is contrasted against the
    FROZEN text embeddings of all 72 captions — the shipped shapes-t2i text encoder's pooled output,
    computed by running its ONNX through onnxruntime — so an image lands next to its caption
    (CLIP's image-text loss with the text tower frozen; the target is the caption's class).
  * 3D renders (render3d.py, same objects seen from two random cameras): two views of one object
    are a positive pair, the other objects in the batch negatives (multi-view contrastive), so the
    embedding of a render identifies the object across viewpoints.
image_embeds are L2-normalised (cosine similarity = dot product). last_hidden_state is the 4×4 grid
of the last conv layer (16 tokens × 96), for nodes that want tokens.

    nice -n 10 /work/.venvs/tools/bin/python tools/train/image_encoder.py --seed 0
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import members as M  # noqa: E402
import render3d as R  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

FOLDER = "shapes-image-encoder"
CFG = {"steps": 500, "batch_2d": 96, "batch_3d": 48, "lr": 2e-3, "tau_text": 0.07, "tau_view": 0.1,
       "n_base": 6000, "n_ft": 3000, "n_obj": 2000, "views": 4, "dim": 64}


class ImageEncoder(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(64, 80, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(80, 96, 3, stride=2, padding=1), nn.SiLU(),
        )
        self.head = nn.Sequential(nn.Linear(96, 128), nn.SiLU(), nn.Linear(128, dim))

    def forward(self, pixel_values):
        h = self.body(pixel_values)  # [b,96,4,4]
        tokens = h.flatten(2).transpose(1, 2)
        e = self.head(tokens.mean(1))
        return F.normalize(e, dim=-1), tokens


def tokenizer():
    d = os.path.join(M.MODELS, "shapes-t2i", "tokenizer")
    vocab = json.load(open(os.path.join(d, "vocab.json")))
    merges = [tuple(l.split()) for l in open(os.path.join(d, "merges.txt")).read().splitlines()[1:] if l]
    return Tokenizer(vocab, merges)


def text_embeds(texts):
    """Shipped shapes-t2i text encoder (ONNX) -> (last_hidden_state [n,16,64], pooler_output [n,64])."""
    ids = np.array(tokenizer()(texts), np.int32)
    s = ort.InferenceSession(os.path.join(M.MODELS, "shapes-t2i", "text_encoder", "model.onnx"),
                             providers=["CPUExecutionProvider"])
    h, p = s.run(None, {"input_ids": ids})
    return h, p


def load(path=None):
    m = ImageEncoder(CFG["dim"])
    m.load_state_dict(torch.load(path or os.path.join(M.CKPT, "image_encoder.pt"))["state"])
    return m.eval()


@torch.no_grad()
def embed(model, imgs, batch=512):
    x = torch.as_tensor(imgs)
    return torch.cat([model(x[i:i + batch])[0] for i in range(0, len(x), batch)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=CFG["steps"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    CFG["steps"] = a.steps
    torch.manual_seed(a.seed * 100 + 21)
    t0 = time.time()
    caps = D.all_captions()
    _, pooled = text_embeds(caps)
    # the raw pooled outputs of the 72 captions are nearly parallel (mean cosine 0.995): centre them
    # on their mean first (stored in config.json as text_center), then normalise
    center = pooled.mean(0)
    bank = F.normalize(torch.from_numpy(pooled - center), dim=-1)
    b_img, _, _, b_caps = D.make_dataset(CFG["n_base"], "base", a.seed * 1000 + 21)
    f_img, _, _, f_caps = D.make_dataset(CFG["n_ft"], "ft", a.seed * 1000 + 22)
    img2 = torch.from_numpy(np.concatenate([b_img, f_img]))
    lab2 = torch.tensor([caps.index(c) for c in b_caps + f_caps])
    mv, _, _ = R.make_multiview(CFG["n_obj"], CFG["views"], a.seed * 1000 + 23)
    mv = torch.from_numpy(mv)
    print(f"data {time.time() - t0:.1f}s: 2D {len(img2)}, 3D {mv.shape[0]}x{mv.shape[1]}", flush=True)

    model = ImageEncoder(CFG["dim"])
    print("params", sum(p.numel() for p in model.parameters()), flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=CFG["lr"], weight_decay=1e-4)
    g = torch.Generator().manual_seed(a.seed * 100 + 22)
    run = None
    for step in range(CFG["steps"]):
        lr = CFG["lr"] * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / CFG["steps"])))
        for pg in opt.param_groups:
            pg["lr"] = lr
        i2 = torch.randint(0, len(img2), (CFG["batch_2d"],), generator=g)
        e2, _ = model(img2[i2])
        l_text = F.cross_entropy(e2 @ bank.T / CFG["tau_text"], lab2[i2])
        io = torch.randint(0, len(mv), (CFG["batch_3d"],), generator=g)
        va = torch.randint(0, CFG["views"], (CFG["batch_3d"],), generator=g)
        vb = (va + torch.randint(1, CFG["views"], (CFG["batch_3d"],), generator=g)) % CFG["views"]
        ea, _ = model(mv[io, va])
        eb, _ = model(mv[io, vb])
        logits = ea @ eb.T / CFG["tau_view"]
        same = (io[:, None] == io[None, :]).float()  # duplicates of one object are positives too
        tgt = same / same.sum(1, keepdim=True)
        l_view = 0.5 * (torch.sum(-tgt * F.log_softmax(logits, 1), 1).mean()
                        + torch.sum(-tgt * F.log_softmax(logits.T, 1), 1).mean())
        loss = l_text + l_view
        opt.zero_grad()
        loss.backward()
        opt.step()
        v = (l_text.item(), l_view.item())
        run = v if run is None else tuple(0.98 * r + 0.02 * x for r, x in zip(run, v))
        if step % 100 == 0 or step == CFG["steps"] - 1:
            print(f"step {step} text {run[0]:.3f} view {run[1]:.3f} ({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    train_s = time.time() - t0

    # held-out checks: caption retrieval (top-1 over 72 captions) and cross-view retrieval
    hb, _, _, hcaps = D.make_dataset(1000, "base", a.seed * 1000 + 24)
    hf, _, _, fcaps = D.make_dataset(1000, "ft", a.seed * 1000 + 25)
    acc = {}
    for name, x, cs in [("base_caption_top1", hb, hcaps), ("ft_caption_top1", hf, fcaps)]:
        e = embed(model, x)
        acc[name] = float(((e @ bank.T).argmax(1) == torch.tensor([caps.index(c) for c in cs])).float().mean())
    hv, _, _ = R.make_multiview(500, 2, a.seed * 1000 + 26)
    ea, eb = embed(model, hv[:, 0]), embed(model, hv[:, 1])
    acc["view_retrieval_top1_of_500"] = float(((ea @ eb.T).argmax(1) == torch.arange(500)).float().mean())
    print("held-out", acc, flush=True)
    os.makedirs(M.CKPT, exist_ok=True)
    torch.save({"state": model.state_dict(), "cfg": CFG, "eval": acc}, os.path.join(M.CKPT, "image_encoder.pt"))

    out = os.path.join(M.MODELS, FOLDER)
    x = torch.from_numpy(np.concatenate([hb[:1], hv[:1, 0]]))
    M.export(model, (x,), os.path.join(out, "image_encoder", "model.onnx"), ["pixel_values"], ["image_embeds", "last_hidden_state"],
             "image_encoder")
    M.write_json(os.path.join(out, "image_encoder", "config.json"), {
        "_class_name": "CLIPVisionModelWithProjection", "image_size": 32, "num_channels": 3,
        "projection_dim": CFG["dim"], "hidden_size": 96, "tokens": 16,
        "priorgraph": {"input": "pixel_values f32 [b,3,32,32] in [-1,1] (no mean/std normalisation)",
                       "image_embeds": "L2-normalised [b,64]",
                       "last_hidden_state": "[b,16,96]: the 4x4 grid of the last conv layer",
                       "objective": "InfoNCE vs frozen shapes-t2i pooled caption embeddings (2D shapes) + "
                                    "multi-view InfoNCE (render3d objects)",
                       "text_space": "image_embeds align with normalise(shapes-t2i pooler_output - text_center)",
                       "text_center": [round(float(v), 6) for v in center],
                       "held_out": acc}})
    M.write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "CLIPVisionModelWithProjection", "_diffusers_version": "0.30.0",
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "priorgraph": {"role": "image-encoder", "latent_space": None, "input": "pixel_values [b,3,32,32] in [-1,1]"}})
    M.record("image-encoder", {**CFG, "seed": a.seed}, {"seconds": round(train_s, 1), "held_out": acc},
             f"nice -n 10 /work/.venvs/tools/bin/python tools/train/image_encoder.py --seed {a.seed}")
    print("exported", os.path.getsize(os.path.join(out, "image_encoder", "model.onnx")), "bytes", flush=True)


if __name__ == "__main__":
    main()
