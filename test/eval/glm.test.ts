import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { denseDesign, fitL1Logistic, fitL1LogisticCV, groupKFold, l1Optimality, logspace, weightedLogLoss } from '../../ts/eval/index.ts';

const close = (a: number, b: number, tol: number, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);
const sig = (z: number) => 1 / (1 + Math.exp(-z));

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

/** Rows like the length-control design: tanh(length), a difficulty, a model indicator; soft labels. */
function problem(n: number, seed: number) {
  const r = rng(seed);
  const rows: number[][] = [], y: number[] = [], w: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = Math.tanh(3 * (r() - 0.6)), d = 2 * (r() - 0.5), g = i % 4 === 0 ? 0 : 1;
    rows.push([t, d, g]);
    const p = sig(-1.5 * t + 0.8 * d - 0.7 * g);
    y.push(Math.min(1, Math.max(0, p + 0.3 * (r() - 0.5))));
    w.push(g ? 1 : 0.1);
  }
  return { x: denseDesign(rows), rows, y, w };
}

/** The penalized objective's minimum-norm subgradient, computed here from the definitions (not the solver's code). */
function subgradient(rows: number[][], y: number[], w: number[], C: number, b: ArrayLike<number>): number[] {
  const k = rows[0].length;
  const g = new Array<number>(k).fill(0);
  rows.forEach((x, i) => {
    const p = sig(x.reduce((s, v, j) => s + v * b[j], 0));
    for (let j = 0; j < k; j++) g[j] += C * w[i] * (p - y[i]) * x[j];
  });
  return g.map((gj, j) => (b[j] > 0 ? gj + 1 : b[j] < 0 ? gj - 1 : Math.sign(gj) * Math.max(0, Math.abs(gj) - 1)));
}

test('optimality conditions hold at every C of the grid (subgradient of the penalized loss ~ 0)', () => {
  const { x, rows, y, w } = problem(600, 1);
  const totalW = w.reduce((s, v) => s + v, 0);
  for (const C of logspace(-4, 4, 10)) {
    const fit = fitL1Logistic({ x, y, w }, C);
    assert.ok(fit.converged, `C ${C}: not converged (violation ${fit.violation})`);
    const sub = subgradient(rows, y, w, C, fit.coef);
    for (const s of sub) assert.ok(Math.abs(s) <= 1e-8 * C * totalW + 1e-9, `C ${C}: subgradient ${s}`);
    // and the solver's own report agrees
    close(l1Optimality({ x, y, w }, C, fit.coef).scaledViolation, fit.violation, 1e-9);
  }
  // a weak penalty lands near the generating coefficients; a strong one sets them all to zero
  const loose = fitL1Logistic({ x, y, w }, 1e4).coef;
  close(loose[0], -1.5, 0.4, 'length');
  close(loose[1], 0.8, 0.4, 'difficulty');
  assert.equal([...fitL1Logistic({ x, y, w }, 1e-4).coef], [0, 0, 0]);
});

test('one coefficient by hand: sigmoid(b) = mean(y) - sign(b) / (C sum w)', () => {
  const y = [1, 1, 0.75, 0, 1, 0.5, 1, 1];
  const w = y.map(() => 1);
  const x = denseDesign(y.map(() => [1]));
  const C = 0.5;
  const b = fitL1Logistic({ x, y, w }, C).coef[0];
  const target = y.reduce((s, v) => s + v, 0) / y.length - 1 / (C * y.length);
  close(sig(b), target, 1e-10);
  // |gradient at 0| <= 1: zero is optimal
  const tiny = fitL1Logistic({ x, y, w }, 0.1).coef[0];
  assert.equal(tiny, 0);
});

test('soft labels equal alpaca_eval\'s duplicated rows (label 1 weighted w y, label 0 weighted w (1 - y))', () => {
  const { rows, y, w } = problem(300, 2);
  const soft = fitL1Logistic({ x: denseDesign(rows), y, w }, 3);
  const dup = fitL1Logistic({ x: denseDesign([...rows, ...rows]), y: [...y.map(() => 1), ...y.map(() => 0)], w: [...y.map((v, i) => w[i] * v), ...y.map((v, i) => w[i] * (1 - v))] }, 3);
  for (let j = 0; j < 3; j++) close(soft.coef[j], dup.coef[j], 1e-8);
});

test('GroupKFold order: group g in fold (N - 1 - g) mod k, balanced', () => {
  assert.equal([...groupKFold(7, 5)], [1, 0, 4, 3, 2, 1, 0]);
  const f = groupKFold(2415, 5);
  const sizes = [0, 1, 2, 3, 4].map((k) => f.filter((v) => v === k).length);
  assert.equal(sizes, [483, 483, 483, 483, 483]);
  assert.throws(() => groupKFold(3, 5), /cannot split 3 groups into 5 folds/);
});

test('held-out loss: weighted, clipped at 1e-15, divided by the number of rows', () => {
  const loss = weightedLogLoss([1, 0, 0.5], [0.8, 0, 0.5], [1, 2, 0.5], [0, 1, 2]);
  const clipped = Math.log(1 - 1e-15);
  close(loss, -(Math.log(0.8) + 2 * clipped + 0.5 * Math.log(0.5)) / 3, 1e-15);
});

test('cross-validation: the chosen C and the refit do not depend on the solver tolerance', () => {
  const { x, y, w } = problem(800, 3);
  const tight = fitL1LogisticCV({ x, y, w }, { tol: 1e-12 });
  const loose = fitL1LogisticCV({ x, y, w }, { tol: 1e-6 });
  assert.equal(tight.bestIndex, loose.bestIndex);
  for (let j = 0; j < 3; j++) close(tight.fit.coef[j], loose.fit.coef[j], 1e-4);
  assert.equal(tight.Cs.length, 10);
  // the total loss is the sum of the per-fold held-out losses, and the best C has the smallest
  tight.totalLoss.forEach((t, c) => close(t, tight.foldLoss.reduce((s, row) => s + row[c], 0), 1e-12));
  assert.ok(tight.totalLoss.every((t) => t >= tight.totalLoss[tight.bestIndex]));
});

test('bad inputs are errors', () => {
  const x = denseDesign([[1], [1]]);
  assert.throws(() => fitL1Logistic({ x, y: [0, 1.5], w: [1, 1] }, 1), /label 1.5 at row 1 is outside \[0, 1\]/);
  assert.throws(() => fitL1Logistic({ x, y: [0, 1], w: [1, -1] }, 1), /weight -1 at row 1/);
  assert.throws(() => fitL1Logistic({ x, y: [0, 1], w: [1, 1] }, 0), /C must be a positive number/);
  assert.throws(() => fitL1Logistic({ x, y: [0], w: [1] }, 1), /2 rows but 1 labels/);
  assert.throws(() => denseDesign([[1, 2], [1]]), /row 1 has 1 features, expected 2/);
  assert.throws(() => denseDesign([[NaN]]), /feature 0 of row 0 is NaN/);
});

test.run();
