import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fitLogistic, isExtremeChange, lengthControlledWinRate, sigmoid, mean } from '../../ts/eval/index.ts';

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
 * A judge with a length bias: P(model wins) = sigmoid(logit(quality) + bias * tanh(delta / scale)).
 * Returns hard labels drawn from it (1 win, 0 loss) and the lengths.
 */
function synthetic(n: number, quality: number, bias: number, meanDelta: number, seed: number) {
  const r = rng(seed);
  const scores: number[] = [], refLen: number[] = [], modLen: number[] = [];
  const logitQ = Math.log(quality / (1 - quality));
  for (let i = 0; i < n; i++) {
    const ref = 300 + Math.round(100 * gaussian(r));
    const delta = Math.round(meanDelta + 250 * gaussian(r));
    const mod = Math.max(1, ref + delta);
    const p = sigmoid(logitQ + bias * Math.tanh((mod - ref) / 250));
    scores.push(r() < p ? 1 : 0);
    refLen.push(ref);
    modLen.push(mod);
  }
  return { scores, referenceLengths: refLen, modelLengths: modLen };
}

test('logistic fit: intercept-only recovers logit(mean), gradient vanishes at the optimum', () => {
  const y = [1, 0, 0, 1, 0, 0.5, 0.25, 0];
  const fit = fitLogistic(y.map(() => [1]), y);
  assert.ok(fit.converged);
  close(sigmoid(fit.coef[0]), mean(y), 1e-10);
  const x = y.map((_, i) => [1, Math.sin(i)]);
  const f2 = fitLogistic(x, y);
  const g = [0, 0];
  x.forEach((row, i) => {
    const p = sigmoid(row[0] * f2.coef[0] + row[1] * f2.coef[1]);
    g[0] += (p - y[i]) * row[0];
    g[1] += (p - y[i]) * row[1];
  });
  close(g[0], 0, 1e-9, 'grad0');
  close(g[1], 0, 1e-9, 'grad1');
});

test('soft labels equal alpaca_eval\'s duplicated weighted hard rows', () => {
  const r = rng(3);
  const x: number[][] = [], y: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = gaussian(r);
    x.push([1, Math.tanh(t)]);
    y.push(Math.min(1, Math.max(0, sigmoid(0.3 + t) + 0.2 * (r() - 0.5))));
  }
  const soft = fitLogistic(x, y);
  const dupX = [...x, ...x];
  const dupY = [...y.map(() => 1), ...y.map(() => 0)];
  const dupW = [...y, ...y.map((v) => 1 - v)];
  const hard = fitLogistic(dupX, dupY, { weights: dupW });
  close(soft.coef[0], hard.coef[0], 1e-8);
  close(soft.coef[1], hard.coef[1], 1e-8);
});

test('bad inputs to the fit are errors', () => {
  assert.throws(() => fitLogistic([[1], [1, 2]], [0, 1]), /row 1 has 2 features/);
  assert.throws(() => fitLogistic([[1]], [1.5]), /outside \[0, 1\]/);
  assert.throws(() => lengthControlledWinRate({ scores: [1], referenceLengths: [], modelLengths: [1] }), /1 scores but 0 reference/);
});

test('equal lengths: length-controlled win-rate equals the raw win-rate', () => {
  const scores = [1, 0, 0.5, 1, 0, 0, 1, 0.25];
  const lens = scores.map(() => 100);
  const lc = lengthControlledWinRate({ scores, referenceLengths: lens, modelLengths: lens });
  close(lc.length_controlled_winrate, 100 * mean(scores), 1e-9);
  assert.equal(lc.coefficients.length, 0);
  assert.match(lc.note ?? '', /all length differences are equal/);
  // a constant difference is also no information about length
  const lc2 = lengthControlledWinRate({ scores, referenceLengths: lens, modelLengths: lens.map((l) => l + 50) });
  close(lc2.length_controlled_winrate, 100 * mean(scores), 1e-9);
});

test('length-loving judge, model longer: LC moves down toward the true quality', () => {
  const d = synthetic(3000, 0.3, 2, 200, 11);
  const raw = 100 * mean(d.scores);
  const lc = lengthControlledWinRate(d);
  assert.ok(raw > 40, `raw ${raw}`);
  assert.ok(lc.length_controlled_winrate < raw - 5, `lc ${lc.length_controlled_winrate} raw ${raw}`);
  assert.ok(Math.abs(lc.length_controlled_winrate - 30) < 4, `lc ${lc.length_controlled_winrate} should be near 30`);
  assert.ok(lc.coefficients.length > 0.5);
  assert.ok(lc.lc_standard_error > 0 && lc.lc_standard_error < 5, `se ${lc.lc_standard_error}`);
  assert.ok(lc.converged);
});

test('length-loving judge, model shorter: LC moves up', () => {
  const d = synthetic(3000, 0.5, 2, -200, 12);
  const raw = 100 * mean(d.scores);
  const lc = lengthControlledWinRate(d);
  assert.ok(raw < 40, `raw ${raw}`);
  assert.ok(lc.length_controlled_winrate > raw + 5, `lc ${lc.length_controlled_winrate} raw ${raw}`);
});

test('judge without length bias: LC stays within noise of the raw win-rate', () => {
  const d = synthetic(3000, 0.4, 0, 200, 13);
  const raw = 100 * mean(d.scores);
  const lc = lengthControlledWinRate(d);
  assert.ok(Math.abs(lc.length_controlled_winrate - raw) < 3, `lc ${lc.length_controlled_winrate} raw ${raw}`);
});

test('all wins: no fit, LC equals raw with a note', () => {
  const lc = lengthControlledWinRate({ scores: [1, 1, 1], referenceLengths: [1, 2, 3], modelLengths: [5, 1, 9] });
  assert.equal(lc.length_controlled_winrate, 100);
  assert.match(lc.note ?? '', /all examples won/);
});

test('difficulty column: fitted, and LC averages over instructions', () => {
  const r = rng(5);
  const n = 2000;
  const scores: number[] = [], refLen: number[] = [], modLen: number[] = [], diff: number[] = [];
  for (let i = 0; i < n; i++) {
    const d = gaussian(r);
    const delta = 200 * gaussian(r);
    scores.push(r() < sigmoid(-0.5 + 1.5 * d + Math.tanh(delta / 200)) ? 1 : 0);
    refLen.push(300);
    modLen.push(300 + delta);
    diff.push(d);
  }
  const lc = lengthControlledWinRate({ scores, referenceLengths: refLen, modelLengths: modLen, difficulty: diff });
  assert.ok(Math.abs((lc.coefficients.difficulty ?? 0) - 1.5) < 0.3, `difficulty coef ${lc.coefficients.difficulty}`);
  const expected = 100 * mean(diff.map((d) => sigmoid(-0.5 + 1.5 * d)));
  assert.ok(Math.abs(lc.length_controlled_winrate - expected) < 3, `${lc.length_controlled_winrate} vs ${expected}`);
});

test('one-sided length differences are flagged as extrapolation', () => {
  const d = synthetic(500, 0.3, 1, -2000, 14);
  const lc = lengthControlledWinRate(d);
  assert.ok(lc.fraction_shorter > 0.9);
  assert.match(lc.note ?? '', /shorter than the reference: the prediction at zero length difference is an extrapolation/);
});

test('extreme-change thresholds follow alpaca_eval', () => {
  assert.is(isExtremeChange(20, 9), true);
  assert.is(isExtremeChange(20, 11), false);
  assert.is(isExtremeChange(50, 62), false);
  assert.is(isExtremeChange(50, 63), true);
});

test.run();
