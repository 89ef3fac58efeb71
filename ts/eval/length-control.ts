// Length-controlled win-rate (after Dubois et al. 2024, "Length-Controlled AlpacaEval").
//
// Model (this implementation): for example i with model score y_i in [0, 1] (preference - 1, draw 0.5),
//   logit P(model wins) = theta + beta * tanh(delta_i / sd(delta)) [+ gamma * difficulty_i]
// where delta_i = len(output_2) - len(output_1) in characters and sd is the sample std (ddof = 1), without
// centering (as alpaca_eval). Fitted by Newton / IRLS on the soft-label cross-entropy (a soft label is the
// same as the two weighted hard rows alpaca_eval builds), with an L2 penalty on beta and gamma only, so that
// theta is never shrunk. The length-controlled win-rate is the prediction at delta = 0, averaged over
// examples: 100 * mean_i sigmoid(theta [+ gamma * difficulty_i]).
//
// Differences from alpaca_eval's `length_controlled_v1`: theirs adds a per-instruction difficulty column
// (a table fitted on many models, downloaded from their dataset; pass `difficulty` here if you have one),
// regularizes toward "gamed" verbose/concise baselines (weight 0.2, data not available here), and chooses an
// L1 penalty by 5-fold cross-validation (liblinear). Without those tables the numbers differ from the
// published length_controlled_winrate; the direction of the correction is the same.
import { invertSpd, mean, sigmoid, softplus, solveSpd, std } from './stats.ts';

export interface LogisticFit {
  coef: number[];
  /** Robust (sandwich) covariance of coef, row-major k*k; null when the Hessian is singular. */
  cov: number[] | null;
  iterations: number;
  converged: boolean;
  /** Penalized negative log-likelihood at the optimum (per unit weight). */
  loss: number;
}

export interface LogisticOptions {
  /** L2 penalty per coefficient (0 = none); length k. */
  l2?: number[];
  /** Sample weights (default 1). */
  weights?: readonly number[];
  maxIter?: number;
  tol?: number;
}

/**
 * Logistic regression with soft labels y in [0, 1] by Newton's method with step halving.
 * X is given as rows of k features (include a column of ones for an intercept).
 */
export function fitLogistic(x: readonly number[][], y: readonly number[], opts: LogisticOptions = {}): LogisticFit {
  const n = y.length;
  if (n === 0) throw new Error('fitLogistic: no rows');
  const k = x[0].length;
  for (let i = 0; i < n; i++) {
    if (x[i].length !== k) throw new Error(`fitLogistic: row ${i} has ${x[i].length} features, expected ${k}`);
    if (!(y[i] >= 0 && y[i] <= 1)) throw new Error(`fitLogistic: label ${y[i]} at row ${i} is outside [0, 1]`);
  }
  const l2 = opts.l2 ?? new Array<number>(k).fill(0);
  const w = opts.weights ?? new Array<number>(n).fill(1);
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-10;

  const lossAt = (b: number[]): number => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      let z = 0;
      for (let j = 0; j < k; j++) z += x[i][j] * b[j];
      // -[y log s(z) + (1-y) log(1 - s(z))] = softplus(z) - y z
      s += w[i] * (softplus(z) - y[i] * z);
    }
    for (let j = 0; j < k; j++) s += 0.5 * l2[j] * b[j] * b[j];
    return s;
  };
  const gradHess = (b: number[]) => {
    const g = new Array<number>(k).fill(0);
    const h = new Array<number>(k * k).fill(0);
    for (let i = 0; i < n; i++) {
      let z = 0;
      for (let j = 0; j < k; j++) z += x[i][j] * b[j];
      const p = sigmoid(z);
      const r = w[i] * (p - y[i]);
      const v = w[i] * p * (1 - p);
      for (let a = 0; a < k; a++) {
        g[a] += r * x[i][a];
        for (let c = 0; c < k; c++) h[a * k + c] += v * x[i][a] * x[i][c];
      }
    }
    for (let j = 0; j < k; j++) {
      g[j] += l2[j] * b[j];
      h[j * k + j] += l2[j];
    }
    return { g, h };
  };

  let b = new Array<number>(k).fill(0);
  let loss = lossAt(b);
  let converged = false;
  let it = 0;
  for (; it < maxIter; it++) {
    const { g, h } = gradHess(b);
    const step = solveSpd(h, g);
    if (!step) break;
    let t = 1;
    let next = b.map((v, j) => v - step[j]);
    let nextLoss = lossAt(next);
    while (nextLoss > loss + 1e-12 * Math.abs(loss) && t > 1e-8) {
      t /= 2;
      next = b.map((v, j) => v - t * step[j]);
      nextLoss = lossAt(next);
    }
    const change = Math.max(...step.map((s) => Math.abs(t * s)));
    b = next;
    const drop = loss - nextLoss;
    loss = nextLoss;
    if (change < tol || (drop >= 0 && drop < tol * 1e-3 * Math.max(1, Math.abs(loss)) && change < 1e-6)) {
      converged = true;
      it++;
      break;
    }
  }

  // sandwich covariance: H^-1 (sum_i w_i^2 (y_i - p_i)^2 x_i x_i^T) H^-1, robust to soft labels
  const { h } = gradHess(b);
  const hinv = invertSpd(h, k);
  let cov: number[] | null = null;
  if (hinv) {
    const meat = new Array<number>(k * k).fill(0);
    for (let i = 0; i < n; i++) {
      let z = 0;
      for (let j = 0; j < k; j++) z += x[i][j] * b[j];
      const r = w[i] * (y[i] - sigmoid(z));
      for (let a = 0; a < k; a++) for (let c = 0; c < k; c++) meat[a * k + c] += r * r * x[i][a] * x[i][c];
    }
    const tmp = matmul(hinv, meat, k);
    cov = matmul(tmp, hinv, k);
  }
  const totalW = w.reduce((s, v) => s + v, 0);
  return { coef: b, cov, iterations: it, converged, loss: loss / totalW };
}

