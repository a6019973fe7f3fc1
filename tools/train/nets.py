"""Network definitions: VAE, latent UNet (uncond / text / instruct-pix2pix), text encoder, DiT, classifier.

All written to export cleanly with torch.onnx (opset 17): attention is spelled out with matmuls.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- VAE (32x32x3 <-> 8x8x4)
class _VRes(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.silu(self.c1(F.silu(x))))


class VAE(nn.Module):
    def __init__(self, ch=(32, 64), zc=4):
        super().__init__()
        a, b = ch
        self.enc = nn.Sequential(
            nn.Conv2d(3, a, 4, stride=2, padding=1), _VRes(a),
            nn.Conv2d(a, b, 3, stride=2, padding=1), _VRes(b), nn.SiLU(),
            nn.Conv2d(b, 2 * zc, 3, padding=1),
        )
        self.dec = nn.Sequential(
            nn.Conv2d(zc, b, 3, padding=1), _VRes(b), _VRes(b),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(b, a, 3, padding=1), _VRes(a),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.SiLU(), nn.Conv2d(a, a, 3, padding=1), nn.SiLU(),
            nn.Conv2d(a, 3, 1),
        )
        self.zc = zc

    def encode(self, x):
        h = self.enc(x)
        mean, logvar = h[:, : self.zc], h[:, self.zc:]
        return mean, logvar.clamp(-20, 5)

    def decode(self, z):
        return self.dec(z)


class VAEEncoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode(sample)[0]


class VAEDecoderExport(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample)


# ---------------------------------------------------------------- shared pieces
class Lin(nn.Linear):
    """nn.Linear whose training path runs as a 1-D convolution.

    Debian's torch 1.13 links the reference (netlib) BLAS, where F.linear is ~25x slower than
    oneDNN's convolution on the same numbers. Same parameters and state-dict keys as nn.Linear;
    set Lin.conv = False before ONNX export to get plain MatMul/Gemm nodes.
    """

    conv = True

    def forward(self, x):
        if not Lin.conv:
            return F.linear(x, self.weight, self.bias)
        shp = x.shape
        y = F.conv1d(x.reshape(-1, shp[-1]).t().unsqueeze(0), self.weight.unsqueeze(2), self.bias)[0].t()
        return y.reshape(shp[:-1] + (y.shape[-1],))


def timestep_embedding(t, dim):
    """Sinusoidal embedding of a float timestep vector [b] -> [b, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def attention(q, k, v, heads, mask=None):
    """q [b,n,c], k/v [b,m,c] -> [b,n,c]."""
    b, n, c = q.shape
    m = k.shape[1]
    d = c // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, m, heads, d).transpose(1, 2)
    v = v.reshape(b, m, heads, d).transpose(1, 2)
    if Lin.conv:  # training path: broadcast-multiply-sum beats the reference BLAS bmm by far
        w = (q[:, :, :, None, :] * k[:, :, None, :, :]).sum(-1) * (1.0 / math.sqrt(d))
    else:
        w = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(d))
    if mask is not None:
        w = w + mask
    w = torch.softmax(w, dim=-1)
    if Lin.conv:
        o = (w[:, :, :, :, None] * v[:, :, None, :, :]).sum(3)
    else:
        o = torch.matmul(w, v)
    return o.transpose(1, 2).reshape(b, n, c)


