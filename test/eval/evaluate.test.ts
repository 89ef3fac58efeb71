import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Annotation, Annotator, Pair } from '../../ts/feedback/types.ts';
import {
  alignOutputs, evaluateModel, instructionKey, metricsFromAnnotations, readAnnotations, readOutputs, parseRows,
  toOutputs, toAnnotations, detectKind, charLength, writeJson, replacePythonJsonConstants, type OutputRecord,
} from '../../ts/eval/index.ts';

const fx = (name: string) => fileURLToPath(new URL(`../fixtures/eval/${name}`, import.meta.url));
const close = (a: number, b: number, tol = 1e-9, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);

/** A judge that prefers the longer output, gives a draw on equal lengths, and fails on one chosen pair. */
class LengthJudge implements Annotator {
  readonly name = 'length-judge';
  calls = 0;
  constructor(private readonly failOn?: string) {}
  async annotate(pairs: Pair[]): Promise<Annotation[]> {
    this.calls++;
    return pairs.map((p) => ({
      ...p,
      annotator: this.name,
      price_per_example: 0.01,
      preference:
        p.instruction === this.failOn ? null : p.output_2.length > p.output_1.length ? 2 : p.output_2.length < p.output_1.length ? 1 : 0,
    }));
  }
}

const out = (instruction: string, output: string, input = ''): OutputRecord => ({ instruction, input, output });

test('fixture annotations: metrics match a hand computation', () => {
  const r = metricsFromAnnotations(readAnnotations(fx('annotations.json')));
  const m = r.metrics;
  assert.equal([m.n_wins, m.n_wins_base, m.n_draws, m.n_total], [5, 5, 2, 12]);
  close(m.win_rate, 50);
  // scores: five 1s, five 0s, two 0.5s: sd = sqrt(10 * 0.25 / 11)
  close(m.standard_error, (100 * Math.sqrt(2.5 / 11)) / Math.sqrt(12));
  close(m.avg_length, 397.5833333333333, 1e-9);
  assert.equal(r.model, 'alpaca-7b');
  assert.equal(r.reference, 'text_davinci_003');
  assert.equal(r.annotator, 'alpaca_eval_gpt4');
  // the judge saw a davinci-003 version without the two empty outputs of reference.json
  assert.equal(m.n_empty_reference_outputs, 0);
  const emptied = metricsFromAnnotations(readAnnotations(fx('annotations.json')).map((a, i) => (i < 2 ? { ...a, output_2: ' ' } : a)));
  assert.equal(emptied.metrics.n_empty_model_outputs, 2);
  assert.ok(emptied.warnings.some((w) => /2 model outputs \(output_2\) are empty/.test(w)));
  assert.ok(typeof m.length_controlled_winrate === 'number');
});

test('join: alpaca_eval merged instructions match AlpacaFarm instruction + input', () => {
  const ref = readOutputs(fx('reference.json'));
  const farm = readOutputs(fx('eval_farm.json'));
  assert.ok(farm.some((r) => r.input !== ''), 'fixture has rows with input');
  const a = alignOutputs(ref, farm);
  assert.equal(a.report.n_matched, 12);
  assert.equal(a.report.empty_reference_outputs.count, 2);
  assert.ok(a.warnings.some((w) => /2 reference outputs are empty/.test(w)));
  // the pair keeps the reference's split; a farm-format reference keeps instruction and input apart
  const b = alignOutputs(farm, ref);
  const withInput = b.pairs.find((p) => p.input !== '')!;
  assert.ok(withInput, 'input kept apart');
  assert.equal(instructionKey(withInput.instruction, withInput.input), ref.find((r) => r.instruction.startsWith(withInput.instruction) && r.instruction.endsWith(withInput.input))!.instruction);
});

