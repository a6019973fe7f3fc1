#!/usr/bin/env python3
"""Independent reference for packages/nodes/src/rng.ts (written from the definition in
packages/nodes/src/schedulers/README.md, "Seeded noise"), with Python's arbitrary-precision integers
instead of 16-bit limbs and numpy for the float32 rounding.

Prints JSON: for each seed, the first normals of the stream, and some raw Philox blocks.
Usage: /usr/bin/python3 tools/reference/philox_reference.py > packages/nodes/test/fixtures/schedulers/philox_reference.json
"""
import json
import math

import numpy as np

MASK = 0xFFFFFFFF
M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85


def philox4x32(ctr, key, rounds=10):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0 = (k0 + W0) & MASK
            k1 = (k1 + W1) & MASK
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
    return [c0, c1, c2, c3]


def normals(seed, n):
    key = (seed & MASK, (seed >> 32) & MASK)
    out = []
    block = 0
    while len(out) < n:
        w = philox4x32((block & MASK, (block >> 32) & MASK, 0, 0), key)
        block += 1
        for a, b in ((w[0], w[1]), (w[2], w[3])):
            u1 = (a + 1) / 2.0**32
            u2 = b / 2.0**32
            r = math.sqrt(-2.0 * math.log(u1))
            out += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    return [float(v) for v in np.array(out[:n], dtype=np.float64).astype(np.float32).tolist()]


def main():
    seeds = [0, 1, 42, 123456789, 2**32, 2**40 + 7, 2**53 - 1, 2**64 - 1]
    res = {
        "generator": "tools/reference/philox_reference.py",
        "normals": [{"seed": str(s), "values": normals(s, 24)} for s in seeds],
        "blocks": [
            {"seed": str(s), "block": b, "words": philox4x32((b & MASK, b >> 32, 0, 0), (s & MASK, (s >> 32) & MASK))}
            for s in (0, 42, 2**64 - 1)
            for b in (0, 1, 2**32 + 5)
        ],
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
