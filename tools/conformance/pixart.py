"""PixArt-α conformance fixtures: a TINY PixArtTransformer2DModel (DiT with cross-attention, adaLN-single,
learned σ: 2C outputs) on a TINY transformers T5EncoderModel (T5 v1.1 style: gated-GELU), fixed random
weights for a base (seed 11) and a fine-tune (seed 12), a tiny AutoencoderKL decoder, and a
DPMSolverMultistepScheduler with PixArt-α's linear β schedule (0.0001 → 0.02).

The tokenizer is a tiny Unigram vocabulary built here with `tokenizers` and saved by transformers'
T5TokenizerFast (tokenizer.json; NFKC stands in for T5's precompiled SentencePiece normalizer).
Exports (torch.onnx.export; diffusers has no ONNX pipeline for PixArt): text_encoder/model.onnx
(input_ids, attention_mask → last_hidden_state), transformer/model.onnx (hidden_states, timestep,
encoder_hidden_states, encoder_attention_mask → learned-σ output).

References (packages/nodes/test/fixtures/conformance/pixart/reference.json):
- `pipeline`: diffusers' PixArtAlphaPipeline on the base, prompt PROMPT, negative "", guidance 4.5,
  10 steps, max_sequence_length 120, clean_caption=False, `latents=` priorgraph's seeded noise,
  output_type="latent"; float32.
- `priorswap`: fine-tune with the prompt, base with "" (its attention mask included), float64 models
  and diffusers' DPM-Solver++ stepping.
- `crossprior`: the paper's cross-architecture prior — the DiT fine-tune of dit.py with class 3 guided
  (w = 4, DDIM) against this PixArt-α base with "", float64.
- `tokens`: ids and masks of a few texts from the saved tokenizer (checked by the TS tokenizer).

Run: nice -n 10 /work/.venvs/tools/bin/python tools/conformance/pixart.py
"""
import math
import os

import torch

import tiny_parts as tp

SEED = 7
PROMPT = "a photo of a red circle on the green grass"
GUIDANCE = 4.5
STEPS = 10
MAX_LEN = 120
OUT = os.path.join(tp.OUT_ROOT, "pixart")

WORDS = ("a photo of the red green blue circle square on grass cat dog painting in with and sky "
         "tree small big picture").split()
SCHEDULER = dict(beta_start=0.0001, beta_end=0.02, beta_schedule="linear", num_train_timesteps=1000,
                 prediction_type="epsilon", algorithm_type="dpmsolver++", solver_order=2,
                 lower_order_final=True)


def make_tokenizer(folder):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0)]
    pieces += [("\u2581" + w, -4.0 - 0.1 * i) for i, w in enumerate(WORDS)]
    pieces += [(s, -6.0) for s in ("s", "ing", "er", "est", "ed")]
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"
    pieces += [(c, -8.0 - 0.01 * i) for i, c in enumerate(chars)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    t5 = T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                         extra_ids=0, model_max_length=512)
    t5.save_pretrained(os.path.join(folder, "tokenizer"))
    return t5


def make_text_encoder(seed, vocab):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=32,
                   feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return tp.randomize(T5EncoderModel(cfg), seed, 0.1)


def make_transformer(seed):
    from diffusers import PixArtTransformer2DModel

    torch.manual_seed(seed)
    t = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
        sample_size=8, patch_size=2, caption_channels=32, cross_attention_dim=16, attention_bias=True,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6)
    return tp.randomize(t, seed)


