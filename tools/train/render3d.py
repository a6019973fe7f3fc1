"""A small numpy renderer for procedural 3D scenes (Zero-1-to-3 style novel-view data).

A scene is one convex solid — cube, square pyramid, triangular prism, tetrahedron or octahedron —
with a colour per face (from data.COLOR_RGB), a random yaw and scale, on a light, slightly tinted
background. A camera at (elevation, azimuth, radius) looks at the origin (y is up; azimuth 0 looks
along −z; perspective, focal length FOCAL in normalised image units). Faces are flat-shaded by a
light fixed in the world (so shading changes with the view, as in real renders).

Rasterisation: for a single convex solid the front-facing faces never overlap, so back-face
culling is an exact visibility test (no z-buffer needed); every visible face is a convex polygon
filled by half-plane tests on a 2× supersampled grid, then box-filtered to 32×32.

Everything is deterministic from a numpy seed; nothing is downloaded.
"""
import math

import numpy as np

from data import COLOR_RGB, COLORS, SIZE

SOLIDS = ["cube", "pyramid", "prism", "tetrahedron", "octahedron"]
FOCAL = 2.6
LIGHT = np.array([-0.45, 0.8, 0.4]) / np.linalg.norm([-0.45, 0.8, 0.4])
AMBIENT = 0.5
_SS = 2
_N = SIZE * _SS
_g = ((np.arange(_N) + 0.5) / _N) * 2 - 1
_V, _U = np.meshgrid(-_g, _g, indexing="ij")  # image row 0 is the top (v = +1)

# pose ranges of the training data (degrees, world units)
ELEV = (-10.0, 40.0)
RADIUS = (2.6, 3.4)


def _solid(name):
    """(vertices [n,3], faces [list of vertex index lists, counter-clockwise seen from outside])."""
    if name == "cube":
        h = 0.55
        v = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)])
        f = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    elif name == "pyramid":
        b = 0.65
        v = np.array([[-b, -0.5, -b], [b, -0.5, -b], [b, -0.5, b], [-b, -0.5, b], [0, 0.75, 0]])
        f = [[0, 1, 2, 3], [0, 4, 1], [1, 4, 2], [2, 4, 3], [3, 4, 0]]
    elif name == "prism":
        a = [(0.7 * math.cos(t), 0.7 * math.sin(t)) for t in (math.pi / 2, math.pi / 2 + 2.094, math.pi / 2 + 4.189)]
        v = np.array([[x, y, -0.6] for x, y in a] + [[x, y, 0.6] for x, y in a])
        f = [[0, 2, 1], [3, 4, 5], [0, 1, 4, 3], [1, 2, 5, 4], [2, 0, 3, 5]]
    elif name == "tetrahedron":
        s = 0.62
        v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) * s
        f = [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]]
    elif name == "octahedron":
        s = 0.85
        v = np.array([[s, 0, 0], [-s, 0, 0], [0, s, 0], [0, -s, 0], [0, 0, s], [0, 0, -s]])
        f = [[0, 2, 4], [4, 2, 1], [1, 2, 5], [5, 2, 0], [0, 4, 3], [4, 1, 3], [1, 5, 3], [5, 0, 3]]
    else:
        raise ValueError(name)
    v = v.astype(np.float64)
    # orient every face outward (robust to the hand-written index order above)
    out = []
    for face in f:
        p = v[face]
        n = np.cross(p[1] - p[0], p[2] - p[0])
        out.append(face if n @ p.mean(0) > 0 else face[::-1])
    return v, out


_SOLIDS = {s: _solid(s) for s in SOLIDS}


def sample_object(rng):
    """Object parameters: solid, per-face colour names, yaw (rad), scale, background RGB."""
    solid = SOLIDS[rng.integers(len(SOLIDS))]
    nf = len(_SOLIDS[solid][1])
    faces = [COLORS[i] for i in rng.integers(len(COLORS), size=nf)]
    level = rng.uniform(0.78, 0.93)
    bg = np.clip(level + rng.uniform(-0.08, 0.04, size=3), 0, 1)
    return {"solid": solid, "faces": faces, "yaw": float(rng.uniform(0, 2 * math.pi)),
            "scale": float(rng.uniform(0.85, 1.15)), "bg": bg}


def sample_pose(rng):
    """(elevation deg, azimuth deg, radius)."""
    return (float(rng.uniform(*ELEV)), float(rng.uniform(0, 360)), float(rng.uniform(*RADIUS)))


def camera(elev, azim, radius):
    """Camera position and orthonormal basis (right, up, forward) looking at the origin."""
    e, a = math.radians(elev), math.radians(azim)
    pos = radius * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    fwd = -pos / np.linalg.norm(pos)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    return pos, right, up, fwd


