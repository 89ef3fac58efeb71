// The annotation cache: content keys, append-only persistence, crash safety (a torn last line), no nulls.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnnotationCache, pairKey } from '../../ts/feedback/cache.ts';
import type { Pair } from '../../ts/feedback/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'farm-cache-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const pair = (i: number): Pair => ({ instruction: `Say ${i}`, input: i % 2 ? 'x' : '', output_1: `one ${i}`, output_2: `two ${i}` });

test('keys depend on every field and the annotator, and on field boundaries', () => {
  const p = pair(1);
  const k = pairKey(p, 'judge');
  assert.is(k, pairKey({ ...p }, 'judge'));
  assert.is.not(k, pairKey(p, 'judge2'));
  for (const f of ['instruction', 'input', 'output_1', 'output_2'] as const) assert.is.not(k, pairKey({ ...p, [f]: p[f] + '!' }, 'judge'));
  assert.is.not(pairKey({ instruction: 'ab', input: 'c', output_1: 'x', output_2: 'y' }, 'j'), pairKey({ instruction: 'a', input: 'bc', output_1: 'x', output_2: 'y' }, 'j'));
  assert.is.not(pairKey(p, 'j'), pairKey({ ...p, output_1: p.output_2, output_2: p.output_1 }, 'j'));
});

test('put, flush, reopen: labels survive; null and duplicate puts are ignored', () => {
  const path = join(dir, 'a', 'cache.jsonl');
  const c = AnnotationCache.open(path);
  c.put(pair(1), 'j', { preference: 1, price_per_example: 0.01, time_per_example: 0.5 });
  c.put(pair(2), 'j', { preference: 2 });
  c.put(pair(3), 'j', { preference: null as unknown as number });
  c.put(pair(4), 'j', { preference: 1.75 });
  c.put(pair(1), 'j', { preference: 2 }); // first label wins
  c.close();
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  assert.is(lines.length, 3);
  const d = AnnotationCache.open(path);
  assert.equal(d.get(pair(1), 'j'), { preference: 1, price_per_example: 0.01, time_per_example: 0.5 });
  assert.equal(d.get(pair(2), 'j'), { preference: 2 });
  assert.is(d.get(pair(3), 'j'), undefined);
  assert.is(d.get(pair(4), 'j')?.preference, 1.75);
  assert.is(d.get(pair(1), 'other'), undefined);
  const s = d.stats();
  assert.is(s.loaded, 3);
  assert.is(s.hits, 3);
  assert.is(s.misses, 2);
  assert.is(s.badLines, 0);
  assert.is(s.tornTail, false);
});

test('a torn last line (crash mid-write) is ignored and the next append starts a clean line', () => {
  const path = join(dir, 'torn.jsonl');
  const c = AnnotationCache.open(path);
  for (let i = 0; i < 10; i++) c.put(pair(i), 'j', { preference: 1 + (i % 2) });
  c.close();
  const size = statSync(path).size;
  truncateSync(path, size - 17); // cut the last record in the middle
  const d = AnnotationCache.open(path);
  assert.is(d.size, 9);
  assert.ok(d.stats().tornTail);
  assert.is(d.get(pair(9), 'j'), undefined, 'the torn record is not trusted');
  d.put(pair(9), 'j', { preference: 2 });
  d.put(pair(10), 'j', { preference: 1 });
  d.close();
  const e = AnnotationCache.open(path);
  assert.is(e.size, 11);
  assert.is(e.get(pair(9), 'j')?.preference, 2);
  assert.is(e.get(pair(10), 'j')?.preference, 1);
  assert.is(e.stats().badLines, 1, 'only the old fragment is skipped');
  assert.is(e.stats().tornTail, false);
  for (let i = 0; i < 9; i++) assert.is(e.get(pair(i), 'j')?.preference, 1 + (i % 2));
});

test('damaged lines in the middle are skipped, and a file without a final newline written elsewhere is fenced', () => {
  const path = join(dir, 'damaged.jsonl');
  const c = AnnotationCache.open(path);
  c.put(pair(1), 'j', { preference: 1 });
  c.close();
  appendFileSync(path, 'garbage{{\n{"key":"k","preference":"x"}\n');
  const d = AnnotationCache.open(path);
  assert.is(d.size, 1);
  assert.is(d.stats().badLines, 2);
  // Someone else appends a record without a newline while we have the cache open.
  appendFileSync(path, '{"key":"zzz","annotator":"j","preference":1}');
  d.put(pair(2), 'j', { preference: 2 });
  d.close();
  const e = AnnotationCache.open(path);
  assert.is(e.get(pair(2), 'j')?.preference, 2);
  assert.is(e.getByKey('zzz')?.preference, 1);
});

test('an empty or missing file is an empty cache; writes create the folder', () => {
  const path = join(dir, 'deep', 'er', 'c.jsonl');
  const c = AnnotationCache.open(path);
  assert.is(c.size, 0);
  c.close(); // nothing pending: no file
  writeFileSync(join(dir, 'empty.jsonl'), '');
  assert.is(AnnotationCache.open(join(dir, 'empty.jsonl')).size, 0);
  c.put(pair(1), 'j', { preference: 1 });
  c.flush();
  assert.ok(statSync(path).size > 0);
  c.close();
});

test.run();
