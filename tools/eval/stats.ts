/**
 * Statistics for the evaluation: feature means and covariances, the Fréchet distance between two
 * Gaussians, Wilson intervals for accuracies and bootstrap intervals for distances.
 * Everything in float64.
 */

/** Row-major n×d samples → mean (d) and unbiased covariance (d×d, row-major). */
export function meanCov(rows: ArrayLike<number>[], d: number): { mean: Float64Array; cov: Float64Array } {
  const n = rows.length;
  if (n < 2) throw new Error(`meanCov: need at least 2 samples, got ${n}`);
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (const r of rows) {
    for (let j = 0; j < d; j++) c[j] = r[j] - mean[j];
    for (let i = 0; i < d; i++) {
      const ci = c[i];
      for (let j = i; j < d; j++) cov[i * d + j] += ci * c[j];
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const v = cov[i * d + j] / (n - 1);
      cov[i * d + j] = v;
      cov[j * d + i] = v;
    }
  }
  return { mean, cov };
}

/** Eigen-decomposition of a symmetric d×d matrix by cyclic Jacobi rotations.
 *  Returns eigenvalues and the eigenvectors as columns of a row-major matrix. */
export function symmetricEigen(a: ArrayLike<number>, d: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let scale = 0;
    for (let i = 0; i < d; i++) {
      scale += m[i * d + i] ** 2;
      for (let j = i + 1; j < d; j++) off += m[i * d + j] ** 2;
    }
    if (off <= 1e-30 * Math.max(scale, 1e-300)) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q];
        if (apq === 0) continue;
        const app = m[p * d + p];
        const aqq = m[q * d + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        for (let k = 0; k < d; k++) {
          const mkp = m[k * d + p];
          const mkq = m[k * d + q];
          m[k * d + p] = cs * mkp - sn * mkq;
          m[k * d + q] = sn * mkp + cs * mkq;
        }
        for (let k = 0; k < d; k++) {
          const mpk = m[p * d + k];
          const mqk = m[q * d + k];
          m[p * d + k] = cs * mpk - sn * mqk;
          m[q * d + k] = sn * mpk + cs * mqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p];
          const vkq = v[k * d + q];
          v[k * d + p] = cs * vkp - sn * vkq;
          v[k * d + q] = sn * vkp + cs * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = m[i * d + i];
  return { values, vectors: v };
}

/** Symmetric positive semi-definite square root (negative eigenvalues from round-off clamp to 0). */
export function sqrtPsd(a: ArrayLike<number>, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(values[k], 0));
    if (s === 0) continue;
    for (let i = 0; i < d; i++) {
      const vik = vectors[i * d + k] * s;
      for (let j = 0; j < d; j++) out[i * d + j] += vik * vectors[j * d + k];
    }
  }
  return out;
}

function matmul(a: Float64Array, b: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += aik * b[k * d + j];
    }
  }
  return out;
}

/** Fréchet distance between N(μ1,Σ1) and N(μ2,Σ2):
 *  ‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}).
 *  The symmetric form keeps every square root on a PSD matrix. */
export function frechetDistance(
  a: { mean: ArrayLike<number>; cov: ArrayLike<number> },
  b: { mean: ArrayLike<number>; cov: ArrayLike<number> },
  d: number,
): number {
  let dm = 0;
  for (let i = 0; i < d; i++) dm += (a.mean[i] - b.mean[i]) ** 2;
  const s1 = sqrtPsd(a.cov, d);
  const inner = matmul(matmul(s1, b.cov, d), s1, d);
  // Symmetrize against round-off before the square root.
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const v = (inner[i * d + j] + inner[j * d + i]) / 2;
      inner[i * d + j] = v;
      inner[j * d + i] = v;
    }
  }
  const { values } = symmetricEigen(inner, d);
  let trCross = 0;
  for (const v of values) trCross += Math.sqrt(Math.max(v, 0));
  let tr = 0;
  for (let i = 0; i < d; i++) tr += a.cov[i * d + i] + b.cov[i * d + i];
  return Math.max(dm + tr - 2 * trCross, 0);
}

/** Wilson score interval for k successes out of n at ~95% (z = 1.96). */
export function wilson(k: number, n: number, z = 1.96): { p: number; lo: number; hi: number } {
  if (n === 0) return { p: Number.NaN, lo: 0, hi: 1 };
  const p = k / n;
  const z2 = z * z;
  const den = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / den;
  return { p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

/** A small deterministic PRNG (mulberry32) for bootstrap resampling. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Percentile bootstrap interval (2.5%, 97.5%) of a statistic over resampled rows. */
export function bootstrap<T>(rows: T[], stat: (sample: T[]) => number, reps: number, seed: number) {
  const rnd = mulberry32(seed);
  const values: number[] = [];
  for (let r = 0; r < reps; r++) {
    const sample = new Array<T>(rows.length);
    for (let i = 0; i < rows.length; i++) sample[i] = rows[Math.floor(rnd() * rows.length)];
    values.push(stat(sample));
  }
  values.sort((x, y) => x - y);
  const q = (p: number) => values[Math.min(values.length - 1, Math.max(0, Math.round(p * (values.length - 1))))];
  return { lo: q(0.025), hi: q(0.975) };
}

/** Kernel Inception Distance: the unbiased estimate of the squared maximum mean discrepancy between two
 *  feature sets under the cubic polynomial kernel k(a, b) = (a·b / (s²·d) + 1)³ (Bińkowski et al. 2018),
 *  the features first divided by `scale` s. The kernel assumes features of order 1 per dimension (as
 *  Inception's are); for features of another scale pass their typical standard deviation, or the cubic
 *  term of large dot products swamps the estimate with variance.
 *  Unlike the Fréchet distance it has no bias at small sample sizes: its expectation is 0 when both
 *  sets come from one distribution, so a small sample can give a (slightly) negative value. */
export function kid(x: ArrayLike<number>[], y: ArrayLike<number>[], d: number, scale = 1): number {
  const m = x.length;
  const n = y.length;
  if (m < 2 || n < 2) throw new Error(`kid: need at least 2 samples on each side, got ${m} and ${n}`);
  const norm = scale * scale * d;
  const k = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += a[j] * b[j];
    return (dot / norm + 1) ** 3;
  };
  // the two within-set sums leave out the diagonal; the cross term keeps every pair
  let kxx = 0;
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) kxx += k(x[i], x[j]);
  let kyy = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) kyy += k(y[i], y[j]);
  let kxy = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) kxy += k(x[i], y[j]);
  return (2 * kxx) / (m * (m - 1)) + (2 * kyy) / (n * (n - 1)) - (2 * kxy) / (m * n);
}
