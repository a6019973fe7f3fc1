"""Full-size Stable Diffusion 1.5 parts with random weights, for bench/realscale.bench.ts.

Built with diffusers' and transformers' own classes from SD 1.5's published configs (written out
below), random weights from fixed seeds, exported the way diffusers' ONNX pipelines expect
(input/output names of OnnxStableDiffusionPipeline), opset 17, torch.onnx.export(dynamo=False):

    <out>/sd15-a/       unet (fp32, external data unet/model.onnx_data), text_encoder, vae_decoder,
                        tokenizer (CLIP's BPE vocabulary from ../shared/data/clip), scheduler (DDIM)
    <out>/sd15-b/unet/  the "base" of prior swap: hard links to sd15-a's UNet files (a second model file,
                        loaded as a second session; --redraw-b: a copy with redrawn weights instead)
    <out>/sd15-a-fp16/unet/  the first UNet in float16 (onnxruntime.transformers.float16)

Nothing is committed: the parts are ~10 GB. Default <out>: ~/.cache/priorgraph/realscale.

    nice -n 10 /work/.venvs/tools/bin/python tools/bench/make_realscale.py [--out DIR] [--only PART]

Each part is skipped when its file exists (delete it to rebuild). diffusers may also come from a source
checkout on PYTHONPATH (e.g. PYTHONPATH=/work/.snapshots/diffusers/src). On the 2-core machine under
heavy load (load average 20–30, nice 10) the fp32 UNet took ~45 minutes (6 to build the model, ~30
to trace and export, the rest to gather the weights into one file) at ~7 GB RSS; the rest minutes.
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
from common import write_clip_tokenizer_files  # noqa: E402  (one copy of CLIP's vocabulary construction)
from fuse_attention import load_with_data  # noqa: E402  (also used by the fused-attention conversion)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


OPSET = 17

# stable-diffusion-v1-5: unet/config.json, vae/config.json, text_encoder/config.json (published values)
UNET_CONFIG = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    attention_head_dim=8,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
CLIP_CONFIG = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=768,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
# SD 1.5 ships a PNDM config; the benchmark samples with DDIM on the same betas (both sides)
SCHEDULER_CONFIG = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}
SEEDS = {"sd15-a": 1}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_unet(seed):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**UNET_CONFIG).eval()


def build_vae(seed=3):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_CONFIG).eval()


def build_text_encoder(seed=4):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG)).eval()


class UNetWrap(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class DecoderWrap(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample, return_dict=False)[0]


class TextWrap(torch.nn.Module):
    def __init__(self, te):
        super().__init__()
        self.te = te

    def forward(self, input_ids):
        out = self.te(input_ids=input_ids)
        return out.last_hidden_state, out.pooler_output


def export(module, args, path, in_names, out_names, dynamic, external):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            module,
            args,
            tmp,
            input_names=in_names,
            output_names=out_names,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    if external:
        # torch writes >2 GB models as one file per tensor; gather them into model.onnx_data
        m = onnx.load(tmp, load_external_data=True)
        data = os.path.basename(path) + "_data"
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data,
                        size_threshold=1024)
        del m
        folder = os.path.dirname(path)
        for f in os.listdir(folder):
            if f not in (os.path.basename(path), data, "config.json"):
                os.remove(os.path.join(folder, f))
    else:
        os.replace(tmp, path)


def make_unet(out, name):
    path = os.path.join(out, name, "unet", "model.onnx")
    if os.path.exists(path):
        log(f"{path} exists")
        return path
    log(f"building the SD 1.5 UNet (seed {SEEDS[name]})")
    unet = build_unet(SEEDS[name])
    n = sum(p.numel() for p in unet.parameters())
    log(f"{n / 1e6:.1f} M parameters; exporting to {path} (fp32, external data)")
    # traced on a small input (batch, height and width are dynamic axes): the trace runs the model once
    args = (torch.randn(1, 4, 16, 16), torch.tensor([999.0]), torch.randn(1, 77, 768))
    dyn = {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
           "encoder_hidden_states": {0: "batch", 1: "sequence"}, "out_sample": {0: "batch", 2: "height", 3: "width"}}
    export(UNetWrap(unet), args, path, ["sample", "timestep", "encoder_hidden_states"], ["out_sample"], dyn, True)
    with open(os.path.join(out, name, "unet", "config.json"), "w") as f:
        json.dump({"_class_name": "UNet2DConditionModel", **UNET_CONFIG}, f, indent=2)
    log(f"{path} done")
    return path


def make_unet_b(out, src, redraw):
    """The prior-swap base. By default hard links to the first UNet's files under another path: a second
    model file that the runtime loads as a second session (speed and memory do not depend on the weight
    values; prior swap's numerics are tested on small models). With --redraw-b, a copy whose float
    weights are redrawn (numpy seed 2) from each tensor's mean and standard deviation."""
    path = os.path.join(out, "sd15-b", "unet", "model.onnx")
    if os.path.exists(path):
        log(f"{path} exists")
        return
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    src_data = os.path.join(os.path.dirname(src), "model.onnx_data")
    shutil.copy(os.path.join(os.path.dirname(src), "config.json"), os.path.join(folder, "config.json"))
    if not redraw:
        os.link(src_data, os.path.join(folder, "model.onnx_data"))
        os.link(src, path)
        log(f"{path}: hard links to {src}")
        return
    import onnx

    log(f"redrawing the float weights of {src} (seed 2) into {path}")
    m = onnx.load(src, load_external_data=False)
    tmp = os.path.join(folder, "model.onnx_data.tmp")
    shutil.copy(src_data, tmp)
    rng = np.random.default_rng(2)
    data = np.memmap(tmp, dtype=np.uint8, mode="r+")
    for t in m.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL or t.data_type != onnx.TensorProto.FLOAT:
            continue
        kv = {e.key: e.value for e in t.external_data}
        off, n = int(kv.get("offset", 0)), int(kv["length"])
        w = data[off : off + n].view(np.float32)
        mean, std = float(w.mean()), float(w.std())
        if std > 0:
            w[:] = rng.normal(mean, std, size=w.shape).astype(np.float32)
    data.flush()
    del data
    os.replace(tmp, os.path.join(folder, "model.onnx_data"))
    shutil.copy(src, path)
    log(f"{path} done")


def keep_float_scales(m16):
    """convert_float_to_float16 (shape inference off) also turns the Constant that feeds a Resize's
    `scales` (input 2, float32 only) into float16, and onnxruntime then rejects the model ("Type
    'tensor(float16)' of input parameter ... of operator (Resize) ... is invalid"): turn those back."""
    import onnx
    from onnx import numpy_helper

    producer = {o: n for n in m16.graph.node for o in n.output}
    inits = {t.name: t for t in m16.graph.initializer}
    for n in m16.graph.node:
        if n.op_type != "Resize" or len(n.input) < 3 or not n.input[2]:
            continue
        c = producer.get(n.input[2])
        value = [a.t for a in c.attribute if a.name == "value"] if c is not None and c.op_type == "Constant" else []
        t = value[0] if value else inits.get(n.input[2])
        if t is not None and t.data_type == onnx.TensorProto.FLOAT16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))


