"""The video pair of the shapes family: a text-to-video base ("VideoCrafter") and an image+text-to-video
fine-tune ("DynamiCrafter"), for prior-swap two-condition guidance on video (arXiv 2503.20240, §DynamiCrafter).

    nice -n 10 /work/.venvs/tools/bin/python tools/train/video.py --seed 0            # base, i2v, export
    nice -n 10 /work/.venvs/tools/bin/python tools/train/video.py --stages export      # re-export from checkpoints

Clips: 8 frames of 32x32 (any 1..16 frames at inference), the procedural shapes moving left / right / up /
down, spinning, or changing colour, with captions that say so ("a red circle moving left", "a green cross
spins", "a blue square turning yellow"). Captions go through the SHIPPED shapes-t2i tokenizer and text encoder
(frozen); its context is 16 tokens and the motion words are not in its vocabulary (they split into byte-level
pieces), so the background words of the image captions are left out — 14 tokens would not hold both.
Frames are encoded by the SHIPPED VAE (members.encode_images), so both models live in shapes-vae-v1.

Networks: the image UNet of nets.py applied to every frame (frames folded into the batch), with a temporal
self-attention layer (learned frame-position embedding up to 16 frames, zero-initialised output projection)
after each of its five blocks. ONNX interface:
    sample [B, C_in, T, 8, 8], timestep [B] float32, encoder_hidden_states [B, 16, 64] -> out_sample [B, 4, T, 8, 8]
* base (C_in 4): spatial layers initialised from the shipped shapes-t2i UNet (from_onnx.unet, replay-checked),
  trained on base-domain clips (dark backgrounds), caption dropped to "" 10% of the time.
* i2v (C_in 8): initialised from the video base (conv_in widened with zeros), trained on clips in the SHIFTED
  fine-tune domain (light pastel backgrounds, small shapes). Channels 4..7 hold the first frame's latent (VAE
  mean, NOT scaled — as the InstructPix2Pix editor) repeated over T. DynamiCrafter's image context (CLIP image
  tokens through a query transformer) is read here as a learned projection of that first-frame latent inside
  the network: 2x2 patches -> 16 tokens of width 64, appended to the text tokens for cross-attention. So the
  "no image" input is simply the zeroed concat latent. Dropout 5% text, 5% image, 5% both.
"""
import argparse
import base64
import copy
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
import diffusion as DF  # noqa: E402
import export as E  # noqa: E402
import from_onnx  # noqa: E402
import members  # noqa: E402
import nets as N  # noqa: E402
import train_all as TA  # noqa: E402
import tokenizer as T  # noqa: E402

FRAMES, MAX_FRAMES = 8, 16
MOTIONS = ["left", "right", "up", "down", "spins", "color"]
MOTION_P = [0.15, 0.15, 0.15, 0.15, 0.2, 0.2]
CFG = {
    "data": {"n_base": 2400, "n_ft": 1200, "frames": FRAMES, "motion_p": dict(zip(MOTIONS, MOTION_P)),
             "speed_px_per_frame": [1.2, 2.0], "spin_rad_per_frame": [0.2, 0.35], "base_radius": [5.0, 9.0]},
    "base": {"steps": 1600, "batch": 12, "lr": 1e-3, "ema": 0.99, "p_uncond": 0.10},
    "i2v": {"steps": 500, "batch": 12, "lr": 1e-3, "ema": 0.99, "p_drop_text": 0.05, "p_drop_image": 0.05,
            "p_drop_both": 0.05},
}
T2I = os.path.join(members.MODELS, "shapes-t2i")


# ---------------------------------------------------------------- clips
def clip_caption(shape, color, motion, to_color=None):
    art = "an" if color[0] in "aeiou" else "a"
    if motion == "spins":
        return f"{art} {color} {shape} spins"
    if motion == "color":
        return f"{art} {color} {shape} turning {to_color}"
    return f"{art} {color} {shape} moving {motion}"


