// Length-controlled win-rate as alpaca_eval computes it (Dubois et al. 2024, "Length-Controlled
// AlpacaEval"; alpaca_eval src/alpaca_eval/metrics/glm_winrate.py, Apache-2.0, read and rewritten here).
//
// For every annotated row i of one model against the baseline, with y_i = preference - 1 in [0, 1]:
//   logit P(model wins) = a * tanh(x_i) + b * difficulty_i + c * not_gamed_baseline_i          (no intercept)
//   x_i = (len(output_1) - len(output_2)) / sd        (characters; sd = the model's sample std, ddof 1)
// Rows: the model's rows (not_gamed_baseline = 1, weight 1) and, in length_controlled_v1, "gamed" rows of
// a verbose and a concise GPT-4 Turbo against the baseline (not_gamed_baseline = 0, weight 0.2 / 2 each),
// which pin a and b to what length and difficulty do to the baseline itself. L1 penalty; its strength C is
// chosen among logspace(-4, 4, 10) by 5-fold GroupKFold on the held-out weighted log-loss, then refit.
// LC = 100 * mean_i sigmoid(b * difficulty_i + c) over every row of the file (the length term at 0), and
// alpaca_eval's lc_standard_error = 100 * sem of those per-row values.
import { denseDesign, fitL1LogisticCV, type CvOptions, type CvResult } from './glm.ts';
import { invertSpd, mean, sem, sigmoid, std } from './stats.ts';

/** alpaca_eval's GLM names: with gamed rows and difficulty, without gamed rows, without difficulty either. */
export type LcVariant = 'length_controlled_v1' | 'length_controlled_noreg' | 'length_controlled_minimal';
export const LC_VARIANTS: readonly LcVariant[] = ['length_controlled_v1', 'length_controlled_noreg', 'length_controlled_minimal'];

/** Rows of the gamed baselines, as in alpaca_eval's df_gamed.csv (preference already in [0, 1]). */
export interface GamedRows {
  model: readonly string[];
  preference: readonly number[];
  /** Already standardized length difference of that gamed model (tanh is applied here). */
  stdDeltaLen: readonly number[];
  difficulty: readonly number[];
}

export interface LengthControlInput {
  /** Per row of the annotations: the model's score in [0, 1], NaN where the preference is missing. */
  scores: readonly number[];
  /** Per row: characters of the reference (output_1) and of the model (output_2). */
  referenceLengths: readonly number[];
  modelLengths: readonly number[];
  /** Per row: the instruction's difficulty (turns the difficulty term on). */
  difficulty?: readonly number[];
  /** Gamed baseline rows (length_controlled_v1; needs difficulty). */
  gamed?: GamedRows;
  /** The model is the baseline itself: LC is 50 by construction, as in alpaca_eval. */
  isBaseline?: boolean;
}

export interface LengthControlOptions extends Pick<CvOptions, 'Cs' | 'nFolds' | 'tol'> {
  /** Total weight of the gamed rows relative to the model's, split evenly over the gamed models (alpaca_eval: 0.2). */
  gamedWeight?: number;
}

export interface LengthControlResult {
  variant: LcVariant;
  /** 100 x mean predicted win probability at zero length difference. */
  length_controlled_winrate: number;
  /** alpaca_eval's lc_standard_error: 100 x sem of the per-row predictions (0 without a difficulty term). */
  lc_standard_error: number;
  /** Approximate sampling standard error of LC: delta method on a sandwich covariance of the refit (percent). */
  fit_standard_error: number;
  /**
   * Fitted coefficients, in alpaca_eval's weights files: length = "np.tanh(std_delta_len)",
   * difficulty = "instruction_difficulty", model = "not_gamed_baseline.astype(float)".
   */
  coefficients: { length: number; difficulty: number; model: number };
  /** The chosen L1 strength and the cross-validation behind it. */
  C: number;
  cv: { Cs: number[]; total_loss: number[] };
  n_rows: number;
  n_fitted: number;
  n_gamed: number;
  /** sd (ddof 1) of len(output_1) - len(output_2) over every row. */
  delta_length_sd: number;
  /** Among fitted rows: model output shorter / longer than the reference. */
  fraction_shorter: number;
  fraction_longer: number;
  /** 90% or more of the fitted rows on one side of zero length difference. */
  extrapolation: boolean;
  /** What the extrapolation means for this variant, when there is one. */
  extrapolation_note?: string;
  converged: boolean;
  notes: string[];
}

/** Share of rows on one side of zero length difference from which LC is flagged as an extrapolation. */
export const EXTRAPOLATION_FRACTION = 0.9;

