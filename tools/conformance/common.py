"""Shared builders for the conformance fixtures (tools/conformance/README.md).

Everything here builds TINY configurations of the real diffusers / transformers classes (the
architecture and I/O signature of the real model, few channels and layers) with fixed random weights,
and exports them the way users do. The family scripts (sd.py; dit.py, pixart.py, sdxl.py) import it.

Determinism: every model is built right after `torch.manual_seed(seed)` with torch's default
initialisation; exports run single-threaded; packing writes files in sorted order. Rerunning a family
script in the venv of requirements.txt reproduces its fixtures byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
CLIP_DATA = Path(os.environ.get("PG_CLIP_DATA", "/work/shared/data/clip"))
FIXTURES = ROOT / "packages" / "nodes" / "test" / "fixtures" / "conformance"
DIFFUSERS_SCRIPTS = Path(os.environ.get("PG_DIFFUSERS_SRC", "/work/.snapshots/diffusers")) / "scripts"

sys.path.insert(0, str(ROOT / "tools" / "reference"))
from philox_reference import normals as _philox_normals  # noqa: E402  (the one Python copy of priorgraph's RNG)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# ----------------------------------------------------------------------------------------- noise


def priorgraph_noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The initial latents priorgraph's Sampler draws for `seed` (packages/nodes/src/rng.ts:
    Philox4x32-10 + Box-Muller, the first prod(shape) normals, row-major), as float32. diffusers
    pipelines get them through `latents=` (they multiply by init_noise_sigma as priorgraph does)."""
    n = int(np.prod(shape))
    return np.asarray(_philox_normals(seed, n), dtype=np.float32).reshape(shape)


# ------------------------------------------------------------------------------------ tokenizers

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-unicode table (the 256 byte symbols of the vocabulary)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_clip_tokenizer_files(out: Path) -> None:
    """vocab.json + merges.txt of CLIP's BPE (49408 tokens), built from the published merges file
    (/work/shared/data/clip/README.md describes the construction)."""
    lines = gzip.open(CLIP_DATA / "bpe_simple_vocab_16e6.txt.gz", "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    byte_syms = list(_bytes_to_unicode().values())
    vocab = byte_syms + [s + "</w>" for s in byte_syms] + ["".join(m) for m in merges] + [BOS, EOS]
    assert len(vocab) == 49408, len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), "utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), "utf-8")


def clip_tokenizer(pad_token: str = EOS, work: Path | None = None):
    """transformers' CLIPTokenizer on the real vocabulary. SD 1.x pads with <|endoftext|>; SD 2.x (and
    SDXL's second tokenizer) with "!"."""
    from transformers import CLIPTokenizer

    d = Path(work or "/tmp/pg-conformance-clip-vocab")
    if not (d / "merges.txt").exists():
        write_clip_tokenizer_files(d)
    return CLIPTokenizer(
        str(d / "vocab.json"), str(d / "merges.txt"), pad_token=pad_token, model_max_length=77
    )


# ------------------------------------------------------------------------------------ model builders


def tiny_clip_text_encoder(seed: int, hidden_act: str = "quick_gelu", hidden_size: int = 8, projection: bool = False):
    """A CLIP text encoder with the real vocabulary (49408) and 77 positions, 2 layers of width
    `hidden_size`. quick_gelu = OpenAI CLIP (SD 1.x, SDXL's first encoder); gelu = OpenCLIP (SD 2.x,
    SDXL's second, which has `projection=True`: CLIPTextModelWithProjection)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act=hidden_act,
        projection_dim=hidden_size,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )
    torch.manual_seed(seed)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()


def tiny_vae(seed: int, latent_channels: int = 4, scaling_factor: float = 0.18215):
    """AutoencoderKL with SD's four levels (so 8× down-sampling, as the real VAE) and 8 channels each."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 8, 8],
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=2,
        sample_size=64,
        scaling_factor=scaling_factor,
    ).eval()


def perturb(model: torch.nn.Module, seed: int, scale: float = 0.02) -> torch.nn.Module:
    """A "fine-tune": every parameter plus scale·N(0,1) noise from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


# ------------------------------------------------------------------------------------------ export


def run_quiet(cmd: list[str], ok: str | None = None, **kw) -> None:
    """Run a command with deterministic threading; raise with its output on failure (unless its
    output contains `ok`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if r.returncode != 0 and not (ok and ok in r.stdout + r.stderr):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


def _done(out: Path) -> Path:
    return out.parent / f".{out.name}.done"


def optimum_export(pipeline_dir: Path, out: Path, dtype: str = "fp32", task: str = "text-to-image") -> Path:
    """optimum-cli export onnx --model <dir> --task <task> [--dtype fp16] <out> (optimum's own CLI).

    fp16: optimum validates the export against the PyTorch model at fp32 tolerances (atol 1e-5 for the
    UNet, 3e-4 for the text encoder), which an fp16 model cannot meet; the CLI then says "the model was
    saved nonetheless" and exits non-zero. That is the export users get, so it is accepted here."""
    if _done(out).exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "onnx", "--model", str(pipeline_dir)]
    cmd += ["--task", task]
    if dtype != "fp32":
        cmd += ["--dtype", dtype]
    run_quiet(cmd + [str(out)], ok="the model was saved nonetheless" if dtype == "fp16" else None)
    _done(out).touch()
    return out