class _OnnxT5(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class _OnnxPixArt(torch.nn.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask):
        return self.t(hidden_states, encoder_hidden_states=encoder_hidden_states, timestep=timestep,
                      encoder_attention_mask=encoder_attention_mask,
                      added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample


def drop_guarded_squeeze(path):
    """The TorchScript exporter turns the transformer's `hidden_states.squeeze(1)` after proj_out into
    If(dim 1 == 1, Squeeze, Identity); onnxruntime's shape inference knows that dim (the token count,
    16 here, never 1) and refuses to load the model. Replace each such If by its else branch."""
    import onnx

    m = onnx.load(path)
    g = m.graph
    for i, n in enumerate(list(g.node)):
        if n.op_type != "If":
            continue
        br = {a.name: a.g for a in n.attribute}
        then, other = br["then_branch"].node, br["else_branch"].node
        if [x.op_type for x in then if x.op_type != "Constant"] == ["Squeeze"] and [x.op_type for x in other] == [
            "Identity"
        ]:
            g.node.remove(n)
            g.node.insert(i, onnx.helper.make_node("Identity", [other[0].input[0]], list(n.output), name=n.name))
    onnx.save(m, path)


def export_all(folder, t, te=None):
    d = os.path.join(folder, "transformer")
    b = {0: "batch"}
    hw = {0: "batch", 2: "height", 3: "width"}
    args = (torch.zeros(2, 4, 8, 8), torch.tensor([999, 10]), torch.zeros(2, MAX_LEN, 32),
            torch.ones(2, MAX_LEN, dtype=torch.int64))
    tp.export(_OnnxPixArt(t), args, os.path.join(d, "model.onnx"),
              ["hidden_states", "timestep", "encoder_hidden_states", "encoder_attention_mask"],
              ["out_hidden_states"], {"hidden_states": hw, "timestep": b, "out_hidden_states": hw,
                                      "encoder_hidden_states": {0: "batch", 1: "seq"},
                                      "encoder_attention_mask": {0: "batch", 1: "seq"}})
    drop_guarded_squeeze(os.path.join(d, "model.onnx"))
    t.save_config(d)
    if te is not None:
        d = os.path.join(folder, "text_encoder")
        ids = torch.ones(2, 16, dtype=torch.int64)
        tp.export(_OnnxT5(te), (ids, ids.clone()), os.path.join(d, "model.onnx"),
                  ["input_ids", "attention_mask"], ["last_hidden_state"],
                  {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                   "last_hidden_state": {0: "batch", 1: "seq"}})
        te.config.save_pretrained(d)


def main():
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline

    tp.deterministic()
    base_dir, ft_dir = os.path.join(OUT, "base"), os.path.join(OUT, "finetune")
    tok = make_tokenizer(base_dir)
    te = make_text_encoder(10, len(tok))
    base, ft, vae = make_transformer(11), make_transformer(12), tp.tiny_vae(13)
    export_all(base_dir, base, te)
    tp.export_vae_decoder(vae, base_dir, 8)
    export_all(ft_dir, ft)
    for folder in (base_dir, ft_dir):
        DPMSolverMultistepScheduler(**SCHEDULER).save_config(os.path.join(folder, "scheduler"))
    tp.model_index(base_dir, "PixArtAlphaPipeline", {
        "tokenizer": ("transformers", "T5TokenizerFast"), "text_encoder": ("transformers", "T5EncoderModel"),
        "transformer": ("diffusers", "PixArtTransformer2DModel"), "vae": ("diffusers", "AutoencoderKL"),
        "scheduler": ("diffusers", "DPMSolverMultistepScheduler")})
    tp.model_index(ft_dir, "PixArtAlphaPipeline", {
        "transformer": ("diffusers", "PixArtTransformer2DModel"),
        "scheduler": ("diffusers", "DPMSolverMultistepScheduler")})

    x0 = tp.noise(SEED, (1, 4, 8, 8))
    # fresh models for the references (exporting changes the state of the module it traces)
    te, base, vae = make_text_encoder(10, len(tok)), make_transformer(11), tp.tiny_vae(13)
    pipe = PixArtAlphaPipeline(tokenizer=tok, text_encoder=te, transformer=base, vae=vae,
                               scheduler=DPMSolverMultistepScheduler(**SCHEDULER))
    with torch.no_grad():
        lat = pipe(PROMPT, negative_prompt="", guidance_scale=GUIDANCE, num_inference_steps=STEPS,
                   latents=x0.clone(), output_type="latent", clean_caption=False,
                   max_sequence_length=MAX_LEN, height=16, width=16, use_resolution_binning=False).images

    # prior swap, float64: fine-tune(prompt) vs base("")
    def enc(text):
        t = tok(text, padding="max_length", max_length=MAX_LEN, truncation=True, add_special_tokens=True,
                return_tensors="pt")
        te64 = make_text_encoder(10, len(tok)).double()
        return te64(t.input_ids, attention_mask=t.attention_mask)[0], t.attention_mask

    (h_c, m_c), (h_u, m_u) = enc(PROMPT), enc("")
    s = DPMSolverMultistepScheduler(**SCHEDULER)
    s.set_timesteps(STEPS)
    b64, f64 = make_transformer(11).double(), make_transformer(12).double()
    x = x0.double() * s.init_noise_sigma
    ac = {"resolution": None, "aspect_ratio": None}
    with torch.no_grad():
        for t in s.timesteps:
            tt = t.reshape(1)
            e_ft = f64(x, encoder_hidden_states=h_c, encoder_attention_mask=m_c, timestep=tt,
                       added_cond_kwargs=ac).sample[:, :4]
            e_b = b64(x, encoder_hidden_states=h_u, encoder_attention_mask=m_u, timestep=tt,
                      added_cond_kwargs=ac).sample[:, :4]
            x = s.step(e_b + GUIDANCE * (e_ft - e_b), t, x).prev_sample

    # the paper's cross-architecture prior: the DiT fine-tune (dit.py) with its class, guided against
    # this PixArt-α base with "" (same linear β schedule and latent shape), float64, DiT's DDIM config
    import dit
    from diffusers import DDIMScheduler

    s = DDIMScheduler(**dit.SCHEDULER)
    s.set_timesteps(dit.STEPS)
    d64 = dit.make_transformer(2).double()
    xc = tp.noise(dit.SEED, (1, 4, 8, 8)).double() * s.init_noise_sigma
    with torch.no_grad():
        for t in s.timesteps:
            tt = t.reshape(1)
            e_ft = d64(xc, timestep=tt, class_labels=torch.tensor([dit.CLASS_ID])).sample[:, :4]
            e_b = b64(xc, encoder_hidden_states=h_u, encoder_attention_mask=m_u, timestep=tt,
                      added_cond_kwargs=ac).sample[:, :4]
            xc = s.step(e_b + dit.GUIDANCE * (e_ft - e_b), t, xc).prev_sample

    texts = [PROMPT, "", "A  Painting of the biggest dogs, in the sky!", "x" * 300, "Ｆｕｌｌ width café"]
    tokens = []
    for text in texts:
        t = tok(text, padding="max_length", max_length=MAX_LEN, truncation=True)
        tokens.append({"text": text, "ids": t.input_ids, "mask": t.attention_mask})
    tp.write_json(os.path.join(OUT, "reference.json"), {
        "about": "tools/conformance/pixart.py: PixArtAlphaPipeline (float32) and a float64 prior swap",
        "seed": SEED, "prompt": PROMPT, "guidance_scale": GUIDANCE, "steps": STEPS, "max_length": MAX_LEN,
        "scheduler": "dpmpp_2m", "shape": [1, 4, 8, 8], "noise": tp.floats(x0),
        "pipeline": {"latents": tp.floats(lat)},
        "priorswap": {"latents": [float(v) for v in x.reshape(-1).tolist()]},
        "crossprior": {"about": "DiT fine-tune (dit.py, class_id) guided against this PixArt base with \"\"",
                       "seed": dit.SEED, "class_id": dit.CLASS_ID, "guidance_scale": dit.GUIDANCE, "steps": dit.STEPS,
                       "scheduler": "ddim", "latents": [float(v) for v in xc.reshape(-1).tolist()]},
        "tokens": tokens,
    })
    assert all(math.isfinite(v) for v in tp.floats(lat))
    print("pixart: wrote", OUT)


if __name__ == "__main__":
    main()