# ---------------------------------------------------------------- UNet
class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim):
        super().__init__()
        self.n1 = nn.GroupNorm(8, cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = Lin(tdim, cout)
        self.n2 = nn.GroupNorm(8, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class SelfAttn(nn.Module):
    def __init__(self, ch, heads=4):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.qkv = Lin(ch, 3 * ch)
        self.proj = Lin(ch, ch)
        self.heads = heads

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=2)
        o = self.proj(attention(q, k, v, self.heads))
        return x + o.transpose(1, 2).reshape(b, c, h, w)


class CrossAttn(nn.Module):
    """Added on fine-tuning; output projection starts at zero so the model starts equal to the base."""

    def __init__(self, ch, ctx_dim, heads=4):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.q = Lin(ch, ch)
        self.kv = Lin(ctx_dim, 2 * ch)
        self.proj = Lin(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.heads = heads

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        k, v = self.kv(ctx).chunk(2, dim=2)
        o = self.proj(attention(self.q(t), k, v, self.heads))
        return x + o.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """Latent UNet on 8x8. ctx_dim=None: unconditional base. in_ch=8: InstructPix2Pix editor."""

    def __init__(self, in_ch=4, out_ch=4, ch=(64, 96), ctx_dim=None, tdim=128):
        super().__init__()
        a, b = ch
        self.tdim = tdim
        self.temb = nn.Sequential(Lin(64, tdim), nn.SiLU(), Lin(tdim, tdim))
        self.conv_in = nn.Conv2d(in_ch, a, 3, padding=1)
        self.d1 = ResBlock(a, a, tdim)
        self.down = nn.Conv2d(a, a, 3, stride=2, padding=1)
        self.d2 = ResBlock(a, b, tdim)
        self.d2a = SelfAttn(b)
        self.m1 = ResBlock(b, b, tdim)
        self.ma = SelfAttn(b)
        self.u2 = ResBlock(2 * b, b, tdim)
        self.u2a = SelfAttn(b)
        self.up = nn.Conv2d(b, b, 3, padding=1)
        self.u1 = ResBlock(b + a, a, tdim)
        self.nout = nn.GroupNorm(8, a)
        self.conv_out = nn.Conv2d(a, out_ch, 3, padding=1)
        self.ctx_dim = ctx_dim
        if ctx_dim is not None:
            self.x_d1 = CrossAttn(a, ctx_dim)
            self.x_d2 = CrossAttn(b, ctx_dim)
            self.x_m = CrossAttn(b, ctx_dim)
            self.x_u2 = CrossAttn(b, ctx_dim)
            self.x_u1 = CrossAttn(a, ctx_dim)

    def _x(self, name, h, ctx):
        return getattr(self, name)(h, ctx) if self.ctx_dim is not None else h

    def forward(self, x, t, ctx=None, between=None):
        """between(name, h) -> h, if given, runs after each of the five blocks (d1, d2, m, u2, u1):
        the video UNet (video.py) puts its temporal layers there."""
        mix = between or (lambda name, h: h)
        temb = self.temb(timestep_embedding(t, 64))
        h = self.conv_in(x)
        h1 = mix("d1", self._x("x_d1", self.d1(h, temb), ctx))
        h = self.down(h1)
        h2 = mix("d2", self._x("x_d2", self.d2a(self.d2(h, temb)), ctx))
        h = mix("m", self._x("x_m", self.ma(self.m1(h2, temb)), ctx))
        h = mix("u2", self._x("x_u2", self.u2a(self.u2(torch.cat([h, h2], 1), temb)), ctx))
        h = self.up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = mix("u1", self._x("x_u1", self.u1(torch.cat([h, h1], 1), temb), ctx))
        return self.conv_out(F.silu(self.nout(h)))


def init_from_base(model, base):
    """Copy every matching base weight; widen conv_in for extra input channels (zeros)."""
    sd = model.state_dict()
    bsd = base.state_dict()
    for k, v in bsd.items():
        if k not in sd:
            continue
        if sd[k].shape == v.shape:
            sd[k] = v.clone()
        elif k == "conv_in.weight":
            w = torch.zeros_like(sd[k])
            w[:, : v.shape[1]] = v
            sd[k] = w
    model.load_state_dict(sd)


class UNetUncondExport(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, sample, timestep):
        return self.m(sample, timestep.float())


class UNetCondExport(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.m(sample, timestep, encoder_hidden_states)


# ---------------------------------------------------------------- text encoder (CLIP-like)
class TextBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.qkv = Lin(d, 3 * d)
        self.proj = Lin(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(Lin(d, 4 * d), nn.GELU(), Lin(4 * d, d))
        self.heads = heads

    def forward(self, x, mask):
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=2)
        x = x + self.proj(attention(q, k, v, self.heads, mask))
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    def __init__(self, vocab, eot_id, d=64, n_ctx=16, layers=2, heads=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(n_ctx, d) * 0.01)
        self.blocks = nn.ModuleList([TextBlock(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.eot_id = eot_id
        mask = torch.full((n_ctx, n_ctx), -1e4).triu(1)  # causal, as CLIP
        self.register_buffer("mask", mask)
        self.d = d

    def forward(self, input_ids):
        ids = input_ids.long()
        x = self.tok(ids) + self.pos[None]
        for blk in self.blocks:
            x = blk(x, self.mask)
        x = self.ln(x)
        # pooler: hidden state at the first end-of-text token (CLIP takes argmax over ids)
        pos = (ids == self.eot_id).float().argmax(dim=1)
        pooled = x[torch.arange(x.shape[0]), pos]
        return x, pooled


# ---------------------------------------------------------------- DiT (unconditional, learned-sigma layout)
class PlainLN(nn.Module):
    """LayerNorm without affine parameters, spelled out (torch 1.13 exports a scale-less
    LayerNormalization node that onnx.checker rejects)."""

    def __init__(self, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = (x - mu).pow(2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps)


class DiTBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = PlainLN()
        self.qkv = Lin(d, 3 * d)
        self.proj = Lin(d, d)
        self.ln2 = PlainLN()
        self.mlp = nn.Sequential(Lin(d, 4 * d), nn.GELU(), Lin(4 * d, d))
        self.ada = Lin(d, 6 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.heads = heads

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.ada(F.silu(c))[:, None].chunk(6, dim=2)
        h = self.ln1(x) * (1 + sc1) + s1
        q, k, v = self.qkv(h).chunk(3, dim=2)
        x = x + g1 * self.proj(attention(q, k, v, self.heads))
        h = self.ln2(x) * (1 + sc2) + s2
        return x + g2 * self.mlp(h)


class DiT(nn.Module):
    def __init__(self, in_ch=4, size=8, patch=2, d=96, depth=4, heads=4):
        super().__init__()
        self.patch, self.size, self.in_ch, self.d = patch, size, in_ch, d
        n = (size // patch) ** 2
        self.embed = Lin(in_ch * patch * patch, d)
        self.pos = nn.Parameter(torch.randn(n, d) * 0.02)
        self.temb = nn.Sequential(Lin(64, d), nn.SiLU(), Lin(d, d))
        self.blocks = nn.ModuleList([DiTBlock(d, heads) for _ in range(depth)])
        self.ln = PlainLN()
        self.ada = Lin(d, 2 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.out = Lin(d, 2 * in_ch * patch * patch)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def cond(self, t):
        """The adaLN conditioning vector [b, d]: the timestep embedding (a subclass adds a class label)."""
        return self.temb(timestep_embedding(t, 64))

    def forward(self, x, t, *extra):
        b = x.shape[0]
        p, g, c = self.patch, self.size // self.patch, self.in_ch
        h = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p)
        h = self.embed(h) + self.pos[None]
        temb = self.cond(t, *extra)
        for blk in self.blocks:
            h = blk(h, temb)
        s, sc = self.ada(F.silu(temb))[:, None].chunk(2, dim=2)
        h = self.out(self.ln(h) * (1 + sc) + s)  # [b, n, 2c*p*p]
        h = h.reshape(b, g, g, 2 * c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, 2 * c, g * p, g * p)
        return h


# ---------------------------------------------------------------- classifier (eval only)
class Classifier(nn.Module):
    def __init__(self, n_shapes=4, n_colors=6, feat=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Flatten(), Lin(64 * 16, 128), nn.ReLU(), Lin(128, feat))
        self.shape_head = Lin(feat, n_shapes)
        self.color_head = Lin(feat, n_colors)

    def forward(self, image):
        f = self.fc(self.body(image))
        h = F.relu(f)
        return self.shape_head(h), self.color_head(h), f


def n_params(m):
    return sum(p.numel() for p in m.parameters())
