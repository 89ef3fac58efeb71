// Issue 14, item 5: no writes outside the chosen output folder, and sensible run names. `evaluate --name
// ../../../x` and a generator field "../../../x" (leaderboard build) created folders outside --output-dir;
// `farm generate` wrote the checkpoint's absolute path as the generator, so evaluate named the run after it
// and nested that path under the output folder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { saveModel } from '../../ts/engine/index.ts';
import { trainBpeJson } from '../../ts/tokenizer/index.ts';
import { tinyModel } from '../generate/helpers.ts';
import { farm, writeJsonl } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'farm-paths-'));
test.after(() => rmSync(base, { recursive: true, force: true }));
// everything runs three levels down, so "../../../x" would land inside `base` where the test can see it
const work = join(base, 'a', 'b', 'c');
mkdirSync(work, { recursive: true });
const out = join(work, 'out');

/** Every file under `dir`, relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => relative(dir, join(d.parentPath ?? d.path, d.name))).sort();
}
const reference = writeJsonl(join(work, 'reference.jsonl'), Array.from({ length: 12 }, (_, i) => ({ instruction: `Say ${i}`, input: '', output: `reference answer number ${i}`, generator: 'ref' })));
const outputsOf = (generator: string, file: string) => writeJsonl(join(work, file), Array.from({ length: 12 }, (_, i) => ({ instruction: `Say ${i}`, input: '', output: `m ${i}`.repeat(1 + (i % 3)), generator })));

test('evaluate --name ../../../x writes inside --output-dir', async () => {
  const model = outputsOf('m', 'm.jsonl');
  const before = files(base);
  const r = await farm(['evaluate', '--model-outputs', model, '--reference-outputs', reference, '--annotator', 'longest', '--name', '../../../x',
    '--output-dir', out, '--no-length-control', '--json']);
  assert.is(r.code, 0, r.err);
  const added = files(base).filter((f) => !before.includes(f));
  assert.ok(added.length >= 2, added.join(', '));
  for (const f of added) assert.ok(f.startsWith('a/b/c/out/'), `${f} was written outside --output-dir`);
  assert.ok(existsSync(join(out, 'x', 'longest', 'metrics.json')), files(out).join(', '));
});

test('leaderboard build with a generator "../../../x" writes inside --output-dir', async () => {
  const evil = outputsOf('../../../x', 'evil.jsonl');
  const before = files(base);
  const r = await farm(['leaderboard', 'build', join(work, 'board.csv'), evil, '--reference-outputs', reference, '--annotator', 'longest',
    '--output-dir', join(work, 'out2'), '--no-length-control', '--json']);
  assert.is(r.code, 0, r.err);
  const added = files(base).filter((f) => !before.includes(f));
  for (const f of added) assert.ok(f.startsWith('a/b/c/'), `${f} was written outside the work folder`);
  assert.ok(added.some((f) => f.startsWith('a/b/c/out2/x/longest/')), added.join(', '));
  assert.equal(JSON.parse(r.out).rows.map((x: { name: string }) => x.name), ['x']);
});

test('generate then evaluate: the run is named after the model, not its path', async () => {
  const modelDir = join(work, 'runs', 'sft', 'model');
  mkdirSync(modelDir, { recursive: true });
  const text = 'say the number one two three four five six seven eight nine ten eleven. '.repeat(30);
  writeFileSync(join(modelDir, 'tokenizer.json'), JSON.stringify(trainBpeJson(text, { vocabSize: 300 })));
  await saveModel(tinyModel({ vocab_size: 300, max_position_embeddings: 256 }, 7), modelDir);
  const prompts = writeJsonl(join(work, 'prompts.jsonl'), Array.from({ length: 12 }, (_, i) => ({ instruction: `Say ${i}`, input: '' })));
  const generated = join(work, 'generated.json');
  let r = await farm(['generate', '--model', modelDir, '--input', prompts, '--out', generated, '--max-new-tokens', '4', '--temperature', '0']);
  assert.is(r.code, 0, r.err);
  r = await farm(['evaluate', '--model-outputs', generated, '--reference-outputs', reference, '--annotator', 'longest', '--output-dir', join(work, 'out3'), '--no-length-control', '--json']);
  assert.is(r.code, 0, r.err);
  assert.is(JSON.parse(r.out).name, 'sft');
  assert.ok(existsSync(join(work, 'out3', 'sft', 'longest', 'annotations.json')), files(join(work, 'out3')).join(', '));
});

test.run();