test('join: reference order, output_1 = reference, output_2 = model', () => {
  const ref = readOutputs(fx('reference.json'));
  const model = readOutputs(fx('model.json'));
  const a = alignOutputs(ref, model);
  assert.equal(a.pairs.map((p) => p.instruction), ref.map((r) => r.instruction));
  assert.equal(a.pairs[0].output_1, ref[0].output);
  assert.equal(a.pairs[0].output_2, model[model.length - 1].output);
  assert.equal(a.pairs[0].generator_1, 'text_davinci_003');
  assert.equal(a.pairs[0].generator_2, 'alpaca-7b');
});

test('mismatched instructions: error names how many and the first, --allow-missing evaluates the rest', () => {
  const ref = [out('a', 'x'), out('b', 'y'), out('c', 'z')];
  const model = [out('a', 'xx'), out('b ', 'yy'), out('d', 'w')];
  assert.throws(() => alignOutputs(ref, model), (e: Error) =>
    /2 model instructions are not in the reference \(first: "b"\) \(1 of them differ from a reference instruction only in whitespace\)/.test(e.message) &&
    /2 of 3 reference instructions have no model output \(first: "b"\)/.test(e.message) &&
    /--allow-missing/.test(e.message));
  const a = alignOutputs(ref, model, { allowMissing: true });
  assert.equal(a.pairs.length, 1);
  assert.equal(a.report.missing_in_model.count, 2);
  assert.equal(a.report.extra_in_model.count, 2);
  assert.equal(a.warnings.length, 2);
  assert.throws(() => alignOutputs(ref, [out('q', 'x')], { allowMissing: true }), /share no instruction/);
});

test('duplicated instructions are errors (or keep-first on request)', () => {
  const ref = [out('a', 'x'), out('b', 'y')];
  const model = [out('a', '1'), out('b', '2'), out('a', '3')];
  assert.throws(() => alignOutputs(ref, model), /1 duplicated instructions in the model outputs \(first: "a"\).*--allow-duplicates/);
  assert.throws(() => alignOutputs([...ref, out('b', 'q')], ref), /1 duplicated instructions in the reference outputs \(first: "b"\)/);
  const a = alignOutputs(ref, model, { allowDuplicates: true });
  assert.equal(a.pairs[0].output_2, '1');
  assert.ok(a.warnings.some((w) => /kept the first/.test(w)));
});

test('empty model outputs are counted and reported, not dropped', () => {
  const a = alignOutputs([out('a', 'x'), out('b', 'y')], [out('a', ''), out('b', '  \n')]);
  assert.equal(a.report.empty_model_outputs.count, 2);
  assert.equal(a.pairs.length, 2);
  assert.ok(a.warnings.some((w) => /2 model outputs are empty \(first: "a"\)/.test(w)));
});

test('evaluateModel: annotates with the injected annotator and computes every metric', async () => {
  const ref = readOutputs(fx('reference.json'));
  const model = readOutputs(fx('model.json'));
  const judge = new LengthJudge(ref[3].instruction);
  const r = await evaluateModel(ref, model, { annotator: judge });
  assert.equal(judge.calls, 1);
  assert.equal(r.annotations.length, 12);
  assert.equal(r.name, 'alpaca-7b');
  assert.equal(r.reference_name, 'text_davinci_003');
  assert.equal(r.annotator_name, 'length-judge');
  assert.equal(r.metrics.n_missing, 1);
  assert.equal(r.metrics.n_total, 11);
  let wins = 0, draws = 0;
  r.annotations.forEach((a, i) => {
    if (i === 3) return;
    const l1 = a.output_1.length, l2 = a.output_2.length;
    if (l2 > l1) wins++;
    else if (l2 === l1) draws++;
  });
  close(r.metrics.win_rate, (100 * (wins + 0.5 * draws)) / 11);
  close(r.total_price, 0.12, 1e-12);
  assert.equal(r.annotations[0].generator_2, 'alpaca-7b');
  assert.ok(r.warnings.some((w) => /1 of 12 preferences are missing/.test(w)));
});

