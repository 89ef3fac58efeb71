// L1-penalized logistic regression with soft labels and sample weights, and the grouped cross-validation
// alpaca_eval uses to choose its strength. Written from the math (proximal Newton, as in glmnet / newGLMNET,
// with cyclic coordinate descent on each quadratic model), run to a tight tolerance so that the optimum,
// not the solver, decides the numbers.
//
// Objective, for coefficients b (no intercept: put a column of ones in the design when one is wanted):
//   F(b) = sum_j pf_j |b_j| + C * sum_i w_i * (softplus(z_i) - y_i z_i),   z = X b
// A soft label y in [0, 1] is the same objective as alpaca_eval's pair of rows (label 1 with weight w y,
// label 0 with weight w (1 - y)), and as liblinear's L1 problem with per-row cost C w.
import { sigmoid, softplus } from './stats.ts';

/** A design matrix in compressed sparse columns (dense designs are stored the same way). */
export interface Design {
  nRows: number;
  nCols: number;
  colPtr: Int32Array;
  rowIdx: Int32Array;
  values: Float64Array;
}

/** Design from dense rows (row-major, every row of the same length). */
export function denseDesign(rows: readonly (readonly number[])[]): Design {
  const nRows = rows.length;
  const nCols = nRows > 0 ? rows[0].length : 0;
  const colPtr = new Int32Array(nCols + 1);
  const rowIdx = new Int32Array(nRows * nCols);
  const values = new Float64Array(nRows * nCols);
  for (let i = 0; i < nRows; i++) {
    if (rows[i].length !== nCols) throw new Error(`design: row ${i} has ${rows[i].length} features, expected ${nCols}`);
  }
  let p = 0;
  for (let j = 0; j < nCols; j++) {
    colPtr[j] = p;
    for (let i = 0; i < nRows; i++) {
      const v = rows[i][j];
      if (!Number.isFinite(v)) throw new Error(`design: feature ${j} of row ${i} is ${v}`);
      rowIdx[p] = i;
      values[p++] = v;
    }
  }
  colPtr[nCols] = p;
  return { nRows, nCols, colPtr, rowIdx, values };
}

export interface L1Problem {
  x: Design;
  /** Soft labels in [0, 1], one per row. */
  y: ArrayLike<number>;
  /** Row weights >= 0 (a weight of 0 leaves the row out, which is how folds are trained). */
  w: ArrayLike<number>;
  /** Penalty factor per coefficient (default 1; 0 leaves it unpenalized). */
  penaltyFactor?: ArrayLike<number>;
}

export interface L1FitOptions {
  /**
   * Stop when the largest violation of the optimality conditions, per unit of C * sum(w), is below this
   * (default 1e-10; the per-row loss gradients are O(1), so this is close to what float64 resolves).
   */
  tol?: number;
  maxIter?: number;
  /** Starting coefficients (warm start along a path of C). */
  init?: ArrayLike<number>;
  /** Row weights replacing problem.w (cross-validation folds). */
  w?: ArrayLike<number>;
}

export interface L1Fit {
  coef: Float64Array;
  /** Penalized objective F(coef). */
  objective: number;
  /** Largest violation of the optimality conditions per unit of C * sum(w) (0 at the exact optimum). */
  violation: number;
  iterations: number;
  /** Coordinate-descent sweeps over all outer iterations. */
  sweeps: number;
  converged: boolean;
}

function checkProblem(p: L1Problem, w: ArrayLike<number>): void {
  const n = p.x.nRows;
  if (p.y.length !== n || w.length !== n) throw new Error(`L1 logistic: ${n} rows but ${p.y.length} labels and ${w.length} weights`);
  for (let i = 0; i < n; i++) {
    if (!(p.y[i] >= 0 && p.y[i] <= 1)) throw new Error(`L1 logistic: label ${p.y[i]} at row ${i} is outside [0, 1]`);
    if (!(w[i] >= 0 && Number.isFinite(w[i]))) throw new Error(`L1 logistic: weight ${w[i]} at row ${i} is not a finite number >= 0`);
  }
  if (p.penaltyFactor && p.penaltyFactor.length !== p.x.nCols) {
    throw new Error(`L1 logistic: ${p.x.nCols} coefficients but ${p.penaltyFactor.length} penalty factors`);
  }
}

function linear(x: Design, b: ArrayLike<number>, out: Float64Array): void {
  out.fill(0);
  for (let j = 0; j < x.nCols; j++) {
    const bj = b[j];
    if (bj === 0) continue;
    for (let p = x.colPtr[j]; p < x.colPtr[j + 1]; p++) out[x.rowIdx[p]] += x.values[p] * bj;
  }
}

