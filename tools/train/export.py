"""Export the trained checkpoints to models/ in diffusers' ONNX layout, plus eval assets and manifest.

Called by train_all.py (stage "export"). Writes, for every ONNX file, a fixed-input check fixture
(inputs and PyTorch outputs) to <ckpt>/onnx_check/, which tools/train/check_onnx.mjs replays with
onnxruntime-node.
"""
import base64
import hashlib
import json
import os
import shutil
import time

import numpy as np
import onnx
import torch

import data as D
import nets as N

OPSET = 17
SCHED_COMMON = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "trained_betas": None,
    "set_alpha_to_one": False, "steps_offset": 1, "clip_sample": False, "clip_sample_range": 1.0,
    "thresholding": False, "dynamic_thresholding_ratio": 0.995, "sample_max_value": 1.0,
    "timestep_spacing": "leading", "rescale_betas_zero_snr": False,
}
UNET_SCHED = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.30.0", **SCHED_COMMON,
              "beta_schedule": "scaled_linear", "prediction_type": "epsilon"}
DIT_SCHED = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.30.0", **SCHED_COMMON,
             "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}
LATENT_SPACE = "shapes-vae-v1"


def _json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def _export(module, args, path, in_names, out_names, check_dir, tag):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    module.eval()
    dyn = {n: {0: "batch"} for n in in_names + out_names}
    with torch.no_grad():
        torch.onnx.export(module, args, path, opset_version=OPSET, input_names=in_names,
                          output_names=out_names, dynamic_axes=dyn, do_constant_folding=True)
        outs = module(*args)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    onnx.checker.check_model(onnx.load(path))
    fx = {"model": os.path.abspath(path), "inputs": {}, "outputs": {}}
    for n, a in zip(in_names, args):
        fx["inputs"][n] = {"dtype": str(a.dtype).replace("torch.", ""), "dims": list(a.shape),
                           "data": a.flatten().tolist()}
    for n, o in zip(out_names, outs):
        fx["outputs"][n] = {"dims": list(o.shape), "data": o.flatten().tolist()}
    _json(os.path.join(check_dir, tag + ".json"), fx)


def _vae_parts(vae, sf, folder, check_dir, tag):
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    _export(N.VAEEncoderExport(vae), (img,), os.path.join(folder, "vae_encoder", "model.onnx"),
            ["sample"], ["latent_sample"], check_dir, tag + "_vae_encoder")
    lat = torch.randn(2, 4, 8, 8, generator=g) / sf
    _export(N.VAEDecoderExport(vae), (lat,), os.path.join(folder, "vae_decoder", "model.onnx"),
            ["latent_sample"], ["sample"], check_dir, tag + "_vae_decoder")
    cfg = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.30.0", "in_channels": 3, "out_channels": 3,
           "latent_channels": 4, "sample_size": 32, "scaling_factor": sf, "downsample_factor": 4,
           "priorgraph": {"latent_space": LATENT_SPACE,
                          "encoder_output": "mean of the latent distribution (deterministic), unscaled"}}
    _json(os.path.join(folder, "vae_encoder", "config.json"), cfg)
    _json(os.path.join(folder, "vae_decoder", "config.json"), cfg)


def _index(components, extra=None):
    idx = {"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.30.0"}
    for name, kind in components:
        idx[name] = kind
    idx["priorgraph"] = {"latent_space": LATENT_SPACE, **(extra or {})}
    return idx


ORT = ["diffusers", "OnnxRuntimeModel"]


def _unet_config(in_ch, ctx_dim, timestep_dtype, ch, role):
    return {"_class_name": "UNet2DConditionModel" if ctx_dim else "UNet2DModel", "_diffusers_version": "0.30.0",
            "sample_size": 8, "in_channels": in_ch, "out_channels": 4, "block_out_channels": list(ch),
            "cross_attention_dim": ctx_dim, "priorgraph": {"role": role, "timestep_dtype": timestep_dtype,
                                                           "prediction_type": "epsilon",
                                                           "latent_space": LATENT_SPACE}}


def _features(cls, x):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 500):
            out.append(cls(torch.from_numpy(x[i:i + 500]))[2])
    return torch.cat(out).numpy().astype(np.float64)


def _r(a):
    return [float(f"{v:.5g}") for v in np.asarray(a).flatten()]