test('annotations written by evaluateModel read back to the same metrics', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  try {
    const r = await evaluateModel(readOutputs(fx('reference.json')), readOutputs(fx('model.json')), { annotator: new LengthJudge() });
    writeJson(join(dir, 'annotations.json'), r.annotations);
    const back = metricsFromAnnotations(readAnnotations(join(dir, 'annotations.json')));
    assert.equal(back.metrics, r.metrics);
    assert.equal([back.model, back.reference, back.annotator], ['alpaca-7b', 'text_davinci_003', 'length-judge']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluateModel: maxInstances and names', async () => {
  const ref = readOutputs(fx('reference.json'));
  const model = readOutputs(fx('model.json'));
  const r = await evaluateModel(ref, model, { annotator: new LengthJudge(), maxInstances: 5, modelName: 'm', referenceName: 'davinci' });
  assert.equal(r.metrics.n_rows, 5);
  assert.equal(r.name, 'm');
  assert.equal(r.reference_name, 'davinci');
  assert.equal(r.annotations[0].generator_1, 'davinci');
  await assert.not.throws(() => evaluateModel(ref, model, { annotator: new LengthJudge(), maxInstances: 100 }));
});

test('evaluateModel: an annotator that returns the wrong rows is caught', async () => {
  const ref = [out('a', 'x'), out('b', 'yy')];
  const model = [out('a', 'xx'), out('b', 'y')];
  const short: Annotator = { name: 'short', annotate: async (p) => p.slice(1).map((q) => ({ ...q, preference: 1, annotator: 'short' })) };
  let msg = '';
  try {
    await evaluateModel(ref, model, { annotator: short });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.match(msg, /returned 1 annotations for 2 pairs/);
  const swapped: Annotator = {
    name: 'swapper',
    annotate: async (p) => p.map((q) => ({ ...q, output_1: q.output_2, output_2: q.output_1, preference: 1, annotator: 'swapper' })),
  };
  try {
    await evaluateModel(ref, model, { annotator: swapped });
    msg = '';
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.match(msg, /outputs swapped/);
});

test('annotations mixing models or with invalid preferences are errors', () => {
  const rows = readAnnotations(fx('annotations.json'));
  const mixed = rows.map((r, i) => ({ ...r, generator_2: i % 2 ? 'x' : 'y' }));
  assert.throws(() => metricsFromAnnotations(mixed), /mix 2 models as output_2/);
  const bad = rows.map((r, i) => ({ ...r, preference: i === 4 ? 'output_1' : r.preference }));
  assert.throws(() => metricsFromAnnotations(bad), /1 of 12 preferences are not valid.*row 4: "output_1"/);
  const dropped = metricsFromAnnotations(bad, { invalid: 'drop' });
  assert.equal(dropped.metrics.n_invalid, 1);
  assert.equal(dropped.metrics.n_total, 11);
});

test('a repeated instruction in annotations is an error; allowDuplicates keeps the first of each', () => {
  const rows = readAnnotations(fx('annotations.json'));
  const repeated = [...rows, { ...rows[0] }, { ...rows[3], output_2: 'another answer', preference: 2 }];
  assert.throws(() => metricsFromAnnotations(repeated), /2 rows repeat an instruction already annotated \(first: .*; 1 of them with other outputs\).*--allow-duplicates/);
  const kept = metricsFromAnnotations(repeated, { allowDuplicates: true, lengthControl: false });
  const once = metricsFromAnnotations(rows, { lengthControl: false });
  // counted once: the same win-rate, count and standard error as without the repeats
  assert.equal([kept.metrics.win_rate, kept.metrics.n_total, kept.metrics.standard_error], [once.metrics.win_rate, once.metrics.n_total, once.metrics.standard_error]);
  assert.ok(kept.warnings.some((w) => /2 rows repeat an instruction.*kept the first of each/.test(w)), kept.warnings.join('|'));
  assert.equal(kept.metrics.length_controlled_winrate, undefined);
});

test('too few rows for 5-fold cross-validation: length control skipped with a warning, the rest computed', () => {
  const rows = readAnnotations(fx('annotations.json')).slice(0, 4).map((r) => ({ ...r, instruction: `farm ${r.instruction}` }));
  const r = metricsFromAnnotations(rows);
  assert.equal(r.metrics.length_controlled_winrate, undefined);
  assert.equal(r.metrics.n_total, 4);
  assert.ok(r.warnings.some((w) => /length control skipped: 4 annotated rows are too few for its 5-fold cross-validation/.test(w)), r.warnings.join('|'));
});

test('Python json NaN reads as a missing preference; infinities are invalid, and strings are left alone', () => {
  const text = '[{"instruction":"NaN Infinity \\"NaN\\"","output_1":"a","output_2":"bb","preference":NaN},' +
    '{"instruction":"b","output_1":"a","output_2":"b","preference":2.0},{"instruction":"c","output_1":"a","output_2":"b","preference":1}]';
  const rows = toAnnotations(parseRows(text, 'py.json'));
  assert.equal(rows[0].instruction, 'NaN Infinity "NaN"');
  assert.equal(rows[0].preference, null);
  const m = metricsFromAnnotations(rows, { lengthControl: false });
  assert.equal([m.metrics.n_missing, m.metrics.n_total, m.metrics.win_rate], [1, 2, 50]);
  assert.ok(m.warnings.some((w) => /1 of 3 preferences are missing.*row 0/.test(w)));
  // JSON lines too
  assert.equal(toAnnotations(parseRows('{"instruction":"a","output_1":"x","output_2":"y","preference":NaN}\n', 'py.jsonl'))[0].preference, null);
  const inf = toAnnotations(parseRows('[{"instruction":"a","output_1":"x","output_2":"y","preference":-Infinity}]', 'inf.json'));
  assert.throws(() => metricsFromAnnotations(inf), /1 of 1 preferences are not valid.*"-Infinity"/);
  assert.equal(replacePythonJsonConstants('{"a": NaN, "b": "NaN", "c": [Infinity, -Infinity]}').replaced, 3);
  assert.throws(() => parseRows('[{"a": nan}]', 'bad.json'), /bad\.json: not valid JSON/);
});

test('file readers: formats, JSONL, clear errors', () => {
  assert.equal(detectKind(parseRows('[{"instruction":"a","output":"b"}]')), 'outputs');
  assert.equal(detectKind(parseRows('[{"instruction":"a","output_1":"b","output_2":"c"}]')), 'pairs');
  assert.equal(detectKind(parseRows('{"instruction":"a","output_1":"b","output_2":"c","preference":1}\n')), 'annotations');
  assert.equal(toOutputs(parseRows('{"instruction":"a","output":"b"}\n{"instruction":"c","input":"d","output":"e"}\n'))[1].input, 'd');
  assert.throws(() => parseRows('[{"a":1}', 'f.json'), /f\.json: not valid JSON/);
  assert.throws(() => parseRows('{"a":1}\n{oops', 'f.jsonl'), /f\.jsonl: line 2 is not valid JSON/);
  assert.throws(() => toOutputs([{ instruction: 'a' }], 'm.json'), /m\.json: row 0 has no "output"/);
  assert.throws(() => toOutputs([{ instruction: 'a', output: 3 }], 'm.json'), /row 0 field "output" is number/);
  assert.throws(() => readOutputs(fx('annotations.json')), /not model outputs; use --annotations/);
  assert.throws(() => readOutputs(fx('nope.json')), /cannot read .*nope\.json: ENOENT/);
});

test('lengths are counted in code points, as Python len()', () => {
  assert.equal(charLength('abc'), 3);
  assert.equal(charLength('a😀b'), 3);
  assert.equal(charLength('é'), 1);
});

test.run();
