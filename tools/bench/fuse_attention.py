"""Fused attention for a Stable Diffusion UNet exported to ONNX (diffusers' ONNX folder layout), for
onnxruntime's CPU execution provider: every self- and cross-attention (MatMul -> Softmax -> MatMul)
becomes one com.microsoft MultiHeadAttention node, whose CPU kernel (onnxruntime 1.30 checked here)
computes it tile by tile (MlasFlashAttention, tiles sized from the L2 cache that sysconf reports) when
it has no mask, attention bias or past, and never holds the tokens x tokens score matrix: at 512x512
(4096 tokens) the unfused export holds 2 x batch x 8 heads x 4096^2 floats (2 GiB at batch 2) in its
first attention alone. README, "Fused attention on CPU", has what was checked and measured.

It runs onnxruntime's transformer optimizer (onnxruntime.transformers.optimizer, model_type "unet",
Python fusions only, opt_level 0) with the fusions that have no CPU kernel switched off — GroupNorm,
SkipGroupNorm, BiasSplitGelu, BiasAdd and NhwcConv are CUDA/ROCm-only, and MultiHeadAttention's packed
QKV / packed KV inputs are "not implemented for CPU" — and then rewrites the self-attentions, which the
optimizer turns into com.microsoft Attention when QKV is not packed (its CPU kernel materializes the
scores), into three MatMuls feeding MultiHeadAttention(q, k, v). LayerNorm / SkipLayerNormalization /
Gelu fusions are kept (CPU kernels exist). Weights stay fp32; the UNet is written with external data.

    python tools/bench/fuse_attention.py SRC DST [SRC DST ...]   # needs onnxruntime, onnx, numpy

SRC is a model folder with unet/model.onnx (+ model.onnx_data); DST gets the fused unet/ and hard links
(or copies, across file systems) of every other file of SRC, so DST loads like SRC. A later pair whose
UNet is the same file as an earlier pair's (hard links, as make_realscale.py's sd15-b) gets hard links
to that pair's fused UNet instead of a second conversion. DST must not exist yet.
"""
import argparse
import os
import shutil
import sys
import time

import numpy as np


# com.microsoft ops that onnxruntime's CPU execution provider has float kernels for, among those the
# "unet" fusions can emit with the switches below
CPU_MS_OPS = {"MultiHeadAttention", "SkipLayerNormalization", "Gelu", "BiasGelu", "FastGelu", "QuickGelu"}