def _stats(f):
    return {"mean": _r(f.mean(0)), "cov": [_r(row) for row in np.cov(f, rowvar=False)]}


def reference_stats(cls, seed, n=500):
    t = time.time()
    prompts = []
    for dom, bg in [("ft", "light"), ("base", "dark")]:
        for si, s in enumerate(D.SHAPES):
            for ci, c in enumerate(D.COLORS):
                x = D.make_prompt_images(n, s, c, dom, seed * 1000 + 700 + 100 * (dom == "base") + si * 6 + ci,
                                         bg_word=bg)
                bb = D.border_brightness(x)
                prompts.append({"caption": D.caption(s, c, bg), "shape": s, "color": c, "domain": dom, "n": n,
                                "border_brightness": {"mean": float(bb.mean()), "std": float(bb.std())},
                                **_stats(_features(cls, x))})
    domains = {}
    for dom, sd in [("base", 901), ("ft", 902)]:
        x = D.make_dataset(8 * n, dom, seed * 1000 + sd)[0]
        bb = D.border_brightness(x)
        domains[dom] = {"n": 8 * n, "border_brightness": {"mean": float(bb.mean()), "std": float(bb.std())},
                        **_stats(_features(cls, x))}
    src, tgt, ins, ss, sc, ts, tc = D.make_edit_pairs(8 * n, seed * 1000 + 903)
    fb = D.border_brightness(tgt)
    domains["edit_target"] = {"n": 8 * n, "border_brightness": {"mean": float(fb.mean()), "std": float(fb.std())},
                              **_stats(_features(cls, tgt))}
    print(f"reference stats in {time.time() - t:.0f}s", flush=True)
    return {
        "format": "priorgraph-reference-stats-v1",
        "classifier": "classifier.onnx", "feature_output": "features", "feature_dim": len(domains["base"]["mean"]),
        "shapes": D.SHAPES, "colors": D.COLORS,
        "domain_statistic": "border_brightness: mean over RGB of the outer 2-pixel ring, image mapped to [0,1]",
        "domains": domains, "prompts": prompts,
        "captions": D.all_captions(), "instructions": D.all_instructions(),
        "eval_captions": [p["caption"] for p in prompts if p["domain"] == "ft"],
        "base_captions": [p["caption"] for p in prompts if p["domain"] == "base"],
    }


