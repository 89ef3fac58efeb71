import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  alpacaEval2, estimateDifficulty, gamedWithDifficulty, instructionFingerprint, lookupDifficulty, parseDifficultyCsv, parseGamedCsv,
  readDifficultyTable, sigmoid, std, tiltGamed, type ModelAnnotations,
} from '../../ts/eval/index.ts';

const close = (a: number, b: number, tol: number, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);

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
const gaussian = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

test('the bundled AlpacaEval 2 files: 805 instructions, a positional table, 1,610 gamed rows', () => {
  const ae = alpacaEval2();
  assert.equal([ae.fingerprints.length, ae.difficulty.byIndex!.length, ae.surrogate.preference.length], [805, 805, 1610]);
  assert.equal(ae.positionOf.get(instructionFingerprint('What are the names of some famous actors that started their careers on Broadway?')), 0);
  // the surrogate's difficulty column is the bundled table, by index (as in alpaca_eval's df_gamed.csv)
  ae.surrogate.index.forEach((idx, i) => assert.equal(ae.surrogate.difficulty[i], ae.difficulty.byIndex![idx]));
  assert.equal(new Set(ae.surrogate.model).size, 2);
  assert.ok(Number.isFinite(ae.calibration.alpha) && Number.isFinite(ae.calibration.beta));
});

test('difficulty tables: alpaca_eval CSV by position, JSON by instruction, errors name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-diff-'));
  try {
    writeFileSync(join(dir, 'd.csv'), 'index,instruction_difficulty\n1,0.5\n0,-1.25\n');
    assert.equal(readDifficultyTable(join(dir, 'd.csv')).byIndex, [-1.25, 0.5]);
    writeFileSync(join(dir, 'a.json'), JSON.stringify([{ index: 0, instruction: 'x', difficulty: 1 }, { index: 1, instruction: 'y', input: 'z', difficulty: 2 }]));
    const a = readDifficultyTable(join(dir, 'a.json'));
    assert.equal(a.byInstruction!.get('y\n\nz'), 2);
    assert.equal(a.byIndex, [1, 2]);
    writeFileSync(join(dir, 'o.json'), JSON.stringify({ x: 1, y: 2 }));
    assert.equal(readDifficultyTable(join(dir, 'o.json')).byIndex, undefined);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ x: 'hard' }));
    assert.throws(() => readDifficultyTable(join(dir, 'bad.json')), /bad\.json: "x": difficulty "hard" is not a number/);
    assert.throws(() => parseDifficultyCsv('index,d\n0,1\n2,3\n', 't.csv'), /t\.csv: index 1 is missing/);
    assert.throws(() => readDifficultyTable(join(dir, 'none.csv')), /cannot read .*none\.csv: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gamed rows: alpaca_eval\'s df_gamed.csv format; a replacement table replaces their difficulty; the tilt', () => {
  const g = parseGamedCsv('model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\nv,1,0.25,-1.5,0.3,False\nc,0,0.75,2,0.1,False\n', 'g.csv');
  assert.equal([g.index, g.preference, g.difficulty], [[1, 0], [0.25, 0.75], [0.3, 0.1]]);
  assert.throws(() => parseGamedCsv('model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\nv,0,0.5,1,1,True\n', 'g.csv'), /not a gamed row/);
  assert.throws(() => parseGamedCsv('model,index,preference,std_delta_len\nv,0,0.5,1\n', 'g.csv'), /no "instruction_difficulty" column/);
  assert.equal(gamedWithDifficulty(g, { source: 't', byIndex: [7, 8] }).difficulty, [8, 7]);
  assert.equal(tiltGamed(g, 0, 0).preference.map((p) => +p.toFixed(12)), [0.25, 0.75]);
  const t = tiltGamed(g, 1, 0).preference;
  close(t[0], sigmoid(Math.log(1 / 3) + Math.tanh(-1.5)), 1e-12);
});

test('lookup by position (alpaca_eval) counts misplaced rows; by instruction goes through the fingerprints', () => {
  const ae = alpacaEval2();
  const first = 'What are the names of some famous actors that started their careers on Broadway?';
  const second = 'How did US states get their names?';
  const pos = lookupDifficulty(ae.difficulty, [second, first], 'position');
  assert.equal(pos.values, [ae.difficulty.byIndex![0], ae.difficulty.byIndex![1]]);
  assert.equal([pos.misplaced, pos.firstMisplaced], [2, 0]);
  const ins = lookupDifficulty(ae.difficulty, [second, first], 'instruction');
  assert.equal(ins.values, [ae.difficulty.byIndex![1], ae.difficulty.byIndex![0]]);
  assert.throws(() => lookupDifficulty(ae.difficulty, ['not an AlpacaEval instruction'], 'instruction'), /no entry for 1 of 1 instructions \(first: "not an AlpacaEval instruction"\)/);
  assert.throws(() => lookupDifficulty({ source: 's', byInstruction: new Map() }, ['a'], 'position'), /has no positions/);
});