def make_fp16(out, src):
    path = os.path.join(out, "sd15-a-fp16", "unet", "model.onnx")
    if os.path.exists(path):
        log(f"{path} exists")
        return
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    log(f"converting {src} to float16")
    m = load_with_data(src)
    m16 = convert_float_to_float16(m, keep_io_types=False, disable_shape_infer=True)
    del m
    keep_float_scales(m16)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save_model(m16, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=1024)
    shutil.copy(os.path.join(os.path.dirname(src), "config.json"), os.path.join(os.path.dirname(path), "config.json"))
    log(f"{path} done")


def make_vae_decoder(out):
    path = os.path.join(out, "sd15-a", "vae_decoder", "model.onnx")
    if os.path.exists(path):
        log(f"{path} exists")
        return
    log("exporting the SD 1.5 VAE decoder")
    vae = build_vae()
    export(DecoderWrap(vae), (torch.randn(1, 4, 16, 16),), path, ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}},
           False)
    with open(os.path.join(os.path.dirname(path), "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderKL", **VAE_CONFIG}, f, indent=2)
    log(f"{path} done")


def make_text_encoder(out):
    path = os.path.join(out, "sd15-a", "text_encoder", "model.onnx")
    if os.path.exists(path):
        log(f"{path} exists")
        return
    log("exporting the SD 1.5 text encoder (CLIP ViT-L/14 text tower)")
    te = build_text_encoder()
    ids = torch.zeros(1, 77, dtype=torch.int32)
    export(TextWrap(te), (ids,), path, ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}}, False)
    log(f"{path} done")


def write_tokenizer(folder):
    """CLIP's tokenizer folder: vocab.json + merges.txt (tools/conformance/common.py) and its configs."""
    write_clip_tokenizer_files(Path(folder))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "do_lower_case": True,
                   "tokenizer_class": "CLIPTokenizer"}, f, indent=2)
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump({"pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>"}, f, indent=2)


def write_folder_files(out):
    d = os.path.join(out, "sd15-a")
    write_tokenizer(os.path.join(d, "tokenizer"))
    os.makedirs(os.path.join(d, "scheduler"), exist_ok=True)
    with open(os.path.join(d, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SCHEDULER_CONFIG, f, indent=2)
    with open(os.path.join(d, "model_index.json"), "w") as f:
        json.dump({"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.36.0",
                   "latent_space": "sd1-vae", "scheduler": ["diffusers", "DDIMScheduler"],
                   "text_encoder": ["diffusers", "OnnxRuntimeModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "OnnxRuntimeModel"], "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
                   "vae_encoder": [None, None], "safety_checker": [None, None], "feature_extractor": [None, None],
                   "requires_safety_checker": False}, f, indent=2)
    for name in ("sd15-b", "sd15-a-fp16"):
        os.makedirs(os.path.join(out, name, "scheduler"), exist_ok=True)
        shutil.copy(os.path.join(d, "scheduler", "scheduler_config.json"), os.path.join(out, name, "scheduler"))
        with open(os.path.join(out, name, "model_index.json"), "w") as f:
            json.dump({"_class_name": "OnnxStableDiffusionPipeline", "latent_space": "sd1-vae"}, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/priorgraph/realscale"))
    ap.add_argument("--only", choices=["unet-a", "unet-b", "fp16", "vae", "text", "files"], action="append")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--redraw-b", action="store_true", help="sd15-b with redrawn weights instead of hard links")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    only = set(a.only or ["files", "text", "vae", "unet-a", "unet-b", "fp16"])
    log(f"torch {torch.__version__}, out {a.out}, parts {sorted(only)}")
    if "files" in only:
        write_folder_files(a.out)
    if "text" in only:
        make_text_encoder(a.out)
    if "vae" in only:
        make_vae_decoder(a.out)
    if "unet-a" in only:
        make_unet(a.out, "sd15-a")
    if "unet-b" in only:
        make_unet_b(a.out, os.path.join(a.out, "sd15-a", "unet", "model.onnx"), a.redraw_b)
    if "fp16" in only:
        make_fp16(a.out, os.path.join(a.out, "sd15-a", "unet", "model.onnx"))
    log("all done")


if __name__ == "__main__":
    sys.exit(main())
