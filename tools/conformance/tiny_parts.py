"""Parts shared by the DiT, PixArt-α and SDXL conformance scripts (dit.py, pixart.py, sdxl.py).

- priorgraph's seeded initial noise (Philox4x32-10 + Box-Muller, tools/reference/philox_reference.py,
  the stream packages/nodes/src/rng.ts draws), handed to diffusers through `latents=`;
- fixed random weights: every parameter of a model built by diffusers'/transformers' own class is
  replaced by seeded normals (so no zero-initialised adaLN-Zero layer hides a path);
- a tiny AutoencoderKL and its decoder exported with diffusers' ONNX names (latent_sample → sample);
- torch.onnx.export with the TorchScript exporter at opset 17 (the one onnxruntime-node loads);
- writing reference JSON with float32 values printed exactly.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from philox_reference import normals  # noqa: E402

OUT_ROOT = os.path.join(ROOT, "packages", "nodes", "test", "fixtures", "conformance")
OPSET = 17


def noise(seed, shape):
    """priorgraph's createRng(seed).randn(n), reshaped: the Sampler's initial latents (before
    × init_noise_sigma, which both sides apply)."""
    n = int(np.prod(shape))
    return torch.tensor(np.array(normals(seed, n), dtype=np.float32).reshape(shape))


def randomize(model, seed, scale=0.2):
    """Fixed random weights: default init + seeded N(0, scale²) on every parameter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return model.eval()


def export(module, args, path, input_names, output_names, dynamic_axes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(
        module,
        args,
        path,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )


def tiny_vae(seed):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    return randomize(vae, seed, 0.05)


class _Decoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample).sample


def export_vae_decoder(vae, folder, latent_hw):
    """vae_decoder/model.onnx (latent_sample → sample, as diffusers' ONNX layout) + config.json."""
    d = os.path.join(folder, "vae_decoder")
    z = torch.zeros(1, 4, latent_hw, latent_hw)
    export(_Decoder(vae), (z,), os.path.join(d, "model.onnx"), ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 2: "h", 3: "w"}, "sample": {0: "batch", 2: "H", 3: "W"}})
    vae.save_config(d)


def floats(t):
    """A tensor → a flat list of float32 values (exact in JSON)."""
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).numpy().tolist()]


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def model_index(folder, cls, parts, extra=None):
    idx = {"_class_name": cls, "_diffusers_version": "0.39.0", **{k: list(v) for k, v in parts.items()}}
    if extra:
        idx.update(extra)
    write_json(os.path.join(folder, "model_index.json"), idx)


def deterministic():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
