// Shared helpers of numeric tests: seeded random arrays and finite-difference checks.

/** Deterministic uniform values in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return a;
}

export function dot64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Central differences of loss() with respect to x at the given indices, compared with the analytic
 * gradient. Returns the relative error ||fd - an|| / max(||fd||, ||an||, floor) over the checked entries.
 */
export function fdRelativeError(x: Float32Array, indices: number[], analytic: ArrayLike<number>, loss: () => number,
  eps = 1e-2, floor = 1e-6): { rel: number; fd: number[]; an: number[] } {
  const fd: number[] = [], an: number[] = [];
  for (const i of indices) {
    const orig = x[i];
    x[i] = orig + eps; const lp = loss();
    x[i] = orig - eps; const lm = loss();
    x[i] = orig;
    // the perturbation actually applied in float32
    const h = (Math.fround(orig + eps) - Math.fround(orig - eps));
    fd.push((lp - lm) / h);
    an.push(analytic[i]);
  }
  let num = 0, nf = 0, na = 0;
  for (let k = 0; k < fd.length; k++) { num += (fd[k] - an[k]) ** 2; nf += fd[k] ** 2; na += an[k] ** 2; }
  return { rel: Math.sqrt(num) / Math.max(Math.sqrt(nf), Math.sqrt(na), floor), fd, an };
}

/** `count` distinct indices in [0, n), deterministic. */
export function sampleIndices(n: number, count: number, seed: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  const r = randomArray(count * 4, seed);
  const set = new Set<number>();
  for (let k = 0; set.size < count; k++) set.add(Math.floor((r[k % r.length] * 0.5 + 0.5) * n + k * 7919) % n);
  return [...set];
}