def sample_clip(rng, domain, frames=FRAMES, motion=None, shape=None, color=None):
    """One clip: (frames [T,3,32,32] in [0,1], info dict with shape, color, motion, caption, centroid track)."""
    c = CFG["data"]
    s = D.sample_scene(rng, domain)
    s["shape"], s["color"] = shape or s["shape"], color or s["color"]
    if domain == "base":  # the image base's radius reaches 11 px: too large to travel across 32 px
        s["r"] = rng.uniform(*c["base_radius"])
    motion = motion or MOTIONS[rng.choice(len(MOTIONS), p=MOTION_P)]
    if motion == "spins" and s["shape"] == "circle":  # a spinning circle looks still
        s["shape"] = ["square", "triangle", "cross"][rng.integers(3)]
    r, margin = s["r"], s["r"] + 2.5
    span = D.SIZE - 2 * margin
    vel = np.zeros(2)
    if motion in ("left", "right", "up", "down"):
        v = min(rng.uniform(*c["speed_px_per_frame"]), span / (frames - 1))
        axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[motion]
        vel[axis] = sign * v
        start = rng.uniform(margin, max(margin, D.SIZE - margin - v * (frames - 1)))
        pos = start if sign > 0 else D.SIZE - start
        if axis == 0:
            s["cx"] = pos
        else:
            s["cy"] = pos
    omega = rng.uniform(*c["spin_rad_per_frame"]) * rng.choice([-1, 1]) if motion == "spins" else 0.0
    angle0 = rng.uniform(0, 2 * np.pi) if motion == "spins" else 0.0
    to_color = None
    if motion == "color":
        to_color = [x for x in D.COLORS if x != s["color"]][rng.integers(len(D.COLORS) - 1)]
    out = np.empty((frames, 3, D.SIZE, D.SIZE), np.float32)
    track = []
    for f in range(frames):
        sf = dict(s)
        sf["cx"], sf["cy"] = s["cx"] + vel[0] * f, s["cy"] + vel[1] * f
        sf["angle"] = angle0 + omega * f
        if to_color:
            u = f / (frames - 1)
            sf["rgb"] = tuple((1 - u) * a + u * b for a, b in zip(D.COLOR_RGB[s["color"]], D.COLOR_RGB[to_color]))
        out[f] = D.render(sf)
        track.append((sf["cx"], sf["cy"]))
    info = {"shape": s["shape"], "color": s["color"], "motion": motion, "to_color": to_color,
            "caption": clip_caption(s["shape"], s["color"], motion, to_color), "track": track}
    return out, info