/** Models of known strength and length slope on instructions of known difficulty, soft labels. */
function world(nModels: number, nInstr: number, seed: number) {
  const r = rng(seed);
  const gamma = Array.from({ length: nInstr }, () => 1.2 * gaussian(r));
  const models: ModelAnnotations[] = [];
  for (let m = 0; m < nModels; m++) {
    const theta = gaussian(r), beta = -1 - r(), shift = 400 * (r() - 0.5);
    const keys: string[] = [], scores: number[] = [], referenceLengths: number[] = [], modelLengths: number[] = [];
    for (let k = 0; k < nInstr; k++) {
      keys.push(`instruction ${k}`);
      referenceLengths.push(600);
      modelLengths.push(Math.max(1, Math.round(600 + shift + 300 * gaussian(r))));
    }
    // the fit standardizes by the model's sample std: generate on the same scale
    const sd = std(referenceLengths.map((x, i) => x - modelLengths[i]), 1);
    for (let k = 0; k < nInstr; k++) scores.push(sigmoid(theta + beta * Math.tanh((referenceLengths[k] - modelLengths[k]) / sd) + gamma[k]));
    models.push({ name: `m${m}`, keys, scores, referenceLengths, modelLengths });
  }
  return { gamma, models };
}

test('estimated difficulty recovers the generating one; the fit is stationary', () => {
  const { gamma, models } = world(8, 120, 7);
  const truth = (est: { rows: Array<{ instruction: string }> }) => est.rows.map((r) => gamma[Number(r.instruction.split(' ')[1])]);
  // exact soft labels and almost no penalty: the generating values, up to the shift the model terms absorb
  const exact = estimateDifficulty(models, { lambdas: [1e-6] });
  const g = truth(exact);
  const mg = g.reduce((s, v) => s + v, 0) / g.length;
  exact.rows.forEach((r, i) => close(r.difficulty, g[i] - mg, 1e-3, r.instruction));

  // cross-validated ridge: shrunk (better predictions from few models), but the same ordering
  const est = estimateDifficulty(models);
  assert.ok(est.converged);
  assert.equal(est.rows.length, 120);
  const d = est.rows.map((r) => r.difficulty);
  close(d.reduce((s, v) => s + v, 0), 0, 1e-6, 'centred by the ridge');
  const corr = (a: number[], b: number[]) => {
    const ma = a.reduce((s, v) => s + v, 0) / a.length, mb = b.reduce((s, v) => s + v, 0) / b.length;
    let ab = 0, aa = 0, bb = 0;
    a.forEach((v, i) => { ab += (v - ma) * (b[i] - mb); aa += (v - ma) ** 2; bb += (b[i] - mb) ** 2; });
    return ab / Math.sqrt(aa * bb);
  };
  assert.ok(corr(d, truth(est)) > 0.98, `correlation ${corr(d, truth(est))}`);
  // stationarity, from the definitions: each instruction's and each model's gradient vanishes (the gauge
  // shift moves the tiny ridges' balance by at most (lambda or 1e-6) x the shift)
  const gradG = new Map<string, number>();
  models.forEach((m, mi) => {
    const { theta, beta } = est.model_terms[mi];
    const delta = m.referenceLengths.map((r, i) => r - m.modelLengths[i]);
    const sd = std(delta, 1);
    let gt = 0, gb = 0;
    m.keys.forEach((k, i) => {
      const t = Math.tanh(delta[i] / sd);
      const res = sigmoid(theta + beta * t + est.table.byInstruction!.get(k)!) - m.scores[i];
      gt += res;
      gb += res * t;
      gradG.set(k, (gradG.get(k) ?? 0) + res);
    });
    close(gt, 0, 1e-5, `theta ${m.name}`);
    close(gb, 0, 1e-5, `beta ${m.name}`);
  });
  for (const [k, v] of gradG) close(v + est.lambda * est.table.byInstruction!.get(k)!, 0, 1e-5, k);
  assert.ok(est.cv.lambdas.includes(est.lambda));
});

test('estimating needs two models and one row per instruction', () => {
  const { models } = world(2, 10, 3);
  assert.throws(() => estimateDifficulty(models.slice(0, 1)), /at least 2 models/);
  assert.throws(() => estimateDifficulty([models[0], { ...models[1], name: 'm0' }]), /model m0 appears twice/);
  const twice = { ...models[1], keys: models[1].keys.map((k, i) => (i === 1 ? models[1].keys[0] : k)) };
  assert.throws(() => estimateDifficulty([models[0], twice]), /m1: instruction "instruction 0" appears twice/);
});

test.run();
