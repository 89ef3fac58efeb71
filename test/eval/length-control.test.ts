import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isExtremeChange, lengthControlledWinRate, mean, sem, sigmoid, type GamedRows } from '../../ts/eval/index.ts';

const close = (a: number, b: number, tol = 1e-9, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);

// small seeded generator so the synthetic data is identical on every run
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/**
 * A judge with a length bias: P(model wins) = sigmoid(logit(quality) + bias * tanh((model - reference) / 250)).
 * Hard labels drawn from it, and the lengths.
 */
function synthetic(n: number, quality: number, bias: number, meanDelta: number, seed: number) {
  const r = rng(seed);
  const scores: number[] = [], referenceLengths: number[] = [], modelLengths: number[] = [];
  const logitQ = Math.log(quality / (1 - quality));
  for (let i = 0; i < n; i++) {
    const ref = 300 + Math.round(100 * gaussian(r));
    const mod = Math.max(1, ref + Math.round(meanDelta + 250 * gaussian(r)));
    scores.push(r() < sigmoid(logitQ + bias * Math.tanh((mod - ref) / 250)) ? 1 : 0);
    referenceLengths.push(ref);
    modelLengths.push(mod);
  }
  return { scores, referenceLengths, modelLengths };
}

test('the baseline against itself: exactly 50 with standard error 0', () => {
  const d = synthetic(50, 0.5, 1, 0, 1);
  const lc = lengthControlledWinRate({ ...d, isBaseline: true });
  assert.equal([lc.length_controlled_winrate, lc.lc_standard_error], [50, 0]);
});

test('LC is 100 mean sigmoid(b d + c) over every row, missing preferences included; the s.e. is the sem of those', () => {
  const r = rng(2);
  const d = synthetic(400, 0.4, 1.5, 100, 2);
  const difficulty = d.scores.map(() => gaussian(r));
  const scores = d.scores.map((s, i) => (i % 37 === 0 ? NaN : s));
  const lc = lengthControlledWinRate({ ...d, scores, difficulty });
  assert.equal(lc.variant, 'length_controlled_noreg');
  const per = difficulty.map((x) => sigmoid(lc.coefficients.difficulty * x + lc.coefficients.model));
  close(lc.length_controlled_winrate, 100 * mean(per), 1e-9);
  close(lc.lc_standard_error, 100 * sem(per), 1e-9);
  assert.equal([lc.n_rows, lc.n_fitted], [400, 400 - 11]);
  assert.ok(lc.converged);
  assert.ok(lc.cv.Cs.includes(lc.C));
});

test('minimal variant: a length-loving judge and a longer model, LC moves down toward the true quality', () => {
  const d = synthetic(3000, 0.3, 2, 200, 11);
  const raw = 100 * mean(d.scores);
  const lc = lengthControlledWinRate(d);
  assert.equal(lc.variant, 'length_controlled_minimal');
  assert.ok(raw > 40, `raw ${raw}`);
  assert.ok(Math.abs(lc.length_controlled_winrate - 30) < 4, `lc ${lc.length_controlled_winrate} should be near 30 (raw ${raw})`);
  // alpaca_eval's sign: x = (reference - model) / sd, so a judge that loves length gives a negative slope
  assert.ok(lc.coefficients.length < -0.5, `length ${lc.coefficients.length}`);
  // without a difficulty term every row predicts the same: alpaca_eval's s.e. is 0, ours estimates the fit's
  close(lc.lc_standard_error, 0, 1e-12);
  assert.ok(lc.fit_standard_error > 0.3 && lc.fit_standard_error < 5, `fit s.e. ${lc.fit_standard_error}`);
});

test('shorter model: LC moves up; no length bias: LC stays near the raw win-rate', () => {
  const short = synthetic(3000, 0.5, 2, -200, 12);
  assert.ok(lengthControlledWinRate(short).length_controlled_winrate > 100 * mean(short.scores) + 5);
  const fair = synthetic(3000, 0.4, 0, 200, 13);
  assert.ok(Math.abs(lengthControlledWinRate(fair).length_controlled_winrate - 100 * mean(fair.scores)) < 3);
});

test('gamed rows pin the shared length slope (length_controlled_v1)', () => {
  // the model's own rows say nothing about length (all differences equal) but the gamed rows do
  const n = 400;
  const r = rng(21);
  const difficulty = Array.from({ length: n }, () => gaussian(r));
  const scores = difficulty.map((x) => (r() < sigmoid(0.5 * x - 0.2) ? 1 : 0));
  const lens = scores.map(() => 500);
  const gamed = { model: [] as string[], preference: [] as number[], stdDeltaLen: [] as number[], difficulty: [] as number[] } satisfies GamedRows;
  for (const [name, shift] of [['verbose', -1.5], ['concise', 1.5]] as const) {
    for (let i = 0; i < n; i++) {
      const x = shift + 0.5 * gaussian(r);
      gamed.model.push(name);
      gamed.stdDeltaLen.push(x);
      gamed.difficulty.push(difficulty[i]);
      gamed.preference.push(sigmoid(-2 * Math.tanh(x) + 0.5 * difficulty[i]));
    }
  }
  const v1 = lengthControlledWinRate({ scores, referenceLengths: lens, modelLengths: lens, difficulty, gamed });
  assert.equal(v1.variant, 'length_controlled_v1');
  assert.equal(v1.n_gamed, 2 * n);
  close(v1.coefficients.length, -2, 0.3, 'length slope from the gamed rows');
  assert.throws(() => lengthControlledWinRate({ scores, referenceLengths: lens, modelLengths: lens, gamed }), /gamed rows need a difficulty/);
});

test('one-sided length differences are flagged as an extrapolation, with what anchors it', () => {
  const d = synthetic(500, 0.3, 1, -2000, 14);
  const lc = lengthControlledWinRate(d);
  assert.ok(lc.fraction_shorter > 0.9);
  assert.ok(lc.extrapolation);
  assert.match(lc.extrapolation_note ?? '', /of the model's outputs are shorter than the reference: LC predicts at zero length difference, outside the data and unanchored/);
  const both = lengthControlledWinRate(synthetic(500, 0.3, 1, 0, 15));
  assert.equal([both.extrapolation, both.extrapolation_note], [false, undefined]);
});

test('bad inputs are errors', () => {
  assert.throws(() => lengthControlledWinRate({ scores: [1], referenceLengths: [], modelLengths: [1] }), /1 scores but 0 reference/);
  assert.throws(() => lengthControlledWinRate({ scores: [1, 2], referenceLengths: [1, 2], modelLengths: [1, 2] }), /score 2 at row 1 is outside/);
  assert.throws(() => lengthControlledWinRate({ scores: [NaN, NaN], referenceLengths: [1, 2], modelLengths: [1, 2] }), /no row has a preference/);
  assert.throws(() => lengthControlledWinRate({ scores: [1, 0], referenceLengths: [1, 2], modelLengths: [1, 2], difficulty: [0, NaN] }), /difficulty NaN at row 1/);
});

test('extreme-change thresholds follow alpaca_eval', () => {
  assert.is(isExtremeChange(20, 9), true);
  assert.is(isExtremeChange(20, 11), false);
  assert.is(isExtremeChange(50, 62), false);
  assert.is(isExtremeChange(50, 63), true);
});

test.run();
