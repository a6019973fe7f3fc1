"""The Python references of bench/realscale.bench.ts, on the models of make_realscale.py, s/step at 512×512
with classifier-free guidance (batch-2 UNet calls), as a diffusers user runs them:

  --mode diffusers-onnx  diffusers' OnnxStableDiffusionPipeline on <dir>/sd15-a (Python onnxruntime,
                         CPUExecutionProvider, the pipeline's default session options)
  --mode torch           PyTorch eager: diffusers' UNet2DConditionModel with the same weights (rebuilt
                         from make_realscale.py's seed), DDIM loop, under torch.no_grad

Prints one JSON line {"mode", "threads", "stepS", "loadS", "peakRssBytes", "modelBytes"}; stepS is the
median time between step callbacks (the first step, which includes warm-up, is the time from the start
of the denoising loop to the first callback, as priorgraph's is).
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_realscale as M  # noqa: E402

PROMPT = "a photograph of an astronaut riding a horse"
GUIDANCE = 7.5


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def files_size(*paths):
    n = 0
    for p in paths:
        n += os.path.getsize(p)
        if os.path.exists(p + "_data"):
            n += os.path.getsize(p + "_data")
    return n


def diffusers_onnx(d, steps):
    from diffusers import DDIMScheduler, OnnxRuntimeModel, OnnxStableDiffusionPipeline
    from transformers import CLIPTokenizer

    a = os.path.join(d, "sd15-a")
    t0 = time.perf_counter()
    part = lambda n: OnnxRuntimeModel(OnnxRuntimeModel.load_model(os.path.join(a, n, "model.onnx"),  # noqa: E731
                                                                  provider="CPUExecutionProvider"))
    pipe = OnnxStableDiffusionPipeline(
        vae_encoder=None,
        vae_decoder=part("vae_decoder"),
        text_encoder=part("text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(a, "tokenizer")),
        unet=part("unet"),
        scheduler=DDIMScheduler.from_pretrained(os.path.join(a, "scheduler")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    load = time.perf_counter() - t0
    stamps = []
    latents = np.random.default_rng(0).standard_normal((1, 4, 64, 64)).astype(np.float32)
    start = [0.0]

    class Done(Exception):
        pass

    def cb(step, t, lat):
        stamps.append(time.perf_counter())
        if len(stamps) == steps:
            raise Done()  # the VAE decode after the loop is not part of the measurement

    # the denoising loop starts after the text encoder: time it from the first UNet call
    unet_run = pipe.unet.model.run

    def first_run(*args, **kw):
        if not start[0]:
            start[0] = time.perf_counter()
        return unet_run(*args, **kw)

    pipe.unet.model.run = first_run
    try:
        pipe(PROMPT, height=512, width=512, num_inference_steps=steps, guidance_scale=GUIDANCE, latents=latents,
             callback=cb, callback_steps=1, output_type="np")
    except Done:
        pass
    per = [s - (stamps[i - 1] if i else start[0]) for i, s in enumerate(stamps)]
    names = [os.path.join(a, n, "model.onnx") for n in ("unet", "text_encoder")]
    threads = pipe.unet.model.get_session_options().intra_op_num_threads
    return {"threads": threads or "ort default", "stepS": float(np.median(per)), "loadS": load,
            "modelBytes": files_size(*names)}


def torch_eager(d, steps, threads):
    import torch
    from diffusers import DDIMScheduler

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    unet = M.build_unet(M.SEEDS["sd15-a"])
    load = time.perf_counter() - t0
    sched = DDIMScheduler.from_pretrained(os.path.join(d, "sd15-a", "scheduler"))
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 4, 64, 64, generator=g)
    ehs = torch.randn(2, 77, 768, generator=g)  # [uncond, cond]; the content does not change the cost
    per = []
    with torch.no_grad():
        for t in sched.timesteps:
            s0 = time.perf_counter()
            x = torch.cat([lat, lat])
            eps = unet(x, t, ehs, return_dict=False)[0]
            u, c = eps.chunk(2)
            lat = sched.step(u + GUIDANCE * (c - u), t, lat, return_dict=False)[0]
            per.append(time.perf_counter() - s0)
    return {"threads": threads, "stepS": float(np.median(per)), "loadS": load,
            "modelBytes": sum(p.numel() * p.element_size() for p in unet.parameters())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["diffusers-onnx", "torch"], required=True)
    ap.add_argument("--dir", default=os.path.expanduser("~/.cache/priorgraph/realscale"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    r = diffusers_onnx(a.dir, a.steps) if a.mode == "diffusers-onnx" else torch_eager(a.dir, a.steps, a.threads)
    print(json.dumps({"mode": a.mode, **r, "peakRssBytes": peak_rss()}), flush=True)


if __name__ == "__main__":
    main()