/** sum_i w_i (softplus(z_i) - y_i z_i) */
function smoothLoss(z: ArrayLike<number>, y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < z.length; i++) if (w[i] > 0) s += w[i] * (softplus(z[i]) - y[i] * z[i]);
  return s;
}

/**
 * Gradient of the smooth part, C * X^T (w (sigmoid(z) - y)), and the minimum-norm subgradient of F
 * (0 exactly at the optimum), both per unit of C * sum(w) in the returned `scaledViolation`.
 */
export function l1Optimality(problem: L1Problem, C: number, coef: ArrayLike<number>, w: ArrayLike<number> = problem.w): {
  gradient: Float64Array; subgradient: Float64Array; scaledViolation: number;
} {
  const { x, y } = problem;
  const z = new Float64Array(x.nRows);
  linear(x, coef, z);
  const g = new Float64Array(x.nCols);
  let totalW = 0;
  for (let i = 0; i < x.nRows; i++) totalW += w[i];
  for (let j = 0; j < x.nCols; j++) {
    let s = 0;
    for (let p = x.colPtr[j]; p < x.colPtr[j + 1]; p++) {
      const i = x.rowIdx[p];
      if (w[i] > 0) s += w[i] * (sigmoid(z[i]) - y[i]) * x.values[p];
    }
    g[j] = C * s;
  }
  const sub = new Float64Array(x.nCols);
  let worst = 0;
  for (let j = 0; j < x.nCols; j++) {
    const lam = problem.penaltyFactor ? problem.penaltyFactor[j] : 1;
    const b = coef[j];
    sub[j] = b > 0 ? g[j] + lam : b < 0 ? g[j] - lam : Math.sign(g[j]) * Math.max(0, Math.abs(g[j]) - lam);
    worst = Math.max(worst, Math.abs(sub[j]));
  }
  return { gradient: g, subgradient: sub, scaledViolation: totalW > 0 ? worst / (C * totalW) : 0 };
}

/**
 * Minimizes F for one C by proximal Newton: at each step a quadratic model of the smooth part (exact
 * gradient, Hessian X^T diag(C w p (1 - p)) X), minimized with the L1 term by cyclic coordinate descent,
 * then a backtracking line search on F (Armijo, as glmnet). Deterministic: no random coordinate order.
 */