function matmul(a: number[], b: number[], k: number): number[] {
  const c = new Array<number>(k * k).fill(0);
  for (let i = 0; i < k; i++) for (let p = 0; p < k; p++) for (let j = 0; j < k; j++) c[i * k + j] += a[i * k + p] * b[p * k + j];
  return c;
}

export interface LengthControlInput {
  /** Model scores in [0, 1] (preference - 1, draws 0.5), one per example (dropped rows removed). */
  scores: readonly number[];
  /** Lengths of the reference (output_1) and the model (output_2), characters. */
  referenceLengths: readonly number[];
  modelLengths: readonly number[];
  /** Optional per-example instruction difficulty (e.g. alpaca_eval's table), fitted with its own coefficient. */
  difficulty?: readonly number[];
}

export interface LengthControlOptions {
  /** L2 penalty on the length (and difficulty) coefficient; the model term is not penalized. Default 0.1. */
  l2?: number;
}

export interface LengthControlResult {
  /** 100 x predicted win-rate at zero length difference. */
  length_controlled_winrate: number;
  /** Delta-method standard error of it from the sandwich covariance (percent); NaN when unavailable. */
  lc_standard_error: number;
  /** Fitted coefficients: model term, length term, difficulty term (when given). */
  coefficients: { model: number; length: number; difficulty?: number };
  /** sd of the raw length difference used to standardize it (0 when all differences are equal). */
  delta_length_sd: number;
  /** Fraction of examples where the model's output is shorter / longer than the reference. */
  fraction_shorter: number;
  fraction_longer: number;
  converged: boolean;
  iterations: number;
  /** Why the fit was skipped or degenerate, when it was. */
  note?: string;
}

