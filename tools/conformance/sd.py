#!/usr/bin/env python3
"""Stable Diffusion conformance fixtures: SD 1.x (ε), SD 2.x (v; a zero-terminal-SNR trailing
fine-tune), InstructPix2Pix (8 channels, two-condition guidance), an fp16 export and exports with
external weights, plus references from diffusers' own pipelines. See tools/conformance/README.md.

  nice -n 10 /work/.venvs/tools/bin/python tools/conformance/sd.py [--build /tmp/pg-conformance-sd]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from common import (
    EOS,
    Pack,
    clip_tokenizer,
    convert_script_export,
    optimum_export,
    optimum_export_pipeline,
    perturb,
    priorgraph_noise,
    tiny_clip_text_encoder,
    tiny_vae,
)

# The scheduler_config.json the public checkpoints ship (keys and values as published).
SD15_SCHEDULER = {  # runwayml/stable-diffusion-v1-5 (PNDM)
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
SD21_SCHEDULER = {  # stabilityai/stable-diffusion-2-1 (DDIM, v-prediction)
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
# an SD 2.x fine-tune trained with zero terminal SNR (Lin et al. 2024), as such fine-tunes ship
ZTSNR_SCHEDULER = {**SD21_SCHEDULER, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}
IP2P_SCHEDULER = {  # timbrooks/instruct-pix2pix (Euler ancestral)
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.13.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "trained_betas": None,
}

PROMPT = "a photograph of an astronaut riding a horse"
EDIT = "turn the sky into a starry night"
SEED = 42  # priorgraph Sampler seed: the initial latents are its Philox noise
STEPS = 10
CFG = 7.5
LATENT = (1, 4, 8, 8)  # 64×64 pixels


def tiny_unet(seed: int, sd2: bool, in_channels: int = 4):
    """UNet2DConditionModel with the SD block layout (down: plain, cross-attn; up mirrored). SD 2.x
    differs structurally by linear projections in its transformers and per-level head counts."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=2,
        cross_attention_dim=8,
        attention_head_dim=(2, 4) if sd2 else 2,
        use_linear_projection=sd2,
    ).eval()


def pipeline(kind: str, unet, text_encoder, vae, tokenizer, scheduler_config: dict):
    from diffusers import (
        DDIMScheduler,
        EulerAncestralDiscreteScheduler,
        PNDMScheduler,
        StableDiffusionInstructPix2PixPipeline,
        StableDiffusionPipeline,
    )

    cls = {"PNDMScheduler": PNDMScheduler, "DDIMScheduler": DDIMScheduler}.get(
        scheduler_config["_class_name"], EulerAncestralDiscreteScheduler
    )
    sched = cls.from_config(scheduler_config)
    P = StableDiffusionInstructPix2PixPipeline if kind == "ip2p" else StableDiffusionPipeline
    return P(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def source_image() -> Image.Image:
    """The IP2P source image: a fixed 64×64 RGB pattern (committed as a PNG next to the references)."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    r = 0.5 + 0.5 * np.sin(x / 7.0)
    g = 0.5 + 0.5 * np.cos(y / 5.0 + x / 11.0)
    b = ((x // 16 + y // 16) % 2) * 0.8 + 0.1
    return Image.fromarray((np.stack([r, g, b], -1) * 255).round().astype(np.uint8), "RGB")


def run_pipeline(pipe, dtype, scheduler_name: str, **kw):
    """diffusers' own pipeline with a deterministic scheduler built from the model's scheduler config,
    priorgraph's initial noise via latents=, final latents captured at the last step."""
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    S = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler}[scheduler_name]
    pipe.scheduler = S.from_config(pipe.scheduler.config)
    pipe = pipe.to(dtype)
    got = {}

    def grab(p, i, t, cb):
        got["latents"] = cb["latents"].clone()
        return cb

    noise = torch.from_numpy(priorgraph_noise(SEED, LATENT)).to(dtype)
    # transformers' CLIP builds its causal mask with torch's default dtype: float64 runs need it float64
    torch.set_default_dtype(dtype)
    with torch.no_grad():
        out = pipe(
            num_inference_steps=STEPS,
            latents=noise,
            output_type="np",
            callback_on_step_end=grab,
            **kw,
        )
    torch.set_default_dtype(torch.float32)
    return got["latents"].double().numpy(), np.asarray(out.images, dtype=np.float64)


def rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def prior_swap_reference(ft, base, text_encoder, tokenizer, config: dict, cfg: float):
    """ε̃ = ε_base(x, ∅) + w·(ε_ft(x, c) − ε_base(x, ∅)) (Unconditional Priors Matter), everything in
    float64, stepped by diffusers' DDIMScheduler built from the fine-tune's scheduler config."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(config)
    sched.set_timesteps(STEPS)
    te = text_encoder.double()

    def embed(text):
        ids = tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        return te(ids)[0]

    torch.set_default_dtype(torch.float64)
    c, u = embed(PROMPT), embed("")
    ft, base = ft.double(), base.double()
    x = torch.from_numpy(priorgraph_noise(SEED, LATENT)).double() * sched.init_noise_sigma
    with torch.no_grad():
        for t in sched.timesteps:
            xin = sched.scale_model_input(x, t)
            pc = ft(xin, t, encoder_hidden_states=c).sample
            pu = base(xin, t, encoder_hidden_states=u).sample
            x = sched.step(pu + cfg * (pc - pu), t, x).prev_sample
    torch.set_default_dtype(torch.float32)
    return x.numpy()


def decode(vae, latents: np.ndarray) -> np.ndarray:
    """diffusers' decode + VaeImageProcessor.postprocess('np') in float64: NHWC in [0, 1]."""
    v = vae.double()
    with torch.no_grad():
        img = v.decode(torch.from_numpy(latents).double() / v.config.scaling_factor).sample
    return (img / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def save_external(model_dir: Path, location: str = "model.onnx_data") -> None:
    """Re-save an exported model.onnx with its weights in one external file (what optimum and
    torch.onnx do for models over 2 GB)."""
    m = onnx.load(str(model_dir / "model.onnx"))
    for f in model_dir.iterdir():
        f.unlink()
    onnx.save_model(m, str(model_dir / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)


def ort_pipeline_latents(onnx_dir: Path, scheduler_config: dict) -> np.ndarray:
    """diffusers' OnnxStableDiffusionPipeline (Python onnxruntime) on an export, DDIM, same noise."""
    from diffusers import DDIMScheduler, OnnxStableDiffusionPipeline

    pipe = OnnxStableDiffusionPipeline.from_pretrained(str(onnx_dir), provider="CPUExecutionProvider")
    pipe.scheduler = DDIMScheduler.from_config(scheduler_config)
    got = {}

    def cb(i, t, latents):
        got["latents"] = np.array(latents, dtype=np.float64)

    pipe(PROMPT, height=8 * LATENT[2], width=8 * LATENT[3], num_inference_steps=STEPS, guidance_scale=CFG,
         latents=priorgraph_noise(SEED, LATENT),
         output_type="np", callback=cb, callback_steps=1)
    return got["latents"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="/tmp/pg-conformance-sd", help="scratch folder (emptied first)")
    ap.add_argument("--resume", action="store_true", help="keep the exports a previous run finished")
    ap.add_argument("--only-models", action="store_true", help="build the PyTorch folders only")
    a = ap.parse_args()
    build = Path(a.build)
    if build.exists() and not a.resume:
        shutil.rmtree(build)
    shutil.rmtree(build / "inputs", ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    pack = Pack("sd")

    # ---- PyTorch pipelines (save_pretrained), the way a checkpoint is published
    tok1 = clip_tokenizer(EOS, build / "vocab")
    tok2 = clip_tokenizer("!", build / "vocab")
    te1 = tiny_clip_text_encoder(1, "quick_gelu")
    te2 = tiny_clip_text_encoder(2, "gelu")
    vae = tiny_vae(3)
    sd1 = pipeline("sd", tiny_unet(10, sd2=False), te1, vae, tok1, SD15_SCHEDULER)
    sd2 = pipeline("sd", tiny_unet(20, sd2=True), te2, vae, tok2, SD21_SCHEDULER)
    sd2ft = pipeline("sd", perturb(tiny_unet(20, sd2=True), 21), te2, vae, tok2, SD21_SCHEDULER)
    ztsnr = pipeline("sd", perturb(tiny_unet(20, sd2=True), 22), te2, vae, tok2, ZTSNR_SCHEDULER)
    ip2p = pipeline("ip2p", tiny_unet(30, sd2=False, in_channels=8), te1, vae, tok1, IP2P_SCHEDULER)
    pt = {}
    for name, p in [("sd1", sd1), ("sd2", sd2), ("sd2-ft", sd2ft), ("sd2-ztsnr", ztsnr), ("ip2p", ip2p)]:
        pt[name] = build / "pt" / name
        p.save_pretrained(str(pt[name]))
    if a.only_models:
        return

    # ---- ONNX exports, the way users make them
    ex = build / "onnx"
    exports = {
        "sd1-optimum": optimum_export(pt["sd1"], ex / "sd1-optimum"),
        "sd1-optimum-fp16": optimum_export(pt["sd1"], ex / "sd1-optimum-fp16", dtype="fp16"),
        "sd2-optimum": optimum_export(pt["sd2"], ex / "sd2-optimum"),
        "sd2-ft-optimum": optimum_export(pt["sd2-ft"], ex / "sd2-ft-optimum"),
        "sd2-ztsnr-optimum": optimum_export(pt["sd2-ztsnr"], ex / "sd2-ztsnr-optimum"),
        "ip2p-optimum": optimum_export_pipeline(
            "StableDiffusionInstructPix2PixPipeline", pt["ip2p"], ex / "ip2p-optimum", task="image-to-image"
        ),
        "sd1-convert": convert_script_export(pt["sd1"], ex / "sd1-convert"),
    }
    save_external(exports["sd2-ft-optimum"] / "unet")
    for name, d in exports.items():
        pack.add_folder(name, d)

    src = source_image()
    (build / "inputs").mkdir()
    src.save(build / "inputs" / "ip2p-source.png", optimize=False, compress_level=9)
    pack.add_folder("inputs-sd", build / "inputs")  # the test copies it into the input folder

    # ---- references
    f64 = torch.float64
    cases = {}
    lat, img = run_pipeline(sd1, f64, "ddim", prompt=PROMPT, guidance_scale=CFG)
    lat32, _ = run_pipeline(sd1, torch.float32, "ddim", prompt=PROMPT, guidance_scale=CFG)
    sd1.to(f64)
    ort_lat = ort_pipeline_latents(exports["sd1-convert"], SD15_SCHEDULER)
    cases["sd1-ddim-cfg"] = (
        {"scheduler": "ddim", "cfg": CFG, "prompt": PROMPT, "diffusers_fp32_rel_err": rel_err(lat32, lat),
         "onnx_pipeline_rel_err": rel_err(ort_lat, lat)},
        {"latents": lat, "image": img, "onnx_pipeline_latents": ort_lat},
    )
    lat, img = run_pipeline(sd2, f64, "ddim", prompt=PROMPT, guidance_scale=CFG)
    cases["sd2-v-ddim-cfg"] = ({"scheduler": "ddim", "cfg": CFG, "prompt": PROMPT}, {"latents": lat, "image": img})
    lat, img = run_pipeline(ztsnr, f64, "ddim", prompt=PROMPT, guidance_scale=CFG)
    cases["sd2-ztsnr-ddim-cfg"] = ({"scheduler": "ddim", "cfg": CFG, "prompt": PROMPT}, {"latents": lat, "image": img})
    lat, img = run_pipeline(ip2p, f64, "euler", prompt=EDIT, image=src, guidance_scale=CFG, image_guidance_scale=1.5)
    cases["ip2p-euler"] = (
        {"scheduler": "euler", "text_scale": CFG, "image_scale": 1.5, "prompt": EDIT},
        {"latents": lat, "image": img, "source": np.asarray(src, np.float64) / 255.0},
    )
    lat = prior_swap_reference(sd2ft.unet, sd2.unet, sd2.text_encoder, tok2, SD21_SCHEDULER, 5.0)
    cases["sd2-priorswap-ddim"] = (
        {"scheduler": "ddim", "cfg": 5.0, "prompt": PROMPT},
        {"latents": lat, "image": decode(sd2.vae, lat)},
    )
    for name, (meta, tensors) in cases.items():
        pack.add_case(name, {**meta, "seed": SEED, "steps": STEPS, "latent_shape": list(LATENT)}, tensors)
        print(name, {k: v for k, v in meta.items() if k.endswith("err")})
    pack.save()


if __name__ == "__main__":
    main()
