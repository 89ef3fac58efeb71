// The real path: published alpaca_eval annotations and outputs in ../shared/data/alpaca_eval.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Annotation, Annotator, Pair } from '../../ts/feedback/types.ts';
import {
  alignOutputs, alpacaEval2, charLength, evaluateModel, instructionKey, Leaderboard, lengthControlledWinRate, lookupDifficulty,
  metricsFromAnnotations, readAnnotations, readOutputs, rowFromMetrics, sigmoid, std, type AnnotationRecord,
} from '../../ts/eval/index.ts';

// FARM_ALPACA_EVAL_DATA points elsewhere (and lets the skip path be checked)
const DATA = process.env.FARM_ALPACA_EVAL_DATA
  ? `${process.env.FARM_ALPACA_EVAL_DATA.replace(/\/$/, '')}/`
  : fileURLToPath(new URL('../../../shared/data/alpaca_eval/', import.meta.url));
const p = (rel: string) => DATA + rel;
const NEEDED = [
  'annotations/alpaca-7b__alpaca_eval_gpt4.json', 'annotations/text_davinci_001__alpaca_eval_gpt4.json',
  'annotations/alpaca-7b__weighted_alpaca_eval_gpt4_turbo.json', 'leaderboards/alpaca_eval_gpt4_leaderboard.csv',
  'leaderboards/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv', 'text_davinci_003/model_outputs.json',
  'text_davinci_001/model_outputs.json', 'alpaca-7b/model_outputs.json', 'eval_gpt-3.5-turbo-0301.json',
  'annotations/FuseChat-Gemma-2-9B-Instruct__weighted_alpaca_eval_gpt4_turbo.json', 'annotations/gpt4_0613_concise__weighted_alpaca_eval_gpt4_turbo.json',
];
const missing = NEEDED.filter((f) => !existsSync(p(f)));

const to4 = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 5e-5, `${what}: ${a} vs ${b} (4 decimals)`);
const same = (a: number | undefined, b: number | undefined, what: string) =>
  assert.ok(a !== undefined && b !== undefined && Math.abs(a - b) < 1e-9, `${what}: ${a} vs published ${b}`);

/** Replays the published judge: looks the preference up by instruction, so the join path is what is tested. */
class ReplayAnnotator implements Annotator {
  readonly name = 'alpaca_eval_gpt4';
  private readonly byKey = new Map<string, unknown>();
  constructor(rows: readonly AnnotationRecord[]) {
    for (const r of rows) this.byKey.set(instructionKey(r.instruction, r.input), r.preference);
  }
  async annotate(pairs: Pair[]): Promise<Annotation[]> {
    return pairs.map((pair) => {
      const key = instructionKey(pair.instruction, pair.input);
      if (!this.byKey.has(key)) throw new Error(`no published annotation for ${key.slice(0, 40)}`);
      return { ...pair, annotator: this.name, preference: this.byKey.get(key) as number | null };
    });
  }
}