def make_clips(n, domain, seed, frames=FRAMES):
    """[n,T,3,32,32] in [-1,1] and the clips' info dicts."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, frames, 3, D.SIZE, D.SIZE), np.float32)
    infos = []
    for i in range(n):
        x[i], info = sample_clip(rng, domain, frames)
        infos.append(info)
    return x * 2 - 1, infos


def all_clip_captions():
    caps = []
    for s in D.SHAPES:
        for c in D.COLORS:
            caps += [clip_caption(s, c, m) for m in ["left", "right", "up", "down"]]
            if s != "circle":
                caps.append(clip_caption(s, c, "spins"))
            caps += [clip_caption(s, c, "color", t) for t in D.COLORS if t != c]
    return caps


def encode_clips(x):
    """[n,T,3,32,32] -> scaled latents [n,4,T,8,8] through the shipped VAE; also the scaling factor."""
    n, t = x.shape[:2]
    lat, sf = members.encode_images(x.reshape(n * t, 3, D.SIZE, D.SIZE))
    return lat.reshape(n, t, 4, 8, 8).permute(0, 2, 1, 3, 4).contiguous(), sf


def tokenizer():
    d = os.path.join(T2I, "tokenizer")
    vocab = json.load(open(os.path.join(d, "vocab.json")))
    merges = [tuple(l.split()) for l in open(os.path.join(d, "merges.txt")).read().splitlines()[1:] if l]
    return T.Tokenizer(vocab, merges)


def text_embeddings(captions):
    """Shipped (frozen) shapes-t2i text encoder: caption -> last_hidden_state [16, 64]."""
    tok = tokenizer()
    for cap in captions:  # the caption must fit the 16-token context (SOT + 14 + EOT): nothing truncated
        n = sum(len(T._bpe(T._word_symbols(w), tok.ranks)) for w in T._PAT.findall(cap.lower()))
        if n > 14:
            raise ValueError(f"caption of {n} tokens does not fit the 16-token context: {cap!r}")
    s = ort.InferenceSession(os.path.join(T2I, "text_encoder", "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.array(tok(captions), np.int32)
    return torch.from_numpy(s.run(["last_hidden_state"], {"input_ids": ids})[0])


# ---------------------------------------------------------------- network
class TemporalAttn(nn.Module):
    """Self-attention across frames at every spatial position; learned frame positions up to MAX_FRAMES;
    the output projection starts at zero, so a fresh layer leaves the image UNet unchanged."""

    def __init__(self, ch, heads=4, max_frames=MAX_FRAMES):
        super().__init__()
        self.norm = nn.LayerNorm(ch)
        self.pos = nn.Parameter(torch.randn(max_frames, ch) * 0.02)
        self.qkv = N.Lin(ch, 3 * ch)
        self.proj = N.Lin(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.heads = heads

    def forward(self, h, frames):
        bt, c, hh, ww = h.shape
        x = h.reshape(-1, frames, c, hh * ww).permute(0, 3, 1, 2).reshape(-1, frames, c)  # [B*HW, T, c]
        q, k, v = self.qkv(self.norm(x) + self.pos[:frames]).chunk(3, dim=2)
        x = x + self.proj(N.attention(q, k, v, self.heads))
        return x.reshape(-1, hh * ww, frames, c).permute(0, 2, 3, 1).reshape(bt, c, hh, ww)


class VideoUNet(nn.Module):
    """sample [B, C_in, T, 8, 8] -> [B, 4, T, 8, 8]. image_ctx: C_in 8, image tokens from channels 4..7."""

    def __init__(self, in_ch=4, ch=(32, 64), ctx_dim=64, image_ctx=False):
        super().__init__()
        a, b = ch
        self.unet = N.UNet(in_ch=in_ch, ch=ch, ctx_dim=ctx_dim)
        self.temporal = nn.ModuleDict({"d1": TemporalAttn(a), "d2": TemporalAttn(b), "m": TemporalAttn(b),
                                       "u2": TemporalAttn(b), "u1": TemporalAttn(a)})
        self.image_ctx = image_ctx
        if image_ctx:
            self.img_proj = N.Lin(16, ctx_dim)  # one 2x2 patch of the 4-channel latent -> a context token
            self.img_pos = nn.Parameter(torch.randn(16, ctx_dim) * 0.02)
            self.img_norm = nn.LayerNorm(ctx_dim)

    def forward(self, sample, timestep, ctx):
        b, c, frames, h, w = sample.shape
        x = sample.permute(0, 2, 1, 3, 4).reshape(-1, c, h, w)  # frames folded into the batch
        if self.image_ctx:
            img = sample[:, 4:8, 0]  # the first frame's latent (the same at every frame)
            p = img.reshape(-1, 4, 4, 2, 4, 2).permute(0, 2, 4, 1, 3, 5).reshape(-1, 16, 16)
            ctx = torch.cat([ctx, self.img_norm(self.img_proj(p)) + self.img_pos], dim=1)
        ctx = ctx[:, None].expand(-1, frames, -1, -1).reshape(-1, ctx.shape[1], ctx.shape[2])
        t = timestep.float()[:, None].expand(-1, frames).reshape(-1)
        out = self.unet(x, t, ctx, between=lambda name, hh: self.temporal[name](hh, frames))
        return out.reshape(-1, frames, 4, h, w).permute(0, 2, 1, 3, 4)


# ---------------------------------------------------------------- training
LOG = None


def log(*a):
    msg = time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a)
    print(msg, flush=True)
    if LOG:
        with open(LOG, "a") as f:
            f.write(msg + "\n")


def train(name, model, batch_fn, c, seed):
    ema = copy.deepcopy(model)
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(seed * 100 + {"base": 51, "i2v": 52}[name])
    acp = DF.alphas_cumprod("scaled_linear")
    run, t0 = 0.0, time.time()
    for step in range(c["steps"]):
        TA.set_lr(opt, TA.lr_at(step, c["steps"], c["lr"], warm=50))
        x0, xin_extra, ctx = batch_fn(g)
        t = torch.randint(0, DF.T, (x0.shape[0],), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = acp[t].view(-1, 1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        if xin_extra is not None:
            xt = torch.cat([xt, xin_extra], 1)
        loss = F.mse_loss(model(xt, t.float(), ctx), eps)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        TA.ema_update(ema, model, c["ema"] if step > 50 else 0.0)
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        if step % 50 == 0 or step == c["steps"] - 1:
            log(f"{name} step {step} loss {run:.4f} ({(time.time() - t0) / (step + 1):.3f}s/step)")
    return ema


def _caption_table(infos):
    caps = sorted(set(i["caption"] for i in infos))
    emb = text_embeddings(caps + [""])
    index = {cp: k for k, cp in enumerate(caps)}
    return emb[:-1], emb[-1], torch.tensor([index[i["caption"]] for i in infos])


def stage_base(ck, seed):
    c = CFG["base"]
    torch.manual_seed(seed * 100 + 41)
    t0 = time.time()
    x, infos = make_clips(CFG["data"]["n_base"], "base", seed * 1000 + 41)
    lat, sf = encode_clips(x)
    emb, empty, cap = _caption_table(infos)
    log(f"base clips {tuple(lat.shape)} rendered + encoded in {time.time() - t0:.0f}s; {len(emb)} captions")
    model = VideoUNet()
    model.unet.load_state_dict(from_onnx.unet("shapes-t2i", ctx_dim=64).state_dict())
    log("video base params", N.n_params(model), "(spatial layers from shapes-t2i)")

    def batch(g):
        idx = torch.randint(0, len(lat), (c["batch"],), generator=g)
        ctx = emb[cap[idx]].clone()
        ctx[torch.rand(c["batch"], generator=g) < c["p_uncond"]] = empty
        return lat[idx], None, ctx

    ema = train("base", model, batch, c, seed)
    TA.save_atomic({"state": ema.state_dict(), "scaling_factor": sf}, os.path.join(ck, "video_base.pt"))
    return {"params": N.n_params(model), "seconds": round(time.time() - t0, 1)}


def load_base(ck):
    m = VideoUNet()
    m.load_state_dict(torch.load(TA.wait_for(os.path.join(ck, "video_base.pt")))["state"])
    return m


def stage_i2v(ck, seed):
    c = CFG["i2v"]
    torch.manual_seed(seed * 100 + 42)
    t0 = time.time()
    x, infos = make_clips(CFG["data"]["n_ft"], "ft", seed * 1000 + 42)
    lat, sf = encode_clips(x)
    first = lat[:, :, :1] / sf  # the first frame's VAE mean, unscaled (as the editor's image latent)
    emb, empty, cap = _caption_table(infos)
    log(f"i2v clips {tuple(lat.shape)} rendered + encoded in {time.time() - t0:.0f}s")
    model = VideoUNet(in_ch=8, image_ctx=True)
    sd = model.state_dict()
    for k, v in load_base(ck).state_dict().items():
        if k == "unet.conv_in.weight":  # widen: the extra (image) input channels start at zero
            w = torch.zeros_like(sd[k])
            w[:, :4] = v
            sd[k] = w
        else:
            sd[k] = v
    model.load_state_dict(sd)
    log("video i2v params", N.n_params(model), "(initialised from the video base)")
    pt, pi, pb = c["p_drop_text"], c["p_drop_image"], c["p_drop_both"]

    def batch(g):
        idx = torch.randint(0, len(lat), (c["batch"],), generator=g)
        ctx, img = emb[cap[idx]].clone(), first[idx].clone()
        r = torch.rand(c["batch"], generator=g)
        drop_text = (r < pt) | ((r >= pt + pi) & (r < pt + pi + pb))
        drop_img = ((r >= pt) & (r < pt + pi)) | ((r >= pt + pi) & (r < pt + pi + pb))
        ctx[drop_text] = empty
        img[drop_img] = 0.0
        return lat[idx], img.expand(-1, -1, FRAMES, -1, -1), ctx

    ema = train("i2v", model, batch, c, seed)
    TA.save_atomic({"state": ema.state_dict(), "scaling_factor": sf}, os.path.join(ck, "video_i2v.pt"))
    return {"params": N.n_params(model), "seconds": round(time.time() - t0, 1)}


# ---------------------------------------------------------------- export
class _Export(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.m(sample, timestep, encoder_hidden_states)


DYN = {"sample": {0: "batch", 2: "frames"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"},
       "out_sample": {0: "batch", 2: "frames"}}


def _extra_fixture(module, path, tag, feeds):
    """A second replay fixture at another frame count (the frame axis is dynamic)."""
    with torch.no_grad():
        out = module(*feeds.values())
    fx = {"model": os.path.abspath(path),
          "inputs": {k: {"dtype": str(v.dtype).replace("torch.", ""), "dims": list(v.shape),
                         "data": v.flatten().tolist()} for k, v in feeds.items()},
          "outputs": {"out_sample": {"dims": list(out.shape), "data": out.flatten().tolist()}}}
    members.write_json(os.path.join(members.CHECK_DIR, tag + ".json"), fx)
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = s.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    err = float(np.abs(got - out.numpy()).max())
    if not err < 1e-4:
        raise RuntimeError(f"{path}: onnxruntime differs from PyTorch at {tuple(out.shape)}: {err:.2e}")
    return err


EVAL_INPUTS = os.path.join(members.ROOT, "tools", "eval", "video_inputs.json")


def eval_inputs(seed, groups=8, per=4):
    """Held-out fine-tune-domain clips (seed never used in training) for tools/eval/systems/video.ts: `groups`
    captions (each direction twice, shape and colour cycling), `per` clips each (other positions, sizes,
    backgrounds). The first frame is the image condition, the caption the text, the real clip a reference row."""
    rng = np.random.default_rng(seed * 1000 + 940)
    enc = lambda x: base64.b64encode(np.round(x * 255).clip(0, 255).astype(np.uint8).tobytes()).decode()
    clips = []
    for i in range(groups * per):
        g = i // per
        x, info = sample_clip(rng, "ft", FRAMES, motion=["left", "right", "up", "down"][g % 4],
                              shape=D.SHAPES[(g + g // 4) % 4], color=D.COLORS[g % 6])
        clips.append({"caption": info["caption"], "shape": info["shape"], "color": info["color"],
                      "motion": info["motion"], "track": [[round(a, 3), round(b, 3)] for a, b in info["track"]],
                      "frames": enc(x)})
    members.write_json(EVAL_INPUTS, {
        "format": "uint8 [T,3,32,32] per clip (frame-major, CHW), base64; byte/255 gives [0,1]",
        "frames": FRAMES, "domain": "ft (the i2v fine-tune domain)", "seed": seed * 1000 + 940, "clips": clips})


def export_all(ck, seed, info):
    N.Lin.conv = False
    sf = torch.load(os.path.join(ck, "video_base.pt"))["scaling_factor"]
    g = torch.Generator().manual_seed(3)
    caps = ["a red circle moving left", ""]
    ehs = text_embeddings(caps)
    ucfg_common = {"_diffusers_version": "0.30.0", "sample_size": 8, "out_channels": 4,
                   "block_out_channels": [32, 64], "cross_attention_dim": 64, "num_frames": FRAMES}
    for name, folder, in_ch in [("base", "shapes-video-base", 4), ("i2v", "shapes-video-i2v", 8)]:
        m = VideoUNet(in_ch=in_ch, image_ctx=in_ch == 8)
        m.load_state_dict(torch.load(os.path.join(ck, f"video_{name}.pt"))["state"])
        m.eval()
        f = os.path.join(members.MODELS, folder)
        path = os.path.join(f, "unet", "model.onnx")
        x = torch.randn(2, in_ch, FRAMES, 8, 8, generator=g)
        members.export(_Export(m), (x, torch.tensor([981.0, 1.0]), ehs), path,
                       ["sample", "timestep", "encoder_hidden_states"], ["out_sample"], f"video_{name}_unet",
                       dynamic_axes=DYN)
        errs = [_extra_fixture(_Export(m), path, f"video_{name}_unet_T{T}", {
            "sample": torch.randn(1, in_ch, T, 8, 8, generator=g), "timestep": torch.tensor([500.0]),
            "encoder_hidden_states": ehs[:1]}) for T in (1, 12, MAX_FRAMES)]
        log(f"{folder}: onnxruntime vs PyTorch at 1/12/16 frames, max |diff| {max(errs):.1e}")
        pg = {"timestep_dtype": "float32", "prediction_type": "epsilon", "latent_space": E.LATENT_SPACE,
              "layout": "sample [batch, channels, frames, h, w]", "frames": {"trained": FRAMES, "max": MAX_FRAMES},
              "temporal": "self-attention across frames after each of the five UNet blocks"}
        if name == "base":
            pg["role"] = "text-to-video base (VideoCrafter-like); spatial layers initialised from shapes-t2i"
        else:
            pg.update({"role": "image+text-to-video (DynamiCrafter-like), fine-tuned from shapes-video-base",
                       "image_latent": "channels 4-7: the first frame's VAE mean, not scaled, repeated over frames; "
                                       "zeros = no image",
                       "image_context": "16 tokens: a learned projection of 2x2 patches of the first-frame latent, "
                                        "appended to the 16 text tokens"})
        members.write_json(os.path.join(f, "unet", "config.json"),
                           {"_class_name": "UNet3DConditionModel", "in_channels": in_ch, **ucfg_common,
                            "priorgraph": pg})
        members.write_json(os.path.join(f, "scheduler", "scheduler_config.json"), E.UNET_SCHED)
        extra = {"role": "video-base" if name == "base" else "video-i2v", "media": "video",
                 "frames": {"trained": FRAMES, "max": MAX_FRAMES},
                 "text_encoder": "../shapes-t2i", "tokenizer": "../shapes-t2i", "vae": "../shapes-t2i",
                 "fine_tuned_from": "shapes-t2i (spatial layers)" if name == "base" else "shapes-video-base"}
        if name == "base":
            extra.update({"conditioning": "text", "condition_dropout": CFG["base"]["p_uncond"]})
        else:
            extra.update({"conditioning": "image+text", "prior": "../shapes-video-base",
                          "image_latent": "vae mean, not scaled",
                          "dropout": {k: CFG["i2v"][k] for k in ["p_drop_text", "p_drop_image", "p_drop_both"]}})
        idx = E._index([("unet", E.ORT), ("scheduler", ["diffusers", "DDIMScheduler"])], extra)
        idx["_class_name"] = "OnnxTextToVideoPipeline" if name == "base" else "OnnxImageToVideoPipeline"
        members.write_json(os.path.join(f, "model_index.json"), idx)
    size = sum(os.path.getsize(os.path.join(r, n)) for fo in ["shapes-video-base", "shapes-video-i2v"]
               for r, _, ns in os.walk(os.path.join(members.MODELS, fo)) for n in ns)
    if size > 8e6:
        raise SystemExit(f"the video models are {size / 1e6:.1f} MB, over their 8 MB share")
    total = members.record("video", CFG, info, "nice -n 10 /work/.venvs/tools/bin/python tools/train/video.py "
                                               f"--seed {seed}")
    log(f"video models {size / 1e6:.2f} MB; models/ {total / 1e6:.2f} MB; vae scaling_factor {sf:.5f}")


def _direction(frames):
    """frames [T,3,32,32] in [-1,1] -> (mean centroid step px, direction of last - first or None); the same
    estimator as tools/eval/systems/video.ts (subject = pixels > 0.25 RGB distance from the border median)."""
    x = (np.asarray(frames) + 1) / 2
    ring = np.ones((D.SIZE, D.SIZE), bool)
    ring[2:-2, 2:-2] = False
    pts = []
    for f in x:
        bg = np.median(f[:, ring], axis=1)
        m = np.sqrt(((f - bg[:, None, None]) ** 2).sum(0)) > 0.25
        if not m.any():
            return 0.0, None
        yy, xx = np.nonzero(m)
        pts.append((xx.mean() + 0.5, yy.mean() + 0.5))
    pts = np.array(pts)
    step = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).mean())
    dx, dy = pts[-1] - pts[0]
    d = ("left" if dx < 0 else "right") if abs(dx) >= abs(dy) else ("up" if dy < 0 else "down")
    return step, d


@torch.no_grad()
def stage_check(ck, seed, steps=20):
    """Quick PyTorch DDIM numbers (README): motion direction and dynamics of the T2V base from captions, and of the
    I2V model on the evaluation clips with two-condition guidance (γ_T 7.5, γ_I 1.5), own ∅ vs the base's ∅."""
    vae = from_onnx.vae()
    sf = torch.load(os.path.join(ck, "video_base.pt"))["scaling_factor"]
    base, i2v = load_base(ck).eval(), VideoUNet(in_ch=8, image_ctx=True)
    i2v.load_state_dict(torch.load(os.path.join(ck, "video_i2v.pt"))["state"])
    i2v.eval()
    acp = DF.alphas_cumprod("scaled_linear")
    ev = json.load(open(EVAL_INPUTS))
    caps = [c["caption"] for c in ev["clips"]]
    emb = text_embeddings(caps + [""])
    txt, empty = emb[:-1], emb[-1:].expand(len(caps), -1, -1)
    first = np.stack([np.frombuffer(base64.b64decode(c["frames"]), np.uint8).reshape(FRAMES, 3, 32, 32)[0]
                      for c in ev["clips"]]).astype(np.float32) / 127.5 - 1
    img = (members.encode_images(first)[0] / sf)[:, :, None].expand(-1, -1, FRAMES, -1, -1)
    g = torch.Generator().manual_seed(seed * 100 + 60)
    x0 = torch.randn(len(caps), 4, FRAMES, 8, 8, generator=g)
    ddim = lambda fn: DF.ddim_sample(lambda x, t: fn(x, torch.full((len(x),), float(t))), None, acp, steps, x=x0.clone())

    def decode(z):
        z = z.permute(0, 2, 1, 3, 4).reshape(-1, 4, 8, 8) / sf
        return vae.decode(z).clamp(-1, 1).reshape(len(caps), FRAMES, 3, 32, 32).numpy()

    def score(vid, name):
        st = [_direction(v) for v in vid]
        ok = np.mean([d == c["motion"] for (_, d), c in zip(st, ev["clips"])])
        dyn = np.mean([s > 0.5 for s, _ in st])
        psnr = np.mean([10 * np.log10(4 / max(1e-10, ((v[0] - f) ** 2).mean())) for v, f in zip(vid, first)])
        log(f"check {name}: direction {ok:.3f} dynamic {dyn:.3f} first-frame PSNR {psnr:.1f} dB (n={len(vid)})")
        return {"direction": float(ok), "dynamic": float(dyn), "first_frame_psnr": float(psnr)}

    res = {"real": score(np.stack([np.frombuffer(base64.b64decode(c["frames"]), np.uint8).reshape(FRAMES, 3, 32, 32)
                                   .astype(np.float32) / 127.5 - 1 for c in ev["clips"]]), "real clips")}
    res["base_t2v_cfg7.5"] = score(decode(ddim(lambda x, t: base(x, t, empty) + 7.5 * (base(x, t, txt) - base(x, t, empty)))),
                                   "T2V base, CFG 7.5 (no image)")
    zero = torch.zeros_like(img)
    for name, unc in [("cfg", lambda x, t: i2v(torch.cat([x, zero], 1), t, empty)), ("prior_swap", lambda x, t: base(x, t, empty))]:
        def eps(x, t, unc=unc):
            u = unc(x, t)
            ei = i2v(torch.cat([x, img], 1), t, empty)
            ef = i2v(torch.cat([x, img], 1), t, txt)
            return u + 1.5 * (ei - u) + 7.5 * (ef - ei)
        res[f"i2v_{name}"] = score(decode(ddim(eps)), f"I2V two-condition {name} γ_T 7.5 γ_I 1.5")
    return res


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default="base,i2v,export")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        CFG["data"].update({"n_base": 40, "n_ft": 40})
        CFG["base"]["steps"] = CFG["i2v"]["steps"] = 3
    torch.set_num_threads(args.threads)
    N.Lin.conv = False  # this torch links MKL: plain matmuls are the fast path
    ck = members.CKPT
    os.makedirs(ck, exist_ok=True)
    LOG = os.path.join(ck, "video.log")
    ipath = os.path.join(ck, "video_stages.json")
    info = json.load(open(ipath)) if os.path.exists(ipath) else {}
    for st in args.stages.split(","):
        log(f"=== video stage {st} (seed {args.seed})")
        if st == "export":
            export_all(ck, args.seed, info)
            eval_inputs(args.seed)
            continue
        if st == "check":
            info["check"] = stage_check(ck, args.seed)
            json.dump(info, open(ipath, "w"), indent=2)
            continue
        if st == "evalset":
            eval_inputs(args.seed)
            continue
        info[st] = {**globals()["stage_" + st](ck, args.seed), "seed": args.seed, "threads": args.threads,
                    "steps": CFG[st]["steps"]}
        json.dump(info, open(ipath, "w"), indent=2)


if __name__ == "__main__":
    main()