function checkInput(input: LengthControlInput): void {
  const n = input.scores.length;
  if (n === 0) throw new Error('length control: no rows');
  if (input.referenceLengths.length !== n || input.modelLengths.length !== n) {
    throw new Error(`length control: ${n} scores but ${input.referenceLengths.length} reference / ${input.modelLengths.length} model lengths`);
  }
  if (input.difficulty && input.difficulty.length !== n) throw new Error(`length control: ${n} scores but ${input.difficulty.length} difficulties`);
  input.scores.forEach((s, i) => {
    if (!Number.isNaN(s) && !(s >= 0 && s <= 1)) throw new Error(`length control: score ${s} at row ${i} is outside [0, 1]`);
  });
  input.difficulty?.forEach((d, i) => {
    if (!Number.isFinite(d)) throw new Error(`length control: difficulty ${d} at row ${i} is not a number`);
  });
  const g = input.gamed;
  if (g) {
    if (!input.difficulty) throw new Error('length control: gamed rows need a difficulty per row (length_controlled_v1)');
    const m = g.preference.length;
    if (g.model.length !== m || g.stdDeltaLen.length !== m || g.difficulty.length !== m) throw new Error('length control: gamed rows have columns of different lengths');
    for (let i = 0; i < m; i++) {
      if (!Number.isNaN(g.preference[i]) && !(g.preference[i] >= 0 && g.preference[i] <= 1)) throw new Error(`length control: gamed preference ${g.preference[i]} at row ${i} is outside [0, 1]`);
      if (!Number.isFinite(g.stdDeltaLen[i]) || !Number.isFinite(g.difficulty[i])) throw new Error(`length control: gamed row ${i} has a non-numeric feature`);
    }
  }
}

/** The length-controlled win-rate of one model against its baseline; see the header of this file. */
export function lengthControlledWinRate(input: LengthControlInput, opts: LengthControlOptions = {}): LengthControlResult {
  checkInput(input);
  const { scores, referenceLengths, modelLengths, difficulty, gamed } = input;
  const n = scores.length;
  const variant: LcVariant = gamed ? 'length_controlled_v1' : difficulty ? 'length_controlled_noreg' : 'length_controlled_minimal';
  const delta = referenceLengths.map((r, i) => r - modelLengths[i]);
  const sd = n > 1 ? std(delta, 1) : NaN;
  const fitted: number[] = [];
  for (let i = 0; i < n; i++) if (!Number.isNaN(scores[i])) fitted.push(i);
  const shorter = fitted.filter((i) => delta[i] > 0).length / Math.max(1, fitted.length);
  const longer = fitted.filter((i) => delta[i] < 0).length / Math.max(1, fitted.length);
  const notes: string[] = [];
  const base = {
    variant, n_rows: n, n_fitted: fitted.length, delta_length_sd: sd, fraction_shorter: shorter, fraction_longer: longer,
    extrapolation: !input.isBaseline && Math.max(shorter, longer) >= EXTRAPOLATION_FRACTION,
  };

  if (input.isBaseline) {
    return {
      ...base, length_controlled_winrate: 50, lc_standard_error: 0, fit_standard_error: 0,
      coefficients: { length: 0, difficulty: 0, model: 0 }, C: NaN, cv: { Cs: [], total_loss: [] }, n_gamed: 0,
      converged: true, notes: ['the model is the baseline: 50 by construction'],
    };
  }
  if (fitted.length === 0) throw new Error('length control: no row has a preference');

  const useLength = Number.isFinite(sd) && sd > 0;
  if (!useLength) notes.push('all length differences are equal: no length term');
  const feature = (t: number, d: number, notGamed: number) => (difficulty ? [t, d, notGamed] : [t, notGamed]);
  const rows: number[][] = [];
  const y: number[] = [];
  const w: number[] = [];
  let nGamed = 0;
  if (gamed) {
    const gamedModels = new Set(gamed.model).size;
    const weight = (opts.gamedWeight ?? 0.2) / gamedModels;
    for (let i = 0; i < gamed.preference.length; i++) {
      if (Number.isNaN(gamed.preference[i])) continue;
      rows.push(feature(Math.tanh(gamed.stdDeltaLen[i]), gamed.difficulty[i], 0));
      y.push(gamed.preference[i]);
      w.push(weight);
      nGamed++;
    }
  }
  for (const i of fitted) {
    rows.push(feature(useLength ? Math.tanh(delta[i] / sd) : 0, difficulty ? difficulty[i] : 0, 1));
    y.push(scores[i]);
    w.push(1);
  }
  const problem = { x: denseDesign(rows), y, w };
  const cv: CvResult = fitL1LogisticCV(problem, { Cs: opts.Cs, nFolds: opts.nFolds, tol: opts.tol });
  const coef = cv.fit.coef;
  const a = coef[0];
  const b = difficulty ? coef[1] : 0;
  const c = coef[difficulty ? 2 : 1];

  const predicted = new Float64Array(n);
  for (let i = 0; i < n; i++) predicted[i] = sigmoid(b * (difficulty ? difficulty[i] : 0) + c);
  const lc = 100 * mean(predicted);
  const lcSem = n > 1 ? 100 * sem(predicted) : NaN;
  const fitSe = fitStandardError(rows, y, w, coef, predicted, difficulty);

  if (!cv.converged) notes.push('the L1 fit stopped before reaching its tolerance');
  if (cv.bestIndex === cv.Cs.length - 1) notes.push(`the largest C (${cv.C}) was chosen: the penalty hardly matters`);
  if (variant === 'length_controlled_minimal') notes.push('no difficulty term: alpaca_eval\'s lc_standard_error is 0 by construction; fit_standard_error estimates the sampling error');
  let extrapolationNote: string | undefined;
  if (base.extrapolation) {
    const side = shorter >= longer ? 'shorter' : 'longer';
    const pct = (100 * Math.max(shorter, longer)).toFixed(1);
    extrapolationNote = (
      `${pct}% of the model's outputs are ${side} than the reference: LC predicts at zero length difference, outside the data` +
        (variant === 'length_controlled_v1'
          ? ' (anchored, as on the AlpacaEval 2 board, by the gamed baseline rows and the difficulty term)'
          : variant === 'length_controlled_noreg'
            ? ' (the difficulty term helps; without gamed baseline rows nothing pins the length slope near zero)'
            : ' and unanchored: the value rests on the logistic shape far from the data')
    );
  }
  return {
    ...base,
    length_controlled_winrate: lc,
    lc_standard_error: lcSem,
    fit_standard_error: fitSe,
    coefficients: { length: a, difficulty: b, model: c },
    C: cv.C,
    cv: { Cs: cv.Cs, total_loss: cv.totalLoss },
    n_gamed: nGamed,
    converged: cv.converged,
    ...(extrapolationNote ? { extrapolation_note: extrapolationNote } : {}),
    notes,
  };
}