if (missing.length > 0) {
  console.log(`SKIP real-data: ${missing.length} files missing under ${DATA} (first: ${missing[0]})`);
  test('real data (skipped: ../shared missing)', () => {});
} else {
  const gpt4Board = Leaderboard.load(p('leaderboards/alpaca_eval_gpt4_leaderboard.csv'));
  const weightedBoard = Leaderboard.load(p('leaderboards/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv'));

  test('alpaca-7b under alpaca_eval_gpt4 reproduces the published row', () => {
    const { metrics: m, warnings } = metricsFromAnnotations(readAnnotations(p('annotations/alpaca-7b__alpaca_eval_gpt4.json')));
    to4(m.win_rate, 26.4596, 'win_rate');
    to4(m.standard_error, 1.5357, 'standard_error');
    assert.equal([m.n_wins, m.n_wins_base, m.n_draws, m.n_total], [205, 584, 16, 805]);
    const row = gpt4Board.get('alpaca-7b')!;
    same(m.win_rate, row.win_rate, 'win_rate');
    same(m.standard_error, row.standard_error, 'standard_error');
    same(m.discrete_win_rate, row.discrete_win_rate, 'discrete_win_rate');
    assert.equal(Math.trunc(m.avg_length), row.avg_length);
    assert.equal(warnings, []);
  });

  test('text_davinci_001 annotations reproduce its row (one unparsed preference dropped, two empty outputs reported)', () => {
    const { metrics: m, warnings } = metricsFromAnnotations(readAnnotations(p('annotations/text_davinci_001__alpaca_eval_gpt4.json')));
    const row = gpt4Board.get('text_davinci_001')!;
    to4(m.win_rate, 15.1741, 'win_rate');
    to4(m.standard_error, 1.2351, 'standard_error');
    for (const k of ['win_rate', 'standard_error', 'n_wins', 'n_wins_base', 'n_draws', 'n_total'] as const) same(m[k], row[k], k);
    assert.equal(Math.trunc(m.avg_length), row.avg_length);
    assert.equal([m.n_missing, m.n_rows, m.n_empty_model_outputs], [1, 805, 2]);
    assert.ok(warnings.some((w) => /1 of 805 preferences are missing.*row 793/.test(w)), warnings.join('|'));
    assert.ok(warnings.some((w) => /2 model outputs \(output_2\) are empty/.test(w)));
  });

  test('weighted AlpacaEval 2 annotations: soft win-rate, standard error and discrete win-rate of alpaca-7b', () => {
    const { metrics: m, warnings } = metricsFromAnnotations(readAnnotations(p('annotations/alpaca-7b__weighted_alpaca_eval_gpt4_turbo.json')));
    to4(m.win_rate, 2.5915, 'win_rate');
    to4(m.standard_error, 0.4871, 'standard_error');
    to4(m.discrete_win_rate, 2.2981, 'discrete_win_rate');
    assert.ok(m.is_soft);
    const row = weightedBoard.get('alpaca-7b')!;
    for (const k of ['win_rate', 'standard_error', 'discrete_win_rate', 'n_wins', 'n_wins_base', 'n_draws', 'n_total'] as const) same(m[k], row[k], k);
    // 97.3% of its outputs are shorter than GPT-4 Turbo's: said on every path, with what anchors the value
    assert.ok(warnings.some((w) => /extrapolation: 97\.3% of the model's outputs are shorter than the reference.*gamed baseline rows/.test(w)), warnings.join('|'));
    assert.equal(m.length_control!.variant, 'length_controlled_v1');
  });

  const AE2 = ['alpaca-7b', 'FuseChat-Gemma-2-9B-Instruct', 'gpt4_0613_concise'];
  const ae2 = (name: string) => readAnnotations(p(`annotations/${name}__weighted_alpaca_eval_gpt4_turbo.json`));
  // SOURCE.md: alpaca_eval's own code on the bundled surrogate inputs, with and without the gamed rows
  const ALPACA_EVAL_V1: Record<string, number> = { 'alpaca-7b': 6.150, 'FuseChat-Gemma-2-9B-Instruct': 69.997, gpt4_0613_concise: 22.903 };
  const ALPACA_EVAL_NOREG: Record<string, number> = { 'alpaca-7b': 6.983, 'FuseChat-Gemma-2-9B-Instruct': 69.906, gpt4_0613_concise: 25.206 };

  test('LC equals what alpaca_eval\'s code gives on the same bundled inputs (within 0.05)', () => {
    for (const name of AE2) {
      const rows = ae2(name);
      const v1 = metricsFromAnnotations(rows, { lengthControl: { gamed: 'surrogate' } }).metrics;
      assert.equal(v1.length_control!.variant, 'length_controlled_v1');
      assert.ok(Math.abs(v1.length_controlled_winrate! - ALPACA_EVAL_V1[name]) < 0.05, `${name} v1: ${v1.length_controlled_winrate} vs ${ALPACA_EVAL_V1[name]}`);
      const noreg = metricsFromAnnotations(rows, { lengthControl: { variant: 'length_controlled_noreg' } }).metrics;
      assert.ok(Math.abs(noreg.length_controlled_winrate! - ALPACA_EVAL_NOREG[name]) < 0.05, `${name} noreg: ${noreg.length_controlled_winrate} vs ${ALPACA_EVAL_NOREG[name]}`);
    }
  });

  test('the refit meets its optimality conditions, and the chosen C does not move with the solver tolerance', () => {
    const rows = ae2('alpaca-7b');
    const ae = alpacaEval2();
    const scores = rows.map((r) => (r.preference as number) === 0 ? 0.5 : (r.preference as number) - 1);
    const referenceLengths = rows.map((r) => charLength(r.output_1));
    const modelLengths = rows.map((r) => charLength(r.output_2));
    const difficulty = lookupDifficulty(ae.difficulty, rows.map((r) => instructionKey(r.instruction, r.input)), 'position').values;
    const input = { scores, referenceLengths, modelLengths, difficulty, gamed: ae.surrogate };
    const tight = lengthControlledWinRate(input, { tol: 1e-12 });
    const loose = lengthControlledWinRate(input, { tol: 1e-6 });
    assert.equal(tight.C, loose.C);
    assert.ok(Math.abs(tight.length_controlled_winrate - loose.length_controlled_winrate) < 1e-3);
    // the subgradient of |a| + |b| + |c| + C sum_i w_i logloss_i, rebuilt here from the recipe
    const delta = referenceLengths.map((x, i) => x - modelLengths[i]);
    const sd = std(delta, 1);
    const design: Array<[number[], number, number]> = [];
    ae.surrogate.preference.forEach((pr, i) => design.push([[Math.tanh(ae.surrogate.stdDeltaLen[i]), ae.surrogate.difficulty[i], 0], pr, 0.1]));
    scores.forEach((y, i) => design.push([[Math.tanh(delta[i] / sd), difficulty[i], 1], y, 1]));
    const b = [tight.coefficients.length, tight.coefficients.difficulty, tight.coefficients.model];
    const g = [0, 0, 0];
    for (const [x, y, w] of design) {
      const q = sigmoid(x[0] * b[0] + x[1] * b[1] + x[2] * b[2]);
      for (let j = 0; j < 3; j++) g[j] += tight.C * w * (q - y) * x[j];
    }
    for (let j = 0; j < 3; j++) {
      const sub = b[j] > 0 ? g[j] + 1 : b[j] < 0 ? g[j] - 1 : Math.max(0, Math.abs(g[j]) - 1);
      assert.ok(Math.abs(sub) < 1e-6, `coefficient ${j}: subgradient ${sub}`);
    }
  });

  test('default (calibrated gamed rows): LC near the published board on the test models', () => {
    for (const name of AE2) {
      const m = metricsFromAnnotations(ae2(name)).metrics;
      const published = weightedBoard.get(name)!.length_controlled_winrate!;
      assert.ok(Math.abs(m.length_controlled_winrate! - published) < 1.5, `${name}: ${m.length_controlled_winrate} vs published ${published}`);
      assert.match(m.length_control!.gamed_source!, /calibrated/);
    }
  });

  test('AlpacaEval 1 rows: alpaca_eval\'s length_controlled_v1 reproduces the AlpacaEval 1 board\'s LC', () => {
    for (const [file, name] of [['alpaca-7b__alpaca_eval_gpt4.json', 'alpaca-7b'], ['text_davinci_001__alpaca_eval_gpt4.json', 'text_davinci_001']]) {
      const { metrics: m } = metricsFromAnnotations(readAnnotations(p(`annotations/${file}`)), { lengthControl: { gamed: 'surrogate' } });
      const published = gpt4Board.get(name)!.length_controlled_winrate!;
      assert.ok(Math.abs(m.length_controlled_winrate! - published) < 0.06, `${name}: LC ${m.length_controlled_winrate} vs published ${published}`);
      assert.equal(m.length_control!.variant, 'length_controlled_v1');
      assert.match(m.length_control!.description, /whatever the baseline, here text_davinci_003/);
      assert.ok(m.length_control!.converged);
    }
  });

  test('rows out of alpaca_eval\'s order: difficulty by position as alpaca_eval (warned), or by instruction on request', () => {
    const rows = ae2('alpaca-7b');
    const shifted = [...rows.slice(0, 10), ...rows.slice(11)];
    const byPos = metricsFromAnnotations(shifted);
    assert.ok(byPos.warnings.some((w) => /794 of 804 rows are not at alpaca_eval's position for their instruction \(first: row 10\)/.test(w)), byPos.warnings.join('|'));
    assert.equal(byPos.metrics.length_control!.difficulty_lookup, 'position');
    const byIns = metricsFromAnnotations(shifted, { lengthControl: { lookup: 'instruction' } });
    assert.ok(!byIns.warnings.some((w) => /alpaca_eval's position/.test(w)));
    assert.ok(Math.abs(byIns.metrics.length_controlled_winrate! - byPos.metrics.length_controlled_winrate!) > 0.01);
  });

  test('the baseline against itself: 50 and 0', () => {
    const rows = ae2('alpaca-7b').map((r) => ({ ...r, output_2: r.output_1, generator_2: r.generator_1, preference: 1.5 }));
    const m = metricsFromAnnotations(rows).metrics;
    assert.equal([m.length_controlled_winrate, m.lc_standard_error], [50, 0]);
  });

  test('evaluate path: alpaca-7b outputs joined to davinci-003 and judged by a replayed judge give the same row', async () => {
    const judge = new ReplayAnnotator(readAnnotations(p('annotations/alpaca-7b__alpaca_eval_gpt4.json')));
    const r = await evaluateModel(readOutputs(p('text_davinci_003/model_outputs.json')), readOutputs(p('alpaca-7b/model_outputs.json')), { annotator: judge });
    to4(r.metrics.win_rate, 26.4596, 'win_rate');
    to4(r.metrics.standard_error, 1.5357, 'standard_error');
    assert.equal([r.metrics.n_wins, r.metrics.n_wins_base, r.metrics.n_draws, r.metrics.n_total], [205, 584, 16, 805]);
    assert.equal(r.name, 'alpaca-7b');
    assert.equal(r.reference_name, 'text_davinci_003');
    assert.equal(r.alignment.n_matched, 805);
    // the davinci-003 file has two empty outputs: counted and reported, not dropped
    assert.equal(r.alignment.empty_reference_outputs.count, 2);
    assert.ok(r.warnings.some((w) => /2 reference outputs are empty/.test(w)));
  });

  test('text_davinci_001 outputs lack 2 instructions: error by default, 803 pairs with allowMissing', () => {
    const ref = readOutputs(p('text_davinci_003/model_outputs.json'));
    const d001 = readOutputs(p('text_davinci_001/model_outputs.json'));
    assert.throws(() => alignOutputs(ref, d001), /2 of 805 reference instructions have no model output \(first: ".+"\)/);
    const a = alignOutputs(ref, d001, { allowMissing: true });
    assert.equal(a.pairs.length, 803);
    assert.equal(a.report.missing_in_model.count, 2);
    assert.equal(a.report.extra_in_model.count, 0);
  });

  test('the AlpacaFarm eval file (instruction and input apart) joins the alpaca_eval files on all 805', () => {
    const farm = readOutputs(p('eval_gpt-3.5-turbo-0301.json'));
    const asModel = alignOutputs(readOutputs(p('text_davinci_003/model_outputs.json')), farm);
    assert.equal(asModel.report.n_matched, 805);
    const asReference = alignOutputs(farm, readOutputs(p('alpaca-7b/model_outputs.json')));
    assert.equal(asReference.report.n_matched, 805);
    assert.equal(asReference.pairs.filter((x) => x.input !== '').length, 208);
  });

  test('a leaderboard from the published annotations ranks as the published one', () => {
    const board = new Leaderboard();
    for (const f of ['alpaca-7b__alpaca_eval_gpt4.json', 'text_davinci_001__alpaca_eval_gpt4.json']) {
      const r = metricsFromAnnotations(readAnnotations(p(`annotations/${f}`)));
      board.upsert(rowFromMetrics(r.model!, r.metrics, { annotator: r.annotator, reference: r.reference }));
    }
    assert.equal(board.sorted().map((r) => r.name), ['alpaca-7b', 'text_davinci_001']);
    const published = gpt4Board.sorted().map((r) => r.name).filter((n) => board.has(n));
    assert.equal(published, ['alpaca-7b', 'text_davinci_001']);
  });
}

test.run();