def cached_reference_stats(ck, seed, n):
    """reference_stats() depends only on the classifier weights, the seed and n: cache it in the
    checkpoint folder (it is the slowest part of the export on a busy 2-core machine)."""
    key = hashlib.sha256(open(os.path.join(ck, "cls.pt"), "rb").read()).hexdigest()[:16]
    path = os.path.join(ck, f"refstats_{key}_{seed}_{n}.json")
    if os.path.exists(path):
        return json.load(open(path))
    cls = N.Classifier(len(D.SHAPES), len(D.COLORS))
    cls.load_state_dict(torch.load(os.path.join(ck, "cls.pt"))["state"])
    cls.eval()
    st = reference_stats(cls, seed, n)
    with open(path + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(path + ".tmp", path)
    return st


def edit_samples(seed, n=48):
    src, tgt, ins, ss, sc, ts, tc = D.make_edit_pairs(n, seed * 1000 + 904)
    enc = lambda x: base64.b64encode(np.round((x + 1) * 127.5).clip(0, 255).astype(np.uint8).tobytes()).decode()
    return {"format": "uint8 CHW [3,32,32] per image, base64; image = byte/127.5 - 1 gives [-1,1]",
            "samples": [{"instruction": ins[i], "source_shape": D.SHAPES[ss[i]], "source_color": D.COLORS[sc[i]],
                         "target_shape": D.SHAPES[ts[i]], "target_color": D.COLORS[tc[i]],
                         "source": enc(src[i]), "target": enc(tgt[i])} for i in range(n)]}


def export_all(ctx, args, CFG, info):
    N.Lin.conv = False  # plain MatMul/Gemm in the graphs
    out = os.path.abspath(args.out)
    ck = args.ckpt
    check_dir = os.path.join(ck, "onnx_check")
    shutil.rmtree(check_dir, ignore_errors=True)
    for sub in ["shapes-base", "shapes-t2i", "shapes-edit", "shapes-dit", "eval"]:
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    vae, sf = ctx.vae()
    tok = ctx.tokenizer()
    dim = CFG["t2i"]["text_dim"]
    ch = tuple(CFG["base"]["ch"])
    g = torch.Generator().manual_seed(2)
    x4 = torch.randn(2, 4, 8, 8, generator=g)
    ids = torch.tensor(tok(["a red circle on a light background", ""]), dtype=torch.int32)

    # ---- base (unconditional prior, int64 timestep)
    base = N.UNet(ch=ch)
    base.load_state_dict(torch.load(os.path.join(ck, "base.pt"))["state"])
    f = os.path.join(out, "shapes-base")
    _export(N.UNetUncondExport(base), (x4, torch.tensor([999, 421], dtype=torch.int64)),
            os.path.join(f, "unet", "model.onnx"), ["sample", "timestep"], ["out_sample"], check_dir, "base_unet")
    _json(os.path.join(f, "unet", "config.json"), _unet_config(4, None, "int64", ch, "unconditional prior (base)"))
    _vae_parts(vae, sf, f, check_dir, "base")
    _json(os.path.join(f, "scheduler", "scheduler_config.json"), UNET_SCHED)
    _json(os.path.join(f, "model_index.json"), _index(
        [("unet", ORT), ("vae_encoder", ORT), ("vae_decoder", ORT), ("scheduler", ["diffusers", "DDIMScheduler"])],
        {"role": "base", "conditioning": "none"}))

    # ---- t2i and edit (text-conditioned, float32 timestep)
    for name, in_ch, folder in [("t2i", 4, "shapes-t2i"), ("edit", 8, "shapes-edit")]:
        sd = torch.load(os.path.join(ck, f"{name}.pt"))
        unet = N.UNet(in_ch=in_ch, ch=ch, ctx_dim=dim)
        unet.load_state_dict(sd["unet"])
        te = N.TextEncoder(len(tok.vocab), tok.eot, d=dim)
        te.load_state_dict(sd["te"])
        f = os.path.join(out, folder)
        tok.save(os.path.join(f, "tokenizer"))
        _export(te, (ids,), os.path.join(f, "text_encoder", "model.onnx"), ["input_ids"],
                ["last_hidden_state", "pooler_output"], check_dir, name + "_text_encoder")
        _json(os.path.join(f, "text_encoder", "config.json"), {
            "_class_name": "CLIPTextModel", "hidden_size": dim, "max_position_embeddings": 16,
            "num_hidden_layers": len(te.blocks), "num_attention_heads": 4, "vocab_size": len(tok.vocab),
            "eos_token_id": tok.eot, "bos_token_id": tok.sot, "pad_token_id": tok.eot,
            "priorgraph": {"input_ids_dtype": "int32", "causal_mask": True,
                           "pooler": "hidden state at the first end-of-text token"}})
        with torch.no_grad():
            ehs = te(ids.long())[0]
        xin = torch.randn(2, in_ch, 8, 8, generator=g)
        _export(N.UNetCondExport(unet), (xin, torch.tensor([981.0, 1.0]), ehs),
                os.path.join(f, "unet", "model.onnx"), ["sample", "timestep", "encoder_hidden_states"],
                ["out_sample"], check_dir, name + "_unet")
        role = "text-to-image fine-tuned from shapes-base" if name == "t2i" else \
            "InstructPix2Pix editor: sample = noisy latent (4) ++ source image latent (4, VAE mean, unscaled)"
        ucfg = _unet_config(in_ch, dim, "float32", ch, role)
        ucfg["priorgraph"]["fine_tuned_from"] = "shapes-base"
        _json(os.path.join(f, "unet", "config.json"), ucfg)
        _vae_parts(vae, sf, f, check_dir, name)
        _json(os.path.join(f, "scheduler", "scheduler_config.json"), UNET_SCHED)
        extra = {"role": name, "fine_tuned_from": "shapes-base", "prior": "../shapes-base"}
        if name == "t2i":
            extra.update({"conditioning": "text", "condition_dropout": CFG["t2i"]["p_uncond"]})
        else:
            extra.update({"conditioning": "instruct-pix2pix", "image_latent": "vae mean, not scaled",
                          "dropout": {k: CFG["edit"][k] for k in ["p_drop_text", "p_drop_image", "p_drop_both"]}})
        idx = _index([("text_encoder", ORT), ("tokenizer", ["transformers", "CLIPTokenizer"]), ("unet", ORT),
                      ("vae_encoder", ORT), ("vae_decoder", ORT), ("scheduler", ["diffusers", "DDIMScheduler"])], extra)
        if name == "edit":
            idx["_class_name"] = "OnnxStableDiffusionInstructPix2PixPipeline"
        _json(os.path.join(f, "model_index.json"), idx)

    # ---- DiT prior (v-prediction, cosine schedule, learned-sigma output layout)
    c = CFG["dit"]
    dit = N.DiT(d=c["d"], depth=c["depth"], patch=c["patch"])
    dit.load_state_dict(torch.load(os.path.join(ck, "dit.pt"))["state"])
    f = os.path.join(out, "shapes-dit")
    _export(dit, (x4, torch.tensor([999.0, 37.0])), os.path.join(f, "transformer", "model.onnx"),
            ["hidden_states", "timestep"], ["out_sample"], check_dir, "dit_transformer")
    _json(os.path.join(f, "transformer", "config.json"), {
        "_class_name": "DiTTransformer2DModel", "_diffusers_version": "0.30.0", "sample_size": 8, "in_channels": 4,
        "out_channels": 8, "patch_size": c["patch"], "num_layers": c["depth"], "attention_head_dim": c["d"] // 4,
        "num_attention_heads": 4, "priorgraph": {"prediction_type": "v_prediction", "learned_sigma": True,
                                                 "note": "first 4 output channels are the v prediction; last 4 untrained",
                                                 "timestep_dtype": "float32", "latent_space": LATENT_SPACE}})
    _vae_parts(vae, sf, f, check_dir, "dit")
    _json(os.path.join(f, "scheduler", "scheduler_config.json"), DIT_SCHED)
    idx = _index([("transformer", ORT), ("vae_encoder", ORT), ("vae_decoder", ORT),
                  ("scheduler", ["diffusers", "DDIMScheduler"])], {"role": "prior", "conditioning": "none"})
    idx["_class_name"] = "OnnxDiTPipeline"
    _json(os.path.join(f, "model_index.json"), idx)

    # ---- eval assets
    cls = N.Classifier(len(D.SHAPES), len(D.COLORS))
    cls.load_state_dict(torch.load(os.path.join(ck, "cls.pt"))["state"])
    cls.eval()
    f = os.path.join(out, "eval")
    img = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    _export(cls, (img,), os.path.join(f, "classifier.onnx"), ["image"], ["shape_logits", "color_logits", "features"],
            check_dir, "eval_classifier")
    _json(os.path.join(f, "classifier.json"), {
        "input": {"name": "image", "dtype": "float32", "shape": ["batch", 3, 32, 32], "range": [-1, 1]},
        "outputs": {"shape_logits": len(D.SHAPES), "color_logits": len(D.COLORS), "features": 64},
        "shapes": D.SHAPES, "colors": D.COLORS, "colors_rgb": D.COLOR_RGB,
        "held_out_accuracy": info.get("cls", {})})
    _json(os.path.join(f, "reference_stats.json"), cached_reference_stats(ck, args.seed, 60 if args.smoke else 500))
    _json(os.path.join(f, "edit_samples.json"), edit_samples(args.seed))

    # ---- manifest
    files = {}
    for root, _, names in os.walk(out):
        for n in sorted(names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, out)
            if rel == "manifest.json":
                continue
            b = open(p, "rb").read()
            files[rel] = {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
    total = sum(v["size"] for v in files.values())
    _json(os.path.join(out, "manifest.json"), {
        "name": "priorgraph shapes demo model family", "latent_space": LATENT_SPACE, "seed": args.seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch_version": torch.__version__,
        "onnx_version": onnx.__version__, "opset": OPSET, "threads": args.threads,
        "command": f"/usr/bin/python3 tools/train/train_all.py --seed {args.seed}",
        "vae_scaling_factor": sf, "training": CFG,
        "stages": info, "train_seconds_total": round(sum(v.get("seconds", 0) for v in info.values()), 1),
        "total_bytes": total, "files": dict(sorted(files.items()))})
    print(f"exported {len(files)} files, {total / 1e6:.2f} MB", flush=True)


if __name__ == "__main__":
    # precompute the reference statistics while other stages still train:
    #   /usr/bin/python3 tools/train/export.py --ckpt /tmp/priorgraph_ckpt --seed 0
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/tmp/priorgraph_ckpt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=500)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cached_reference_stats(a.ckpt, a.seed, a.n)
