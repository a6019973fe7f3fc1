/**
 * Seeded noise: a counter-based Philox4x32-10 generator (Salmon, Moraes, Dror & Shaw 2011,
 * "Parallel random numbers: as easy as 1, 2, 3") with Box–Muller normals. Integer math only
 * (Math.imul, >>> 0), so the 32-bit words are identical on every machine and JS engine.
 *
 * Exact definition (see src/schedulers/README.md, "Seeded noise"):
 *   key  = (k0, k1) = (seed mod 2^32, ⌊seed / 2^32⌋ mod 2^32), seed an integer in [0, 2^64)
 *   block j (j = 0, 1, 2, …) = Philox4x32-10(counter = (j mod 2^32, ⌊j/2^32⌋, 0, 0), key) → (w0, w1, w2, w3)
 *   from each pair (a, b) = (w0, w1) and then (w2, w3):
 *     u1 = (a + 1) / 2^32 ∈ (0, 1],  u2 = b / 2^32 ∈ [0, 1)
 *     r  = √(−2 ln u1)
 *     normals r·cos(2π u2), r·sin(2π u2)  (float64, then rounded to float32)
 *   The stream is z(block 0), z(block 1), …, 4 normals per block, in that order; randn(n) hands out
 *   the next n of them (chunking does not change the stream: randn(3) then randn(5) = randn(8)).
 */
import type { Rng } from './schedulers/types.ts';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 (16-bit limbs, exact in float64). */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lo = al * bl;
  const m1 = ah * bl;
  const m2 = al * bh;
  const carry = ((lo >>> 16) + (m1 & 0xffff) + (m2 & 0xffff)) >>> 16;
  return (ah * bh + (m1 >>> 16) + (m2 >>> 16) + carry) >>> 0;
}

/**
 * One Philox4x32-10 block: 10 rounds of
 *   (c0, c1, c2, c3) ← (hi(M1·c2) ⊕ c1 ⊕ k0, lo(M1·c2), hi(M0·c0) ⊕ c3 ⊕ k1, lo(M0·c0))
 * with the key bumped by the Weyl constants (k0 += 0x9E3779B9, k1 += 0xBB67AE85) between rounds.
 * Writes the 4 output words to `out`. `rounds` (default 10) exists for the Random123 7-round test vectors.
 */
export function philox4x32_10(
  ctr: readonly [number, number, number, number],
  key: readonly [number, number],
  out: Uint32Array = new Uint32Array(4),
  rounds = 10,
): Uint32Array {
  let c0 = ctr[0] >>> 0;
  let c1 = ctr[1] >>> 0;
  let c2 = ctr[2] >>> 0;
  let c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

const TWO_POW_32 = 4294967296;
const MAX_SEED = (1n << 64n) - 1n;

/** seed → Philox key (k0 = low 32 bits, k1 = high 32 bits). */
export function seedToKey(seed: number | bigint): [number, number] {
  let s: bigint;
  if (typeof seed === 'bigint') {
    s = seed;
  } else {
    if (!Number.isSafeInteger(seed)) {
      throw new Error(
        `seed must be an integer in [0, 2^64) (got ${seed}; numbers above 2^53 must be passed as bigint)`,
      );
    }
    s = BigInt(seed);
  }
  if (s < 0n || s > MAX_SEED) throw new Error(`seed must be an integer in [0, 2^64) (got ${s})`);
  return [Number(s & 0xffffffffn), Number((s >> 32n) & 0xffffffffn)];
}

export interface PhiloxRng extends Rng {
  /** the seed as a bigint in [0, 2^64) */
  readonly seed: bigint;
  /** how many normals have been handed out so far */
  readonly position: number;
}

/** A reproducible standard-normal stream for a seed (see the header comment for the exact definition). */
export function createRng(seed: number | bigint): PhiloxRng {
  const key = seedToKey(seed);
  const words = new Uint32Array(4);
  const buf = new Float32Array(4);
  let bufPos = 4; // normals left in buf = 4 − bufPos
  let block = 0; // next block index
  let position = 0;
  const ctr: [number, number, number, number] = [0, 0, 0, 0];
  const refill = () => {
    ctr[0] = block % TWO_POW_32;
    ctr[1] = Math.floor(block / TWO_POW_32);
    philox4x32_10(ctr, key, words);
    block++;
    for (let p = 0; p < 2; p++) {
      const u1 = (words[2 * p] + 1) / TWO_POW_32;
      const u2 = words[2 * p + 1] / TWO_POW_32;
      const r = Math.sqrt(-2 * Math.log(u1));
      const th = 2 * Math.PI * u2;
      buf[2 * p] = r * Math.cos(th);
      buf[2 * p + 1] = r * Math.sin(th);
    }
    bufPos = 0;
  };
  return {
    seed: BigInt(key[0]) + (BigInt(key[1]) << 32n),
    get position() {
      return position;
    },
    randn(n: number): Float32Array {
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`randn: n must be a non-negative integer (got ${n})`);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        if (bufPos === 4) refill();
        out[i] = buf[bufPos++];
      }
      position += n;
      return out;
    },
  };
}
