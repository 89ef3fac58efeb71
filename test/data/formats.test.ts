// Record formats: JSONL / JSON / protobuf round trips, validation errors naming file, line and field,
// truncated files refused, manifests, and the real alpaca_eval files through the same readers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DataError, decodeRecords, encodeRecords, parseJsonl, readManifest, readRecords, validateRecord, verifyManifest,
  writeManifest, writeRecords, type InstructionRecord, type PreferenceRecord, type Completion,
} from '../../ts/data/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'farm-formats-'));
const shared = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', '..', 'shared', 'data', 'alpaca_eval');

const instr: InstructionRecord[] = [
  { instruction: 'Name three fruits.', input: '', output: 'Apple, pear and plum.', generator: 'farm-demonstrator', dataset: 'list', datasplit: 'sft' },
  { instruction: 'Add these numbers.', input: '1, 2', output: 'The sum is 3.\nDone "quoted" ünïcode', dataset: 'arithmetic' },
];
const prefs: PreferenceRecord[] = [
  { instruction: 'What is 2 plus 2?', input: '', output_1: '4', output_2: '5', preference: 1, annotator: 'farm-panel' },
  { instruction: 'What is 2 plus 2?', input: '', output_1: '4', output_2: '4', preference: 0, annotator: 'farm-panel' },
  { instruction: 'x', input: 'y', output_1: 'a', output_2: 'b', preference: 1.75, annotator: 'soft' },
];
const comps: Completion[] = [
  { instruction: 'Hi', input: '', output: 'Hello', generator: 'm', sample_index: 2, logprob: -3.5 },
  { instruction: 'Hi', input: '', output: 'Hey', generator: 'm', sample_index: 3 },
];

test('round trips in every format', () => {
  for (const ext of ['jsonl', 'json', 'pb']) {
    const f1 = join(dir, `i.${ext}`), f2 = join(dir, `p.${ext}`), f3 = join(dir, `c.${ext}`);
    const e = writeRecords(f1, 'instruction', instr);
    assert.is(e.records, 2);
    assert.match(e.sha256, /^[0-9a-f]{64}$/);
    writeRecords(f2, 'preference', prefs);
    writeRecords(f3, 'completion', comps);
    const back = readRecords(f1, 'instruction');
    // protobuf keeps the known fields; absent optional strings come back as ''
    const strip = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== ''));
    assert.equal(back.map(strip), instr.map(strip), ext);
    assert.equal(readRecords(f2, 'preference').map(strip), prefs.map(strip), ext);
    const c = readRecords(f3, 'completion');
    assert.is(c[0].logprob, -3.5);
    assert.is(c[1].logprob, undefined, `${ext}: an absent optional number stays absent`);
    assert.is(c[1].sample_index, 3);
  }
});

test('unlabelled pairs round-trip too', () => {
  const pairs = [{ instruction: 'a', input: '', output_1: 'x', output_2: 'y' }];
  for (const ext of ['jsonl', 'pb']) {
    const f = join(dir, `pairs.${ext}`);
    writeRecords(f, 'pair', pairs);
    const back = readRecords(f, 'pair');
    assert.is(back[0].output_2, 'y');
  }
});

test('JSON validation names file, line and field', () => {
  const f = join(dir, 'bad.jsonl');
  writeFileSync(f, '{"instruction":"a","input":"","output":"b"}\n\n{"instruction":"a","input":"","output":7}\n');
  try { readRecords(f, 'instruction'); assert.unreachable(); } catch (err) {
    assert.instance(err, DataError);
    const e = err as DataError;
    assert.is(e.line, 3);
    assert.is(e.field, 'output');
    assert.match(e.message, /bad\.jsonl:3: field "output": expected a string, got number 7/);
  }
  writeFileSync(f, '{"instruction":"a","output":"b"}\n{oops}\n');
  assert.throws(() => readRecords(f, 'instruction'), /bad\.jsonl:2: invalid JSON/);
  writeFileSync(f, '{"instruction":"a","input":"","output_1":"b","output_2":"c","preference":3}\n');
  assert.throws(() => readRecords(f, 'preference'), /:1: field "preference": expected 1, 2, 0/);
  writeFileSync(f, '{"instruction":"a","input":"","output_1":"b","output_2":"c"}\n');
  assert.throws(() => readRecords(f, 'preference'), /field "preference": missing/);
  writeFileSync(f, '[1]\n');
  assert.throws(() => readRecords(f, 'instruction'), /expected a JSON array of instruction records|expected a JSON object/);
  assert.throws(() => validateRecord('instruction', { instruction: '', output: 'x' }, 'f', 1), /field "instruction": must not be empty/);
  assert.throws(() => validateRecord('completion', { instruction: 'a', output: 'x', sample_index: 1.5 }, 'f', 1), /sample_index.*integer/);
  const arr = join(dir, 'bad.json');
  writeFileSync(arr, '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "a",\n   "output": null}\n]\n');
  assert.throws(() => readRecords(arr, 'instruction'), /bad\.json:3: field "output": expected a string, got null/);
});