def load_with_data(src):
    """onnx.load with the external data read here: onnx >= 1.19 refuses a data file that has several hard
    links ("potential hardlink attack"), and sd15-a's UNet data is hard-linked by sd15-b by default."""
    import onnx

    m = onnx.load(src, load_external_data=False)
    tensors = list(m.graph.initializer)
    tensors += [a.t for n in m.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    maps = {}
    for t in tensors:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        f = os.path.join(os.path.dirname(src), info["location"])
        if f not in maps:
            maps[f] = np.memmap(f, dtype=np.uint8, mode="r")
        off = int(info.get("offset", 0))
        t.raw_data = maps[f][off : off + int(info["length"])].tobytes()
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT
    return m


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_fusion_options():
    from onnxruntime.transformers.fusion_options import FusionOptions

    o = FusionOptions("unet")
    o.enable_group_norm = False
    o.enable_skip_group_norm = False
    o.enable_bias_splitgelu = False
    o.enable_bias_add = False
    o.enable_nhwc_conv = False
    o.enable_packed_qkv = False
    o.enable_packed_kv = False
    # symbolic shape inference serializes the model, which a > 2 GB protobuf cannot be
    o.enable_shape_inference = False
    return o


def patch_num_heads():
    """onnxruntime 1.30's FusionAttentionUnet.get_num_heads does int() on a shape-[1] array, which numpy
    >= 2.x refuses ("only 0-dimensional arrays can be converted to Python scalars"), so no attention of a
    PyTorch-2 export fuses: read that one-element constant here instead."""
    import onnxruntime.transformers.optimizer  # noqa: F401  (puts its folder on sys.path)
    from fusion_attention_unet import FusionAttentionUnet  # the module the optimizer itself uses

    original = FusionAttentionUnet.get_num_heads

    def get_num_heads(self, reshape_q, is_torch2=False):
        if is_torch2:
            p = self.model.get_parent(reshape_q, 1)
            if p is not None and p.op_type == "Concat" and len(p.input) == 4:
                v = self.model.get_constant_value(p.input[2])
                if isinstance(v, np.ndarray) and v.size == 1 and int(v.reshape(())) > 0:
                    return int(v.reshape(()))
            return 0
        return original(self, reshape_q, is_torch2)

    FusionAttentionUnet.get_num_heads = get_num_heads


def split_self_attention(model):
    """com.microsoft Attention(x, W_qkv [C, 3C], zero bias) -> MatMul(x, W_q|W_k|W_v) -> MultiHeadAttention."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    count = 0
    for i, n in enumerate(list(g.node)):
        if n.op_type != "Attention" or n.domain != "com.microsoft":
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        bias = numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] else None
        if bias is not None and np.any(bias):
            raise ValueError(f"{n.name}: non-zero QKV bias (not a diffusers UNet attention)")
        if len(n.input) > 3 and any(n.input[3:]):
            raise ValueError(f"{n.name}: attention with a mask/past input (not a diffusers UNet attention)")
        heads = next(a.i for a in n.attribute if a.name == "num_heads")
        c3 = w.shape[1]
        new = []
        qkv = []
        for j, part in enumerate("qkv"):
            wn = f"{n.name}_{part}_weight"
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[:, j * c3 // 3 : (j + 1) * c3 // 3]), wn))
            qkv.append(f"{n.name}_{part}")
            new.append(helper.make_node("MatMul", [n.input[0], wn], [qkv[-1]], name=f"{n.name}_{part}_matmul"))
        new.append(helper.make_node("MultiHeadAttention", qkv, list(n.output), name=f"{n.name}_mha",
                                    domain="com.microsoft", num_heads=heads))
        pos = list(g.node).index(n)
        g.node.remove(n)
        for k, m in enumerate(new):
            g.node.insert(pos + k, m)
        count += 1
    used = {x for n in g.node for x in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    return count


def drop_zero_bias(model):
    """The optimizer gives cross-attention MultiHeadAttention an all-zero bias input: leave it out."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "MultiHeadAttention" and len(n.input) == 4 and n.input[3] in inits:
            if not np.any(numpy_helper.to_array(inits[n.input[3]])):
                del n.input[3]
    used = {x for n in model.graph.node for x in n.input}
    for t in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(t)


def fuse_unet(src, dst):
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    log(f"reading {src}")
    m = load_with_data(src)
    # element types for the optimizer's removal of float -> float Casts (the TorchScript export puts one
    # between the attention and to_out, which its attention patterns do not expect): onnx's type
    # inference on the model without its weights (> 2 GB protobufs cannot be inferred whole)
    typed = onnx.shape_inference.infer_shapes(onnx.load(src, load_external_data=False))
    m.graph.value_info.extend(typed.graph.value_info)
    del typed
    before = {op: sum(n.op_type == op for n in m.graph.node) for op in ("Softmax", "MatMul")}
    log(f"fusing ({len(m.graph.node)} nodes; {before})")
    patch_num_heads()
    opt = optimize_model(m, model_type="unet", num_heads=0, hidden_size=0,
                         optimization_options=cpu_fusion_options(), opt_level=0, use_gpu=False)
    m = opt.model
    n_split = split_self_attention(m)
    drop_zero_bias(m)
    opt.topological_sort()
    ops = {}
    for n in m.graph.node:
        key = f"{n.domain}:{n.op_type}" if n.domain else n.op_type
        ops[key] = ops.get(key, 0) + 1
    ms = {k.split(":", 1)[1] for k in ops if k.startswith("com.microsoft:")}
    if ms - CPU_MS_OPS:
        raise SystemExit(f"fused UNet has com.microsoft ops without a CPU kernel: {sorted(ms - CPU_MS_OPS)}")
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    log(f"{ops.get('com.microsoft:MultiHeadAttention', 0)} MultiHeadAttention ({n_split} of them self-attention "
        f"split from Attention), Softmax left: {ops.get('Softmax', 0)}; com.microsoft ops: "
        f"{ {k: v for k, v in ops.items() if k.startswith('com.microsoft:')} }")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save_model(m, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(dst) + "_data", size_threshold=1024)
    log(f"{dst} written")


def link_or_copy(a, b):
    os.makedirs(os.path.dirname(b), exist_ok=True)
    try:
        os.link(a, b)
    except OSError:
        shutil.copy2(a, b)


def convert(src_dir, dst_dir, done):
    if os.path.exists(dst_dir):
        raise SystemExit(f"{dst_dir} exists; remove it or choose another destination")
    unet = os.path.join(src_dir, "unet", "model.onnx")
    data = unet + "_data"
    if not os.path.exists(unet):
        raise SystemExit(f"{src_dir}: no unet/model.onnx")
    tmp = dst_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for root, _, files in os.walk(src_dir):
        for f in files:
            p = os.path.join(root, f)
            if os.path.dirname(p) != os.path.dirname(unet) or f == "config.json":
                link_or_copy(p, os.path.join(tmp, os.path.relpath(p, src_dir)))
    out = os.path.join(tmp, "unet", "model.onnx")
    same = next((d for s, d in done if os.path.exists(data) and os.path.samefile(s, data)), None)
    if same:
        for f in ("model.onnx", "model.onnx_data"):
            link_or_copy(os.path.join(same, "unet", f), os.path.join(tmp, "unet", f))
        log(f"{dst_dir}/unet: hard links to {same}/unet (the same source UNet file)")
    else:
        fuse_unet(unet, out)
    os.replace(tmp, dst_dir)
    if os.path.exists(data):
        done.append((data, dst_dir))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", help="SRC DST [SRC DST ...]")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("expected SRC DST pairs")
    done = []
    for src, dst in zip(a.pairs[::2], a.pairs[1::2]):
        convert(os.path.abspath(src), os.path.abspath(dst), done)
    log("all done")


if __name__ == "__main__":
    sys.exit(main())