export function fitL1Logistic(problem: L1Problem, C: number, opts: L1FitOptions = {}): L1Fit {
  if (!(C > 0 && Number.isFinite(C))) throw new Error(`L1 logistic: C must be a positive number, got ${C}`);
  const w = opts.w ?? problem.w;
  checkProblem(problem, w);
  const { x, y } = problem;
  const n = x.nRows, k = x.nCols;
  const tol = opts.tol ?? 1e-10;
  const maxIter = opts.maxIter ?? 500;
  const pf = new Float64Array(k).fill(1);
  if (problem.penaltyFactor) for (let j = 0; j < k; j++) pf[j] = problem.penaltyFactor[j];

  let totalW = 0;
  for (let i = 0; i < n; i++) totalW += w[i];
  const scale = C * totalW;
  const b = new Float64Array(k);
  if (opts.init) {
    if (opts.init.length !== k) throw new Error(`L1 logistic: init has ${opts.init.length} values for ${k} coefficients`);
    b.set(opts.init);
  }
  if (totalW === 0) return { coef: new Float64Array(k), objective: 0, violation: 0, iterations: 0, sweeps: 0, converged: true };

  const z = new Float64Array(n);
  const h = new Float64Array(n); // Hessian weights C w p (1 - p)
  const r = new Float64Array(n); // gradient residuals C w (p - y)
  const xd = new Float64Array(n); // X d for the current direction
  const zTry = new Float64Array(n);
  const g = new Float64Array(k);
  const a = new Float64Array(k); // diagonal of the quadratic model
  const d = new Float64Array(k);
  const l1 = (v: ArrayLike<number>) => {
    let s = 0;
    for (let j = 0; j < k; j++) s += pf[j] * Math.abs(v[j]);
    return s;
  };

  linear(x, b, z);
  let objective = l1(b) + C * smoothLoss(z, y, w);
  let violation = Infinity;
  let iterations = 0;
  let sweeps = 0;
  let innerTol = 0.1;
  for (; iterations < maxIter; iterations++) {
    for (let i = 0; i < n; i++) {
      if (w[i] === 0) {
        h[i] = 0;
        r[i] = 0;
        continue;
      }
      const p = sigmoid(z[i]);
      r[i] = C * w[i] * (p - y[i]);
      h[i] = C * w[i] * p * (1 - p);
    }
    let worst = 0;
    for (let j = 0; j < k; j++) {
      let gs = 0, as = 0;
      for (let q = x.colPtr[j]; q < x.colPtr[j + 1]; q++) {
        const i = x.rowIdx[q], v = x.values[q];
        gs += r[i] * v;
        as += h[i] * v * v;
      }
      g[j] = gs;
      a[j] = as;
      const bj = b[j];
      const s = bj > 0 ? gs + pf[j] : bj < 0 ? gs - pf[j] : Math.max(0, Math.abs(gs) - pf[j]);
      worst = Math.max(worst, Math.abs(s));
    }
    violation = worst / scale;
    if (violation <= tol) break;

    // coordinate descent on the quadratic model: min_d g.d + 1/2 d^T X^T H X d + sum pf |b + d|,
    // until no coordinate moves its gradient by more than a fraction of the current violation
    d.fill(0);
    xd.fill(0);
    for (let sweep = 0; sweep < 1000; sweep++) {
      sweeps++;
      let maxMove = 0;
      for (let j = 0; j < k; j++) {
        if (a[j] <= 0) {
          // the loss does not depend on b_j on these rows: the penalty alone sets it to 0
          if (pf[j] > 0 && b[j] + d[j] !== 0) {
            const t = -(b[j] + d[j]);
            d[j] += t;
            for (let q = x.colPtr[j]; q < x.colPtr[j + 1]; q++) xd[x.rowIdx[q]] += t * x.values[q];
          }
          continue;
        }
        let grad = g[j];
        for (let q = x.colPtr[j]; q < x.colPtr[j + 1]; q++) grad += h[x.rowIdx[q]] * x.values[q] * xd[x.rowIdx[q]];
        const u = b[j] + d[j];
        const target = u - grad / a[j];
        const thr = pf[j] / a[j];
        const next = target > thr ? target - thr : target < -thr ? target + thr : 0;
        const t = next - u;
        if (t === 0) continue;
        d[j] += t;
        for (let q = x.colPtr[j]; q < x.colPtr[j + 1]; q++) xd[x.rowIdx[q]] += t * x.values[q];
        maxMove = Math.max(maxMove, Math.abs(t) * a[j]);
      }
      if (maxMove / scale <= innerTol * violation) break;
    }

    // backtracking line search on F along d (Armijo with the L1 term, as glmnet)
    let delta = 0;
    for (let j = 0; j < k; j++) delta += g[j] * d[j] + pf[j] * (Math.abs(b[j] + d[j]) - Math.abs(b[j]));
    let step = 1;
    let moved = false;
    for (let ls = 0; ls < 50; ls++) {
      for (let i = 0; i < n; i++) zTry[i] = z[i] + step * xd[i];
      let penalty = 0;
      for (let j = 0; j < k; j++) penalty += pf[j] * Math.abs(b[j] + step * d[j]);
      const next = penalty + C * smoothLoss(zTry, y, w);
      // near the optimum the decrease falls below float64 resolution of F: take the full step there
      const flat = step === 1 && next - objective <= 1e-13 * Math.abs(objective);
      if (next <= objective + 0.01 * step * delta || flat) {
        for (let j = 0; j < k; j++) b[j] += step * d[j];
        z.set(zTry);
        objective = next;
        moved = true;
        break;
      }
      step /= 2;
    }
    if (!moved) {
      innerTol /= 100; // the direction was too rough: solve the quadratic model more exactly
      if (innerTol < 1e-14) break;
    }
    // recompute z from b now and then so that rounding in the incremental updates never accumulates
    if (iterations % 10 === 9) linear(x, b, z);
  }
  linear(x, b, z);
  objective = l1(b) + C * smoothLoss(z, y, w);
  return { coef: b, objective, violation, iterations, sweeps, converged: violation <= tol };
}

/**
 * Fold of each group under scikit-learn's GroupKFold when every group has the same size: groups are
 * dealt, last group first, to the lightest fold, so group g lands in fold (nGroups - 1 - g) mod nFolds.
 */
export function groupKFold(nGroups: number, nFolds: number): Int32Array {
  if (!(Number.isInteger(nFolds) && nFolds >= 2)) throw new Error(`nFolds must be an integer >= 2, got ${nFolds}`);
  if (nGroups < nFolds) throw new Error(`cannot split ${nGroups} groups into ${nFolds} folds`);
  const fold = new Int32Array(nGroups);
  for (let g = 0; g < nGroups; g++) fold[g] = (nGroups - 1 - g) % nFolds;
  return fold;
}