test('partially written files are refused, never half-read', () => {
  const f = join(dir, 'cut.jsonl');
  writeRecords(f, 'instruction', instr);
  const text = readFileSync(f, 'utf8');
  writeFileSync(f, text.slice(0, text.length - 10));
  assert.throws(() => readRecords(f, 'instruction'), /truncated/);
  const j = join(dir, 'cut.json');
  writeRecords(j, 'instruction', instr);
  writeFileSync(j, readFileSync(j, 'utf8').slice(0, 60));
  assert.throws(() => readRecords(j, 'instruction'), /not closed|invalid JSON/);

  const bytes = encodeRecords('instruction', instr);
  assert.is(decodeRecords(bytes, 'instruction').length, 2);
  for (const cut of [bytes.length - 1, bytes.length - 5, Math.floor(bytes.length / 2), 20, 3]) {
    assert.throws(() => decodeRecords(bytes.subarray(0, cut), 'instruction', 'x.pb'), /truncated|cut short|no footer/, `cut at ${cut}`);
  }
  const flipped = bytes.slice();
  flipped[bytes.length - 20] ^= 0x20; // a changed letter inside the last record
  assert.throws(() => decodeRecords(flipped, 'instruction', 'x.pb'), /CRC-32|corrupt|truncated/);
  assert.throws(() => decodeRecords(encodeRecords('preference', prefs), 'instruction', 'p.pb'), /holds preference records, expected instruction/);
  assert.throws(() => decodeRecords(new Uint8Array([1, 2, 3]), 'instruction', 'junk.pb'), /junk\.pb/);
  assert.throws(() => readRecords(join(dir, 'none.jsonl'), 'instruction'), /no such file/);
  assert.throws(() => readRecords(join(dir, 'x.csv'), 'instruction'), /no such file|extension/);
});

test('manifests record counts and hashes; verify catches a changed file', () => {
  const d = mkdtempSync(join(tmpdir(), 'farm-manifest-'));
  const e = writeRecords(join(d, 'sft.jsonl'), 'instruction', instr);
  for (const mf of ['manifest.json', 'manifest.pb']) {
    writeManifest(join(d, mf), { name: 'n', kind: 'test', seed: 3, files: [{ ...e, path: 'sft.jsonl' }], metrics: { a: 1.5 }, counts: { sft: 2 }, config: { x: [1, 2] } });
    const m = readManifest(join(d, mf));
    assert.is(m.seed, 3);
    assert.equal(m.config, { x: [1, 2] });
    assert.is(m.files[0].records, 2);
    verifyManifest(join(d, mf));
  }
  writeFileSync(join(d, 'sft.jsonl'), readFileSync(join(d, 'sft.jsonl'), 'utf8').replace('pear', 'peas'));
  assert.throws(() => verifyManifest(join(d, 'manifest.json')), /SHA-256/);
  assert.throws(() => writeManifest(join(d, 'bad.json'), { name: 'n', kind: 'k', seed: -1, files: [] }), /field "seed"/);
  rmSync(d, { recursive: true, force: true });
});

test('parseJsonl accepts CRLF and a last line without newline when it is complete', () => {
  const r = parseJsonl('{"instruction":"a","output":"b"}\r\n{"instruction":"c","output":"d"}', 'instruction', 'mem');
  assert.is(r.length, 2);
  assert.is(r[1].input, '');
});

test('committed fixtures cut from AlpacaFarm / alpaca_eval load through the same readers', () => {
  const fx = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'fixtures');
  const ev = readRecords(join(fx, 'alpaca_eval_eval_sample.json'), 'instruction');
  assert.is(ev.length, 3);
  assert.is(ev.filter((r) => r.input !== '').length, 2);
  assert.is(ev[0].datasplit, 'eval', 'extra fields are kept');
  const mo = readRecords(join(fx, 'alpaca_7b_model_outputs_sample.json'), 'completion');
  assert.is(mo.length, 2);
  assert.is(mo[0].input, '');
  assert.is(mo[0].generator, 'alpaca-7b');
});

test('the real AlpacaFarm / alpaca_eval files load through the same readers', () => {
  const evalFile = join(shared, 'eval_gpt-3.5-turbo-0301.json');
  if (!existsSync(evalFile)) { console.log(`SKIP alpaca_eval files not found under ${shared}`); return; }
  const ev = readRecords(evalFile, 'instruction');
  assert.is(ev.length, 805);
  assert.is(ev.filter((r) => r.input !== '').length, 208);
  const outs = readRecords(join(shared, 'alpaca-7b', 'model_outputs.json'), 'completion');
  assert.is(outs.length, 805);
  assert.is(outs[0].input, '', 'model_outputs.json has no input field');
  assert.is(outs[0].generator, 'alpaca-7b');
  const pairs = readRecords(join(shared, 'outputs_pairs.json'), 'pair');
  assert.is(pairs.length, 6);
  const ann = readRecords(join(shared, 'annotations', 'alpaca-7b__alpaca_eval_gpt4.json'), 'preference');
  assert.is(ann.length, 805);
  assert.is(ann.filter((a) => a.preference === 2).length, 205, 'alpaca-7b wins (published n_wins)');
  // and they survive our own formats
  const pb = join(dir, 'eval.pb');
  writeRecords(pb, 'instruction', ev);
  assert.equal(readRecords(pb, 'instruction').map((r) => r.instruction), ev.map((r) => r.instruction));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