/** Length-controlled win-rate; see the header of this file for the model and how it differs from alpaca_eval. */
export function lengthControlledWinRate(input: LengthControlInput, opts: LengthControlOptions = {}): LengthControlResult {
  const { scores, referenceLengths, modelLengths, difficulty } = input;
  const n = scores.length;
  if (referenceLengths.length !== n || modelLengths.length !== n) {
    throw new Error(`lengthControlledWinRate: ${n} scores but ${referenceLengths.length} reference / ${modelLengths.length} model lengths`);
  }
  if (difficulty && difficulty.length !== n) throw new Error(`lengthControlledWinRate: ${n} scores but ${difficulty.length} difficulties`);
  if (n === 0) throw new Error('lengthControlledWinRate: no examples');
  const l2 = opts.l2 ?? 0.1;
  const raw = mean(scores);
  const delta = modelLengths.map((m, i) => m - referenceLengths[i]);
  const sd = n > 1 ? std(delta, 1) : 0;
  const useLength = sd > 0;
  const useDifficulty = !!difficulty && std(difficulty, 1) > 0;

  if (raw === 0 || raw === 1) {
    // every example won (or lost): the model term is infinite, no length effect is identifiable
    return {
      length_controlled_winrate: raw * 100, lc_standard_error: NaN,
      coefficients: { model: raw === 1 ? Infinity : -Infinity, length: 0, ...(difficulty ? { difficulty: 0 } : {}) },
      delta_length_sd: sd, fraction_shorter: delta.filter((d) => d < 0).length / n,
      fraction_longer: delta.filter((d) => d > 0).length / n, converged: true, iterations: 0,
      note: `all examples ${raw === 1 ? 'won' : 'lost'}; length control leaves the win-rate unchanged`,
    };
  }

  const rows = scores.map((_, i) => {
    const r = [1];
    if (useLength) r.push(Math.tanh(delta[i] / sd));
    if (useDifficulty) r.push(difficulty![i]);
    return r;
  });
  const penalties = rows[0].map((_, j) => (j === 0 ? 0 : l2));
  const fit = fitLogistic(rows, scores, { l2: penalties });
  const theta = fit.coef[0];
  const beta = useLength ? fit.coef[1] : 0;
  const gamma = useDifficulty ? fit.coef[useLength ? 2 : 1] : 0;

  // prediction at zero length difference, and its gradient for the delta method
  const k = fit.coef.length;
  const grad = new Array<number>(k).fill(0);
  let lc = 0;
  for (let i = 0; i < n; i++) {
    const z = theta + (useDifficulty ? gamma * difficulty![i] : 0);
    const p = sigmoid(z);
    lc += p;
    grad[0] += p * (1 - p);
    if (useDifficulty) grad[k - 1] += p * (1 - p) * difficulty![i];
  }
  lc /= n;
  for (let j = 0; j < k; j++) grad[j] /= n;
  let se = NaN;
  if (fit.cov) {
    let v = 0;
    for (let a = 0; a < k; a++) for (let c = 0; c < k; c++) v += grad[a] * fit.cov[a * k + c] * grad[c];
    se = Math.sqrt(Math.max(0, v)) * 100;
  }
  const notes: string[] = [];
  const shorter = delta.filter((d) => d < 0).length / n;
  const longer = delta.filter((d) => d > 0).length / n;
  if (Math.max(shorter, longer) >= 0.9) {
    notes.push(
      `${(100 * Math.max(shorter, longer)).toFixed(1)}% of model outputs are ${shorter > longer ? 'shorter' : 'longer'} than the reference: ` +
        'the prediction at zero length difference is an extrapolation (alpaca_eval anchors it with a difficulty table and gamed baselines)',
    );
  }
  if (Math.abs(beta) > 10) {
    notes.push(
      `length coefficient ${beta.toFixed(1)}: the preferences are almost fully explained by length (near separation), ` +
        'so the length-controlled value depends on the penalty (--lc-l2)',
    );
  }
  if (!useLength) notes.push('all length differences are equal; no length term fitted');
  if (difficulty && !useDifficulty) notes.push('difficulty is constant; no difficulty term fitted');
  if (!fit.converged) notes.push(`logistic fit did not converge in ${fit.iterations} iterations`);
  return {
    length_controlled_winrate: lc * 100,
    lc_standard_error: se,
    coefficients: { model: theta, length: beta, ...(difficulty ? { difficulty: gamma } : {}) },
    delta_length_sd: sd,
    fraction_shorter: shorter,
    fraction_longer: longer,
    converged: fit.converged,
    iterations: fit.iterations,
    ...(notes.length ? { note: notes.join('; ') } : {}),
  };
}

/**
 * True when the length-controlled win-rate moved so far from the raw one that the fit is suspect
 * (same thresholds as alpaca_eval's warning: more than 10 points or a quarter of the room on that side).
 */
export function isExtremeChange(rawWinRate: number, lcWinRate: number, absDiff = 10, relDiff = 4): boolean {
  const low = Math.min(rawWinRate - rawWinRate / relDiff, rawWinRate - absDiff);
  const high = Math.max(rawWinRate + (100 - rawWinRate) / relDiff, rawWinRate + absDiff);
  return lcWinRate < low || lcWinRate > high;
}
