"""DiT conformance fixtures: a TINY DiTTransformer2DModel (class-conditional, learned σ: 2C output
channels, 1000 classes + the null class 1000 as in facebook/DiT-XL-2), fixed random weights for a
base (seed 1) and a fine-tune (seed 2), a tiny AutoencoderKL decoder, DiT-XL-2's DDIM scheduler
config; exported with torch.onnx.export and the transformer's own input names (hidden_states,
timestep, class_labels; there is no optimum or diffusers ONNX export for DiT).

References (packages/nodes/test/fixtures/conformance/dit/reference.json):
- `pipeline`: diffusers' DiTPipeline on the base, class 3, guidance 4, 10 DDIM steps, float32. DiTPipeline
  has no `latents=` argument: its randn_tensor is replaced by one returning priorgraph's seeded noise.
  The final latents are what the pipeline hands its VAE (× scaling_factor); `image` its decoded output.
- `priorswap`: ε = ε_base(x, null) + w·(ε_ft(x, class) − ε_base(x, null)), both transformers in
  float64, diffusers' DDIMScheduler stepping, the same noise.

Run: nice -n 10 /work/.venvs/tools/bin/python tools/conformance/dit.py
"""
import os

import torch

import tiny_parts as tp

SEED = 42  # priorgraph Sampler seed → initial noise
CLASS_ID = 3
NULL_CLASS = 1000
GUIDANCE = 4.0
STEPS = 10
OUT = os.path.join(tp.OUT_ROOT, "dit")

SCHEDULER = dict(  # facebook/DiT-XL-2-256 scheduler/scheduler_config.json
    beta_start=0.0001,
    beta_end=0.02,
    beta_schedule="linear",
    num_train_timesteps=1000,
    clip_sample=False,
    prediction_type="epsilon",
    set_alpha_to_one=True,
    steps_offset=0,
)


def make_transformer(seed):
    from diffusers import DiTTransformer2DModel

    torch.manual_seed(seed)
    t = DiTTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,
        num_layers=2,
        sample_size=8,
        patch_size=2,
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_zero",
    )
    return tp.randomize(t, seed)


class _OnnxDiT(torch.nn.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, hidden_states, timestep, class_labels):
        return self.t(hidden_states, timestep=timestep, class_labels=class_labels).sample


def export_transformer(t, folder):
    d = os.path.join(folder, "transformer")
    args = (torch.zeros(2, 4, 8, 8), torch.tensor([999, 10]), torch.tensor([1, 1000]))
    tp.export(_OnnxDiT(t), args, os.path.join(d, "model.onnx"), ["hidden_states", "timestep", "class_labels"],
              ["out_hidden_states"], {"hidden_states": {0: "batch"}, "timestep": {0: "batch"},
                                      "class_labels": {0: "batch"}, "out_hidden_states": {0: "batch"}})
    t.save_config(d)


def main():
    from diffusers import DDIMScheduler, DiTPipeline
    from diffusers.pipelines.dit import pipeline_dit

    tp.deterministic()
    base, ft, vae = make_transformer(1), make_transformer(2), tp.tiny_vae(3)
    sched = DDIMScheduler(**SCHEDULER)
    for name, t in (("base", base), ("finetune", ft)):
        folder = os.path.join(OUT, name)
        export_transformer(t, folder)
        sched.save_config(os.path.join(folder, "scheduler"))
        parts = {"transformer": ("diffusers", "DiTTransformer2DModel"), "scheduler": ("diffusers", "DDIMScheduler")}
        if name == "base":
            tp.export_vae_decoder(vae, folder, 8)
            parts["vae"] = ("diffusers", "AutoencoderKL")
        tp.model_index(folder, "DiTPipeline", parts)

    x0 = tp.noise(SEED, (1, 4, 8, 8))

    # diffusers' DiTPipeline (float32) with priorgraph's noise, on freshly built models (exporting
    # changes the state of the module it traces)
    base, vae = make_transformer(1), tp.tiny_vae(3)
    seen = {}
    pipeline_dit.randn_tensor = lambda *a, **k: x0.clone()
    decode = vae.decode

    def spy(z, *a, **k):
        seen["z"] = z.clone()
        return decode(z, *a, **k)

    vae.decode = spy
    pipe = DiTPipeline(transformer=base, vae=vae, scheduler=DDIMScheduler(**SCHEDULER))
    with torch.no_grad():
        image = pipe(class_labels=[CLASS_ID], guidance_scale=GUIDANCE, num_inference_steps=STEPS, output_type="np").images
    pipe_latents = seen["z"].double() * vae.config.scaling_factor

    # prior swap in float64: fine-tune with the class, base with the null class
    s = DDIMScheduler(**SCHEDULER)
    s.set_timesteps(STEPS)
    b64, f64 = make_transformer(1).double(), make_transformer(2).double()
    x = x0.double() * s.init_noise_sigma
    with torch.no_grad():
        for t in s.timesteps:
            tt = t.reshape(1)
            e_ft = f64(x, timestep=tt, class_labels=torch.tensor([CLASS_ID])).sample[:, :4]
            e_b = b64(x, timestep=tt, class_labels=torch.tensor([NULL_CLASS])).sample[:, :4]
            x = s.step(e_b + GUIDANCE * (e_ft - e_b), t, x).prev_sample

    tp.write_json(os.path.join(OUT, "reference.json"), {
        "about": "tools/conformance/dit.py: DiTPipeline (float32) and a float64 prior swap on tiny DiTs",
        "seed": SEED, "class_id": CLASS_ID, "null_class": NULL_CLASS, "guidance_scale": GUIDANCE,
        "steps": STEPS, "scheduler": "ddim", "shape": [1, 4, 8, 8],
        "noise": tp.floats(x0),
        "pipeline": {"latents": tp.floats(pipe_latents), "image": tp.floats(torch.tensor(image)),
                     "image_shape": list(image.shape)},
        "priorswap": {"latents": [float(v) for v in x.reshape(-1).tolist()]},
    })
    print("dit: wrote", OUT)


if __name__ == "__main__":
    main()
