// Small numeric helpers shared by the evaluation metrics. Plain float64 loops: the arrays here are a few
// thousand values at most, and the formulas must match numpy/pandas conventions exactly.

export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Sample standard deviation with `ddof` (1 by default, as pandas' `.std()` / `.sem()`). */
export function std(xs: ArrayLike<number>, ddof = 1): number {
  const n = xs.length;
  if (n - ddof <= 0) return NaN;
  const m = mean(xs);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - m) ** 2;
  return Math.sqrt(ss / (n - ddof));
}

/** Standard error of the mean, ddof = 1 (pandas `Series.sem()`); NaN below two values. */
export function sem(xs: ArrayLike<number>): number {
  return std(xs, 1) / Math.sqrt(xs.length);
}

/** Numerically stable logistic function. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + exp(x)) without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * Solves A x = b for a small dense symmetric positive-definite A (row-major k*k) by Cholesky.
 * Returns null when A is not positive definite (singular design), so callers can report it.
 */
export function solveSpd(a: number[], b: number[]): number[] | null {
  const k = b.length;
  const l = new Array<number>(k * k).fill(0);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * k + j];
      for (let p = 0; p < j; p++) s -= l[i * k + p] * l[j * k + p];
      if (i === j) {
        if (!(s > 1e-12 * Math.max(1, Math.abs(a[i * k + i])))) return null;
        l[i * k + i] = Math.sqrt(s);
      } else {
        l[i * k + j] = s / l[j * k + j];
      }
    }
  }
  const y = new Array<number>(k).fill(0);
  for (let i = 0; i < k; i++) {
    let s = b[i];
    for (let p = 0; p < i; p++) s -= l[i * k + p] * y[p];
    y[i] = s / l[i * k + i];
  }
  const x = new Array<number>(k).fill(0);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i];
    for (let p = i + 1; p < k; p++) s -= l[p * k + i] * x[p];
    x[i] = s / l[i * k + i];
  }
  return x;
}

/** Inverse of a small SPD matrix (row-major), column by column; null when singular. */
export function invertSpd(a: number[], k: number): number[] | null {
  const inv = new Array<number>(k * k).fill(0);
  for (let c = 0; c < k; c++) {
    const e = new Array<number>(k).fill(0);
    e[c] = 1;
    const col = solveSpd(a, e);
    if (!col) return null;
    for (let r = 0; r < k; r++) inv[r * k + c] = col[r];
  }
  return inv;
}
