"""SDXL conformance fixtures: a TINY StableDiffusionXLPipeline built from diffusers'/transformers' own
classes — UNet2DConditionModel with addition_embed_type="text_time" (text_embeds + time_ids added
conditioning), CLIPTextModel + CLIPTextModelWithProjection on the real CLIP vocabulary (49408 tokens,
from shared/data/clip; tokenizer_2 pads with "!" as SDXL base's does), a tiny AutoencoderKL
(scaling_factor 0.13025) and SDXL base 1.0's EulerDiscreteScheduler config — with fixed random
weights (base seed 21, fine-tune UNet seed 22), saved with save_pretrained and exported by optimum's
ONNX exporter, as users export SDXL (optimum-cli export onnx --model <dir> <out>).

References (packages/nodes/test/fixtures/conformance/sdxl/reference.json):
- `pipeline`: StableDiffusionXLPipeline (PyTorch, float32) on the base, PROMPT, negative_prompt=None
  (force_zeros_for_empty_prompt: zero embeddings for the unconditional branch), guidance 5,
  16×16 pixels (8×8 latents), 10 Euler steps, `latents=` priorgraph's seeded noise, output latents.
- `priorswap`: fine-tune UNet with the prompt, base UNet with the zero conditioning, float64, diffusers'
  EulerDiscreteScheduler stepping.

Run: nice -n 10 /work/.venvs/tools/bin/python tools/conformance/sdxl.py
"""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch

import tiny_parts as tp
from common import write_clip_tokenizer_files

SEED = 5
PROMPT = "a photo of a red circle"
GUIDANCE = 5.0
STEPS = 10
PIXELS = 16
OUT = os.path.join(tp.OUT_ROOT, "sdxl")
SCHEDULER = {  # stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
    "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False,
}


def clip_vocab_files(d):
    """vocab.json + merges.txt of CLIP's BPE (as diffusers ships them), from OpenAI's merges file."""
    write_clip_tokenizer_files(Path(d))


def make_parts(tmp):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    clip_vocab_files(os.path.join(tmp, "bpe"))
    v, m = os.path.join(tmp, "bpe", "vocab.json"), os.path.join(tmp, "bpe", "merges.txt")
    tok = CLIPTokenizer(v, m, model_max_length=77)
    tok2 = CLIPTokenizer(v, m, model_max_length=77, pad_token="!")
    common = dict(vocab_size=49408, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                  num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
                  pad_token_id=1)
    torch.manual_seed(23)
    te = tp.randomize(CLIPTextModel(CLIPTextConfig(hidden_act="quick_gelu", **common)), 23, 0.1)
    torch.manual_seed(24)
    te2 = tp.randomize(CLIPTextModelWithProjection(CLIPTextConfig(hidden_act="gelu", projection_dim=8, **common)),
                       24, 0.1)
    return tok, tok2, te, te2


def make_unet(seed):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    u = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=4,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=6 * 4 + 8,
        cross_attention_dim=16, norm_num_groups=4)
    return tp.randomize(u, seed, 0.05)


def make_vae():
    vae = tp.tiny_vae(25)
    vae.register_to_config(scaling_factor=0.13025)
    return vae


def pipeline(unet, parts, vae):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    tok, tok2, te, te2 = parts
    return StableDiffusionXLPipeline(vae=vae, text_encoder=te, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok2,
                                     unet=unet, scheduler=EulerDiscreteScheduler.from_config(SCHEDULER),
                                     force_zeros_for_empty_prompt=True)


def optimum_export(pipe, dest, keep):
    """save_pretrained → optimum's exporter → copy the parts in `keep` to dest."""
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory() as tmp:
        pt, onnx_dir = os.path.join(tmp, "pt"), os.path.join(tmp, "onnx")
        pipe.save_pretrained(pt)
        main_export(pt, output=onnx_dir, task="text-to-image", opset=tp.OPSET, do_validation=False)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        for k in keep:
            src = os.path.join(onnx_dir, k)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(dest, k))
    # byte-for-byte reruns: drop the temporary folder's name that save_pretrained records
    for dirpath, _, files in os.walk(dest):
        for f in files:
            if f.endswith(".json"):
                path = os.path.join(dirpath, f)
                text = open(path, encoding="utf-8").read()
                text = re.sub(r'\n\s*"_name_or_path": "[^"]*",', "", text)
                open(path, "w", encoding="utf-8").write(text)
    # the scheduler config exactly as SDXL base ships it (diffusers drops the keys Euler does not use)
    tp.write_json(os.path.join(dest, "scheduler", "scheduler_config.json"),
                  {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0", **SCHEDULER})
    return dest


def main():
    from diffusers import EulerDiscreteScheduler

    tp.deterministic()
    with tempfile.TemporaryDirectory() as tmp:
        parts = make_parts(tmp)
    vae = make_vae()
    base, ft = make_unet(21), make_unet(22)
    everything = ["model_index.json", "scheduler", "tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2",
                  "unet", "vae_decoder"]
    optimum_export(pipeline(base, parts, vae), os.path.join(OUT, "base"), everything)
    optimum_export(pipeline(ft, parts, vae), os.path.join(OUT, "finetune"), ["model_index.json", "scheduler", "unet"])

    x0 = tp.noise(SEED, (1, 4, 8, 8))
    # fresh models for the references (exporting changes the state of the modules it traces)
    with tempfile.TemporaryDirectory() as tmp:
        parts = make_parts(tmp)
    pipe = pipeline(make_unet(21), parts, make_vae())
    with torch.no_grad():
        lat = pipe(PROMPT, height=PIXELS, width=PIXELS, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                   latents=x0.clone(), output_type="latent").images
        # the conditioning diffusers builds, for the float64 prior swap
        pe, _, pooled, _ = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False)
    time_ids = torch.tensor([[PIXELS, PIXELS, 0, 0, PIXELS, PIXELS]], dtype=torch.float64)
    cond = {"text_embeds": pooled.double(), "time_ids": time_ids}
    zero = {"text_embeds": torch.zeros_like(pooled).double(), "time_ids": time_ids}
    s = EulerDiscreteScheduler.from_config(SCHEDULER)
    s.set_timesteps(STEPS)
    b64, f64 = make_unet(21).double(), make_unet(22).double()
    x = x0.double() * s.init_noise_sigma
    with torch.no_grad():
        for t in s.timesteps:
            xin = s.scale_model_input(x, t)
            e_ft = f64(xin, t, encoder_hidden_states=pe.double(), added_cond_kwargs=cond).sample
            e_b = b64(xin, t, encoder_hidden_states=torch.zeros_like(pe).double(), added_cond_kwargs=zero).sample
            x = s.step(e_b + GUIDANCE * (e_ft - e_b), t, x).prev_sample

    tp.write_json(os.path.join(OUT, "reference.json"), {
        "about": "tools/conformance/sdxl.py: StableDiffusionXLPipeline (float32) and a float64 prior swap",
        "seed": SEED, "prompt": PROMPT, "guidance_scale": GUIDANCE, "steps": STEPS, "pixels": PIXELS,
        "scheduler": "euler", "shape": [1, 4, 8, 8], "noise": tp.floats(x0),
        "pipeline": {"latents": tp.floats(lat)},
        "conditioning": {"prompt_embeds": tp.floats(pe), "pooled": tp.floats(pooled)},
        "priorswap": {"latents": [float(v) for v in x.reshape(-1).tolist()]},
    })
    print("sdxl: wrote", OUT)


if __name__ == "__main__":
    main()