def optimum_export_pipeline(pipeline_class: str, pipeline_dir: Path, out: Path, task: str) -> Path:
    """optimum's Python exporter on a loaded pipeline (optimum.exporters.onnx.onnx_export_from_model),
    for pipelines `optimum-cli` cannot load by task: it loads through diffusers' AutoPipeline classes,
    which have no InstructPix2Pix entry ("AutoPipeline can't find a pipeline linked to
    StableDiffusionInstructPix2PixPipeline")."""
    code = (
        "import sys, diffusers\n"
        "from optimum.exporters.onnx import onnx_export_from_model\n"
        f"p = getattr(diffusers, {pipeline_class!r}).from_pretrained(sys.argv[1])\n"
        "onnx_export_from_model(p, sys.argv[2], task=sys.argv[3])\n"
    )
    lock = out.parent / f".{out.name}.lock"
    while lock.exists() and not _done(out).exists():  # another process is making it
        time.sleep(5)
    if _done(out).exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    try:
        run_quiet([sys.executable, "-c", code, str(pipeline_dir), str(out), task])
    finally:
        lock.unlink()
    _done(out).touch()
    return out


# diffusers' convert script calls torch.onnx.export without `dynamo=`; torch >= 2.9 changed that
# default to the torch.export-based exporter, which refuses the script's dynamic channel axis
# ("tracing inferred a static shape of 4 for dimension inputs['sample'].shape[1]"). The script is run
# unmodified, with the default set back to the TorchScript exporter it was written for.
# Also, diffusers 0.39.0's OnnxRuntimeModel.from_pretrained(dir) raises KeyError('provider_options')
# unless that argument is given (onnx_utils.py pops it without a default), which the script's last
# stage (assembling the OnnxStableDiffusionPipeline) does not do: the wrapper passes None, the value
# load_model documents as its default.
_CONVERT_WRAPPER = """
import functools, runpy, sys, time, torch.onnx
from diffusers import OnnxRuntimeModel
torch.onnx.export = functools.partial(torch.onnx.export, dynamo=False)
_fp = OnnxRuntimeModel.from_pretrained.__func__
OnnxRuntimeModel.from_pretrained = classmethod(lambda cls, *a, **k: _fp(cls, *a, **{"provider_options": None, **k}))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def convert_script_export(pipeline_dir: Path, out: Path, opset: int = 14) -> Path:
    """diffusers' scripts/convert_stable_diffusion_checkpoint_to_onnx.py (the pinned snapshot's copy)."""
    lock = out.parent / f".{out.name}.lock"
    while lock.exists() and not _done(out).exists():  # another process is making it
        time.sleep(5)
    if _done(out).exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    script = DIFFUSERS_SCRIPTS / "convert_stable_diffusion_checkpoint_to_onnx.py"
    args = [str(script), "--model_path", str(pipeline_dir), "--output_path", str(out), "--opset", str(opset)]
    try:
        run_quiet([sys.executable, "-c", _CONVERT_WRAPPER] + args)
        _done(out).touch()
    finally:
        lock.unlink()
    return out


# ------------------------------------------------------------------------------------ fixtures I/O

# Files of an export that are not needed to load it in priorgraph or diffusers' ONNX pipeline.
SKIP = {".DS_Store"}


class Pack:
    """Content-addressed fixture store. Identical files (the text encoder, tokenizer or VAE shared by
    several exports) are stored once, as blobs/<sha256[:16]><suffix>; manifests/<group>.json maps each
    model folder's relative paths to blobs, and each reference case's tensors (raw little-endian
    float32) to blobs. One manifest per family script, so the scripts never edit each other's files.
    The TS tests materialise model folders from the manifests (packages/nodes/test/conformance.ts)."""

    def __init__(self, group: str, root: Path = FIXTURES):
        self.root = root
        self.group = group
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifest: dict = {"models": {}, "cases": {}}

    def _blob(self, data: bytes, suffix: str) -> str:
        name = hashlib.sha256(data).hexdigest()[:16] + suffix
        dst = self.blobs / name
        if not dst.exists():
            dst.write_bytes(data)
        return name

    def add_folder(self, name: str, src: Path) -> None:
        files: dict[str, str] = {}
        for p in sorted(src.rglob("*")):
            if p.is_file() and p.name not in SKIP:
                files[p.relative_to(src).as_posix()] = self._blob(p.read_bytes(), "".join(p.suffixes[-1:]))
        self.manifest["models"][name] = files

    def add_case(self, name: str, meta: dict, tensors: dict) -> None:
        """A reference case: `meta` (JSON: graph parameters, provenance) and float32 tensors."""
        ts = {}
        for k, v in sorted(tensors.items()):
            a = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            ts[k] = {"dims": list(a.shape), "blob": self._blob(a.astype("<f4").tobytes(), ".f32")}
        self.manifest["cases"][name] = {**meta, "tensors": ts}

    def save(self) -> None:
        mdir = self.root / "manifests"
        mdir.mkdir(parents=True, exist_ok=True)
        (mdir / f"{self.group}.json").write_text(json.dumps(self.manifest, indent=1, sort_keys=True) + "\n")
        # drop blobs that no manifest names any more (a rerun may have replaced files)
        used = set()
        for m in mdir.glob("*.json"):
            j = json.loads(m.read_text())
            used |= {b for files in j.get("models", {}).values() for b in files.values()}
            used |= {t["blob"] for c in j.get("cases", {}).values() for t in c["tensors"].values()}
        for b in self.blobs.iterdir():
            if b.name not in used:
                b.unlink()