/** numpy.logspace(lo, hi, n): alpaca_eval's (scikit-learn's) default grid of C is logspace(-4, 4, 10). */
export function logspace(lo: number, hi: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => 10 ** (n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1)));
}

export interface CvOptions {
  Cs?: readonly number[];
  /** Fold of every row (rows are the groups); default groupKFold(nRows, nFolds). */
  folds?: Int32Array;
  nFolds?: number;
  tol?: number;
  maxIter?: number;
}

export interface CvResult {
  Cs: number[];
  /** Held-out weighted log-loss per fold (rows) and C (columns), as alpaca_eval scores it. */
  foldLoss: number[][];
  /** Sum over folds of the held-out losses, per C; the chosen C has the smallest (first on ties). */
  totalLoss: number[];
  bestIndex: number;
  C: number;
  /** The refit on every row at the chosen C. */
  fit: L1Fit;
  /** True when every fold fit and the refit met the tolerance. */
  converged: boolean;
}

/** alpaca_eval's held-out score: -mean_i w_i (y_i log q_i + (1 - y_i) log(1 - q_i)), q clipped to [1e-15, 1 - 1e-15]. */
export function weightedLogLoss(y: ArrayLike<number>, q: ArrayLike<number>, w: ArrayLike<number>, rows: ArrayLike<number>): number {
  const eps = 1e-15;
  let s = 0;
  for (let t = 0; t < rows.length; t++) {
    const i = rows[t];
    const p = Math.min(1 - eps, Math.max(eps, q[i]));
    s += w[i] * (y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p));
  }
  return -s / rows.length;
}

/**
 * Chooses C by grouped k-fold cross-validation on the held-out weighted log-loss, then refits on all rows
 * (alpaca_eval's LogisticRegressionCV). Each fold walks the grid of C upward from a warm start.
 */
export function fitL1LogisticCV(problem: L1Problem, opts: CvOptions = {}): CvResult {
  const { x, y } = problem;
  const n = x.nRows;
  const Cs = [...(opts.Cs ?? logspace(-4, 4, 10))];
  if (Cs.length === 0) throw new Error('cross-validation needs at least one C');
  const nFolds = opts.nFolds ?? 5;
  const folds = opts.folds ?? groupKFold(n, nFolds);
  if (folds.length !== n) throw new Error(`cross-validation: ${n} rows but ${folds.length} fold labels`);
  const fitOpts = { tol: opts.tol, maxIter: opts.maxIter };
  const order = Cs.map((_, i) => i).sort((p, q) => Cs[p] - Cs[q]);
  const foldLoss: number[][] = [];
  const z = new Float64Array(n);
  const q = new Float64Array(n);
  let converged = true;
  for (let f = 0; f < nFolds; f++) {
    const wTrain = new Float64Array(n);
    const test: number[] = [];
    for (let i = 0; i < n; i++) {
      if (folds[i] === f) test.push(i);
      else wTrain[i] = problem.w[i];
    }
    if (test.length === 0) throw new Error(`cross-validation: fold ${f} has no rows`);
    const losses = new Array<number>(Cs.length);
    let init: Float64Array | undefined;
    for (const c of order) {
      const fit = fitL1Logistic(problem, Cs[c], { ...fitOpts, w: wTrain, init });
      converged &&= fit.converged;
      init = fit.coef;
      linear(x, fit.coef, z);
      for (const i of test) q[i] = sigmoid(z[i]);
      losses[c] = weightedLogLoss(y, q, problem.w, test);
    }
    foldLoss.push(losses);
  }
  const totalLoss = Cs.map((_, c) => foldLoss.reduce((s, row) => s + row[c], 0));
  let bestIndex = 0;
  for (let c = 1; c < Cs.length; c++) if (totalLoss[c] < totalLoss[bestIndex]) bestIndex = c;
  const fit = fitL1Logistic(problem, Cs[bestIndex], fitOpts);
  converged &&= fit.converged;
  return { Cs, foldLoss, totalLoss, bestIndex, C: Cs[bestIndex], fit, converged };
}

/** Linear predictor X b (exported for callers that predict on a design of their own). */
export function predictLinear(x: Design, coef: ArrayLike<number>): Float64Array {
  const z = new Float64Array(x.nRows);
  linear(x, coef, z);
  return z;
}