/**
 * Delta-method standard error of LC from the sandwich covariance H^-1 M H^-1 of the nonzero coefficients
 * (H: weighted Fisher information, M: sum of squared weighted score contributions). It treats C and the
 * selected support as fixed: a sampling error of the fit, not of the choice of C.
 */
function fitStandardError(
  rows: number[][], y: number[], w: number[], coef: Float64Array, predicted: Float64Array, difficulty?: readonly number[],
): number {
  const active = [...coef.keys()].filter((j) => coef[j] !== 0);
  const k = active.length;
  if (k === 0) return NaN;
  const h = new Array<number>(k * k).fill(0);
  const m = new Array<number>(k * k).fill(0);
  for (let i = 0; i < rows.length; i++) {
    let z = 0;
    for (let j = 0; j < coef.length; j++) z += rows[i][j] * coef[j];
    const p = sigmoid(z);
    const r = w[i] * (y[i] - p);
    for (let s = 0; s < k; s++) {
      for (let t = 0; t < k; t++) {
        const xx = rows[i][active[s]] * rows[i][active[t]];
        h[s * k + t] += w[i] * p * (1 - p) * xx;
        m[s * k + t] += r * r * xx;
      }
    }
  }
  const hinv = invertSpd(h, k);
  if (!hinv) return NaN;
  // gradient of mean_i sigmoid(b d_i + c) with respect to the active coefficients (the length one is 0)
  const nCoef = coef.length;
  const grad = new Array<number>(k).fill(0);
  for (let i = 0; i < predicted.length; i++) {
    const v = predicted[i] * (1 - predicted[i]);
    active.forEach((j, s) => {
      if (j === nCoef - 1) grad[s] += v;
      else if (difficulty && j === 1) grad[s] += v * difficulty[i];
    });
  }
  for (let s = 0; s < k; s++) grad[s] /= predicted.length;
  const hg = new Array<number>(k).fill(0);
  for (let s = 0; s < k; s++) for (let t = 0; t < k; t++) hg[s] += hinv[s * k + t] * grad[t];
  let v = 0;
  for (let s = 0; s < k; s++) for (let t = 0; t < k; t++) v += hg[s] * m[s * k + t] * hg[t];
  return 100 * Math.sqrt(Math.max(0, v));
}

/**
 * True when the length-controlled win-rate moved so far from the raw one that the fit is suspect
 * (alpaca_eval's thresholds: more than 10 points or a quarter of the room on that side).
 */
export function isExtremeChange(rawWinRate: number, lcWinRate: number, absDiff = 10, relDiff = 4): boolean {
  const low = Math.min(rawWinRate - rawWinRate / relDiff, rawWinRate - absDiff);
  const high = Math.max(rawWinRate + (100 - rawWinRate) / relDiff, rawWinRate + absDiff);
  return lcWinRate < low || lcWinRate > high;
}
