"""Procedural 32x32 shape data for the priorgraph demo model family.

Everything is deterministic from a numpy seed; nothing is downloaded.

Domains (see README.md for the reasoning):
  base   broad data: mostly dark backgrounds (85%), some dim grey (10%), rarely light grey (5%);
         large-ish shapes (radius 5..11 px).
  ft     the shifted fine-tune domain: light *pastel-tinted* backgrounds with a soft gradient and
         small shapes (radius 4.5..8 px).  The base sees light backgrounds only 5% of the time,
         and never tinted/gradient ones or shapes this small on them.
  edit   InstructPix2Pix pairs rendered in the ft domain: same scene, one attribute changed.

Domain statistic: `border_brightness(img)` = mean of the 2-pixel border ring in [0,1] units.
  base: mostly < 0.35;  ft: > 0.7.
"""
import numpy as np

SHAPES = ["circle", "square", "triangle", "cross"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
COLOR_RGB = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.72, 0.15),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.58, 0.12, 0.78),
    "orange": (1.00, 0.50, 0.00),
}
BG_WORDS = ["dark", "gray", "light"]
SIZE = 32
_SS = 2  # supersampling factor for anti-aliased edges
_g = (np.arange(SIZE * _SS) + 0.5) / _SS
_YY, _XX = np.meshgrid(_g, _g, indexing="ij")


def caption(shape, color, bg_word):
    art = "an" if color[0] in "aeiou" else "a"
    return f"{art} {color} {shape} on a {bg_word} background"


def instruction_color(color):
    return f"make it {color}"


def instruction_shape(shape):
    return f"turn it into a {shape}"


def all_captions():
    return [caption(s, c, b) for b in BG_WORDS for s in SHAPES for c in COLORS]


def all_instructions():
    return [instruction_color(c) for c in COLORS] + [instruction_shape(s) for s in SHAPES]


def _mask(shape, cx, cy, r, angle=0.0):
    dx, dy = _XX - cx, _YY - cy
    if angle:  # rotate the shape by `angle` radians about its centre (video clips)
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = c * dx + s * dy, -s * dx + c * dy
    if shape == "circle":
        m = dx * dx + dy * dy <= r * r
    elif shape == "square":
        h = r * 0.86
        m = (np.abs(dx) <= h) & (np.abs(dy) <= h)
    elif shape == "triangle":
        # upward triangle inscribed in the radius-r circle
        top, bot = -r, r * 0.6
        half = (dy - top) / (bot - top) * r * 1.05
        m = (dy >= top) & (dy <= bot) & (np.abs(dx) <= half)
    elif shape == "cross":
        w = r * 0.36
        m = ((np.abs(dx) <= w) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w) & (np.abs(dx) <= r))
    else:
        raise ValueError(shape)
    m = m.astype(np.float32).reshape(SIZE, _SS, SIZE, _SS).mean(axis=(1, 3))
    return m


def sample_scene(rng, domain):
    """Draw scene parameters. domain: 'base' or 'ft'."""
    s = {}
    s["shape"] = SHAPES[rng.integers(len(SHAPES))]
    s["color"] = COLORS[rng.integers(len(COLORS))]
    if domain == "base":
        u = rng.random()
        if u < 0.85:
            s["bg_word"] = "dark"
            level = rng.uniform(0.0, 0.3)
        elif u < 0.95:
            s["bg_word"] = "gray"
            level = rng.uniform(0.35, 0.55)
        else:
            s["bg_word"] = "light"
            level = rng.uniform(0.7, 0.92)
        tint = rng.uniform(-0.04, 0.04, size=3)
        s["bg"] = np.clip(level + tint, 0, 1)
        s["grad"] = np.zeros(3)
        r = rng.uniform(5.0, 11.0)
    elif domain == "ft":
        s["bg_word"] = "light"
        level = rng.uniform(0.78, 0.95)
        tint = rng.uniform(-0.12, 0.05, size=3)  # pastel: pull one or two channels down
        s["bg"] = np.clip(level + tint, 0, 1)
        s["grad"] = rng.uniform(-0.06, 0.06, size=3)  # soft vertical gradient
        r = rng.uniform(4.5, 8.0)
    else:
        raise ValueError(domain)
    s["r"] = r
    margin = r + 2.5
    s["cx"] = rng.uniform(margin, SIZE - margin)
    s["cy"] = rng.uniform(margin, SIZE - margin)
    s["jitter"] = rng.uniform(-0.05, 0.05, size=3)
    return s