def render(obj, pose):
    """Object dict + (elev, azim, radius) -> float32 [3,32,32] in [0,1]."""
    v0, faces = _SOLIDS[obj["solid"]]
    c, s = math.cos(obj["yaw"]), math.sin(obj["yaw"])
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    v = (v0 * obj["scale"]) @ rot.T
    pos, right, up, fwd = camera(*pose)
    rel = v - pos
    z = rel @ fwd
    u = FOCAL * (rel @ right) / z
    w = FOCAL * (rel @ up) / z
    img = np.broadcast_to(np.asarray(obj["bg"], np.float64)[:, None, None], (3, _N, _N)).copy()
    for face, cname in zip(faces, obj["faces"]):
        p = v[face]
        n = np.cross(p[1] - p[0], p[2] - p[0])
        n /= np.linalg.norm(n)
        if n @ (pos - p.mean(0)) <= 0:
            continue  # back face
        shade = AMBIENT + (1 - AMBIENT) * max(0.0, float(n @ LIGHT))
        col = np.asarray(COLOR_RGB[cname]) * shade
        pu, pw = u[face], w[face]
        # projected polygon orientation: counter-clockwise in (u, w) for a front face
        area = 0.5 * sum(pu[i] * pw[(i + 1) % len(face)] - pu[(i + 1) % len(face)] * pw[i] for i in range(len(face)))
        sgn = 1.0 if area > 0 else -1.0
        m = np.ones((_N, _N), bool)
        for i in range(len(face)):
            j = (i + 1) % len(face)
            cross = (pu[j] - pu[i]) * (_V - pw[i]) - (pw[j] - pw[i]) * (_U - pu[i])
            m &= sgn * cross >= 0
        img[:, m] = col[:, None]
    img = img.reshape(3, SIZE, _SS, SIZE, _SS).mean(axis=(2, 4))
    return np.clip(img, 0, 1).astype(np.float32)


def make_multiview(n_obj, n_views, seed):
    """n_obj objects × n_views random poses -> images [n_obj, n_views, 3, 32, 32] in [-1,1],
    poses [n_obj, n_views, 3] (elev deg, azim deg, radius), object dicts."""
    rng = np.random.default_rng(seed)
    imgs = np.empty((n_obj, n_views, 3, SIZE, SIZE), np.float32)
    poses = np.empty((n_obj, n_views, 3), np.float32)
    objs = []
    for i in range(n_obj):
        o = sample_object(rng)
        objs.append(o)
        for k in range(n_views):
            p = sample_pose(rng)
            poses[i, k] = p
            imgs[i, k] = render(o, p)
    return imgs * 2 - 1, poses, objs


def relative_pose(src, tgt):
    """Zero-1-to-3's relative camera: [Δelevation (rad), sin Δazimuth, cos Δazimuth, Δradius].
    src/tgt: [..., 3] (elev deg, azim deg, radius)."""
    src, tgt = np.asarray(src, np.float64), np.asarray(tgt, np.float64)
    de = np.radians(tgt[..., 0] - src[..., 0])
    da = np.radians(tgt[..., 1] - src[..., 1])
    dr = tgt[..., 2] - src[..., 2]
    return np.stack([de, np.sin(da), np.cos(da), dr], -1).astype(np.float32)


def eval_set(n_obj, seed):
    """Evaluation protocol (fixed before any result): per object one input view at a random
    elevation in [0, 30]°, azimuth, radius 3; 5 targets at the same elevation and radius, azimuths
    +60°, +120°, …, +300°. Returns inputs [n,3,32,32], targets [n,5,3,32,32] in [-1,1], poses."""
    rng = np.random.default_rng(seed)
    inp = np.empty((n_obj, 3, SIZE, SIZE), np.float32)
    tgt = np.empty((n_obj, 5, 3, SIZE, SIZE), np.float32)
    src_pose = np.empty((n_obj, 3), np.float32)
    tgt_pose = np.empty((n_obj, 5, 3), np.float32)
    for i in range(n_obj):
        o = sample_object(rng)
        p = (float(rng.uniform(0, 30)), float(rng.uniform(0, 360)), 3.0)
        src_pose[i] = p
        inp[i] = render(o, p)
        for k in range(5):
            q = (p[0], (p[1] + 60 * (k + 1)) % 360, 3.0)
            tgt_pose[i, k] = q
            tgt[i, k] = render(o, q)
    return inp * 2 - 1, tgt * 2 - 1, src_pose, tgt_pose


if __name__ == "__main__":
    import time

    from PIL import Image

    t = time.time()
    im, po, ob = make_multiview(8, 8, 0)
    print("64 renders in", round(time.time() - t, 3), "s")
    grid = ((im.transpose(0, 3, 1, 4, 2).reshape(8 * 32, 8 * 32, 3) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    Image.fromarray(grid).resize((512, 512), Image.NEAREST).save("/tmp/render3d.png")
    print([o["solid"] for o in ob])