def render(s):
    """Scene dict -> float32 [3,32,32] in [0,1]."""
    yy = (np.arange(SIZE, dtype=np.float32) / (SIZE - 1) - 0.5)[None, :, None]
    bg = np.asarray(s["bg"], np.float32)[:, None, None] + np.asarray(s["grad"], np.float32)[:, None, None] * yy
    bg = np.broadcast_to(bg, (3, SIZE, SIZE))
    rgb = s["rgb"] if "rgb" in s else COLOR_RGB[s["color"]]  # "rgb": an in-between colour (video clips)
    col = np.clip(np.asarray(rgb) + s["jitter"], 0, 1).astype(np.float32)[:, None, None]
    m = _mask(s["shape"], s["cx"], s["cy"], s["r"], s.get("angle", 0.0))[None]
    img = bg * (1 - m) + col * m
    return np.clip(img, 0, 1).astype(np.float32)


def make_dataset(n, domain, seed):
    """Returns images float32 [n,3,32,32] in [-1,1], shape idx, color idx, captions."""
    rng = np.random.default_rng(seed)
    imgs = np.empty((n, 3, SIZE, SIZE), np.float32)
    shp = np.empty(n, np.int64)
    col = np.empty(n, np.int64)
    caps = []
    for i in range(n):
        s = sample_scene(rng, domain)
        imgs[i] = render(s)
        shp[i] = SHAPES.index(s["shape"])
        col[i] = COLORS.index(s["color"])
        caps.append(caption(s["shape"], s["color"], s["bg_word"]))
    return imgs * 2 - 1, shp, col, caps


def make_prompt_images(n, shape, color, domain, seed, bg_word=None):
    """n real images of exactly one (shape, colour) in a domain (optionally one background word)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, SIZE, SIZE), np.float32)
    for i in range(n):
        s = sample_scene(rng, domain)
        while bg_word is not None and s["bg_word"] != bg_word:
            s = sample_scene(rng, domain)
        s["shape"], s["color"] = shape, color
        out[i] = render(s)
    return out * 2 - 1


def make_edit_pairs(n, seed, domain="ft"):
    """InstructPix2Pix-style pairs: (source, target, instruction, target shape idx, target colour idx)."""
    rng = np.random.default_rng(seed)
    src = np.empty((n, 3, SIZE, SIZE), np.float32)
    tgt = np.empty((n, 3, SIZE, SIZE), np.float32)
    ins, tshape, tcolor, sshape, scolor = [], [], [], [], []
    for i in range(n):
        s = sample_scene(rng, domain)
        t = dict(s)
        if rng.random() < 0.5:
            choices = [c for c in COLORS if c != s["color"]]
            t["color"] = choices[rng.integers(len(choices))]
            ins.append(instruction_color(t["color"]))
        else:
            choices = [x for x in SHAPES if x != s["shape"]]
            t["shape"] = choices[rng.integers(len(choices))]
            ins.append(instruction_shape(t["shape"]))
        src[i] = render(s)
        tgt[i] = render(t)
        sshape.append(SHAPES.index(s["shape"]))
        scolor.append(COLORS.index(s["color"]))
        tshape.append(SHAPES.index(t["shape"]))
        tcolor.append(COLORS.index(t["color"]))
    return (src * 2 - 1, tgt * 2 - 1, ins, np.array(sshape), np.array(scolor), np.array(tshape), np.array(tcolor))


def border_brightness(imgs):
    """Domain statistic. imgs [n,3,32,32] in [-1,1] -> [n] mean brightness of the 2-px border, in [0,1]."""
    x = (np.asarray(imgs) + 1) / 2
    m = np.ones((SIZE, SIZE), bool)
    m[2:-2, 2:-2] = False
    return x[:, :, m].mean(axis=(1, 2))


if __name__ == "__main__":
    import time

    t = time.time()
    b = make_dataset(2000, "base", 0)
    f = make_dataset(2000, "ft", 1)
    print("render 4000 in", time.time() - t)
    bb, fb = border_brightness(b[0]), border_brightness(f[0])
    print("base border", bb.mean(), bb.std(), (bb > 0.6).mean(), "ft border", fb.mean(), fb.std(), fb.min())
    print(b[3][:3], f[3][:3])
