// The farm pool: stable routing and noise across processes, flip rate, position swap, clean caches, agreement
// with the human panel, and the annotator registry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorld } from '../../ts/world/index.ts';
import {
  AnnotationCache, AnnotatorPool, createAnnotator, createFarmJudge, createFarmPool, farmPairs, FARM_JUDGES, HttpJudge, isSwapped,
  measurePoolAgainstPanel, registerScorerLoader, routeIndex, type Annotation, type Pair, type PairScorer,
} from '../../ts/feedback/index.ts';
import { startFakeServer } from './fake-judge-server.ts';

const world = createWorld({ seed: 3 });
const pairs = farmPairs(world, { n: 10_000, seed: 11 });
const dir = mkdtempSync(join(tmpdir(), 'farm-pool-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const digest = (as: Annotation[]) => as.map((a) => `${a.annotator}:${a.preference}:${a.label_noise ? 'n' : ''}`).join(',');

test('farm pairs are distinct, realistic and of mixed quality', () => {
  assert.is(pairs.length, 10_000);
  assert.is(new Set(pairs.map((p) => JSON.stringify(p))).size, pairs.length);
  assert.ok(pairs.every((p) => p.output_1 !== p.output_2));
  const g = pairs.slice(0, 500).map((p) => world.grade(p.instruction, p.input, p.output_1).total - world.grade(p.instruction, p.input, p.output_2).total);
  assert.ok(g.filter((d) => Math.abs(d) > 0.05).length > 150, 'many pairs differ in quality');
});

test('routing is uniform over the judges and depends on (instruction, input, seed) only', () => {
  const counts = new Array(FARM_JUDGES.length).fill(0);
  for (const p of pairs) counts[routeIndex(p, 0, FARM_JUDGES.length)] += 1;
  const expected = pairs.length / FARM_JUDGES.length;
  for (const c of counts) assert.ok(Math.abs(c - expected) < 5 * Math.sqrt(expected), `counts ${counts}`);
  const p = pairs[0];
  assert.is(routeIndex(p, 0, 12), routeIndex({ ...p, output_1: 'other', output_2: 'thing' }, 0, 12));
  let moved = 0;
  for (const q of pairs.slice(0, 200)) if (routeIndex(q, 0, 12) !== routeIndex(q, 1, 12)) moved += 1;
  assert.ok(moved > 150, 'another seed routes differently');
});

test('routing, swaps, judgments and noise are identical in two other processes', async () => {
  const sample = pairs.slice(0, 3000);
  const here = digest(await createFarmPool(world, { seed: 5, flipP: 0.25 }).annotate(sample));
  const script = `
    import { createWorld } from './ts/world/index.ts';
    import { createFarmPool, farmPairs } from './ts/feedback/index.ts';
    const world = createWorld({ seed: 3 });
    const pairs = farmPairs(world, { n: 10000, seed: 11 }).slice(0, 3000);
    const out = await createFarmPool(world, { seed: 5, flipP: 0.25 }).annotate(pairs.reverse());
    process.stdout.write(out.reverse().map((a) => a.annotator + ':' + a.preference + ':' + (a.label_noise ? 'n' : '')).join(','));
  `;
  const file = join(dir, 'child.mts');
  (await import('node:fs')).writeFileSync(file, script.replaceAll('./ts/', `${process.cwd()}/ts/`));
  for (let k = 0; k < 2; k++) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', cwd: process.cwd() });
    assert.is(r.status, 0, r.stderr);
    assert.ok(r.stdout === here, `process ${k} differs`);
  }
  // A different seed gives different labels.
  assert.is.not(digest(await createFarmPool(world, { seed: 6, flipP: 0.25 }).annotate(sample)), here);
});

test('flip noise: 25% +- 2% of labels are redrawn on 10,000 pairs, half of those change', async () => {
  const clean = await createFarmPool(world, { seed: 2 }).annotate(pairs);
  const noisy = await createFarmPool(world, { seed: 2, flipP: 0.25 }).annotate(pairs);
  const redrawn = noisy.filter((a) => a.label_noise).length / pairs.length;
  const changed = noisy.filter((a, i) => a.preference !== clean[i].preference).length / pairs.length;
  assert.ok(Math.abs(redrawn - 0.25) <= 0.02, `redrawn ${redrawn}`);
  assert.ok(Math.abs(changed - 0.125) <= 0.015, `changed ${changed}`);
  assert.ok(noisy.every((a, i) => a.label_noise || a.preference === clean[i].preference), 'only noised labels differ');
  const ones = noisy.filter((a) => a.label_noise && a.preference === 1).length / noisy.filter((a) => a.label_noise).length;
  assert.ok(Math.abs(ones - 0.5) < 0.03, 'the draw is fair');
  assert.ok(clean.every((a) => !a.label_noise));
  // Identical outputs stay draws.
  const same = { ...pairs[0], output_2: pairs[0].output_1 };
  const r = await createFarmPool(world, { seed: 2, flipP: 1 }).annotate([same]);
  assert.is(r[0].preference, 0);
});

test('the position swap cancels a judge\'s position bias on average', async () => {
  const first = FARM_JUDGES.find((j) => j.name === 'davinci-first')!;
  const rate = (as: Annotation[]) => as.filter((a) => a.preference === 1).length / as.length;
  const unswapped = rate(await createFarmJudge(world, first.name, 0, false).annotate(pairs));
  const swapped = rate(await createFarmJudge(world, first.name, 0, true).annotate(pairs));
  assert.ok(unswapped > 0.56, `biased judge prefers the first output ${unswapped}`);
  assert.ok(Math.abs(swapped - 0.5) < 0.02, `after swap ${swapped}`);
  const share = pairs.filter((p) => isSwapped(p, 0)).length / pairs.length;
  assert.ok(Math.abs(share - 0.5) < 0.02);
  const pool = await createFarmPool(world, { seed: 0 }).annotate(pairs);
  assert.ok(Math.abs(rate(pool) - 0.5) < 0.02);
  assert.ok(pool.some((a) => a.swapped) && pool.some((a) => !a.swapped));
});

test('flipped labels never reach the cache (pool:train over a cached HTTP judge)', async () => {
  const server = await startFakeServer();
  try {
    const path = join(dir, 'noisy-cache.jsonl');
    const cache = AnnotationCache.open(path);
    const ps: Pair[] = Array.from({ length: 60 }, (_, i) => ({ instruction: `q${i}`, input: '', output_1: i % 2 ? `x${i}` : `GOOD ${i}`, output_2: i % 2 ? `GOOD ${i}` : `x${i}` }));
    const judge = new HttpJudge({ model: 'j', baseUrl: server.url, apiKey: 'k', cache, backoffBaseMs: 1 });
    const out = await new AnnotatorPool([judge], { seed: 1, flipP: 0.5 }).annotate(ps);
    cache.close();
    assert.ok(out.filter((a) => a.label_noise && a.preference !== (a.output_1.includes('GOOD') ? 1 : 2)).length > 5, 'some labels were flipped');
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.is(lines.length, 60);
    // Every cached label is the judge's clean answer for the pair as it was shown to the judge.
    const reopened = AnnotationCache.open(path);
    for (const [i, p] of ps.entries()) {
      const shown = isSwapped(p, 1) ? { ...p, output_1: p.output_2, output_2: p.output_1 } : p;
      const hit = reopened.get(shown, judge.cacheId);
      assert.ok(hit, `pair ${i} cached`);
      assert.is(hit!.preference, shown.output_1.includes('GOOD') ? 1 : 2);
    }
  } finally {
    await server.close();
  }
});

test('the pool agrees with the panel majority within 5 points of the panel\'s own agreement', async () => {
  const sample = farmPairs(world, { n: 2500, seed: 21 });
  const m = await measurePoolAgainstPanel(world, sample, { runs: 2 });
  console.log(`\nNOTE pool vs panel on ${m.pairs} pairs: panel rater-vs-others ${m.panelAgreement.toFixed(1)}%, pool (same footing) ${m.poolAgreement.toFixed(1)}%, pool vs full majority ${m.poolAgreementFull.toFixed(1)}%`);
  assert.ok(Math.abs(m.poolAgreement - m.panelAgreement) <= 5, `pool ${m.poolAgreement} vs panel ${m.panelAgreement}`);
  assert.ok(m.panelAgreement > 58 && m.panelAgreement < 78, 'the panel is in a human-like range');
  // The judges differ the way the pool is meant to: careful judges above surface judges.
  const byName = new Map(m.members.map((r) => [r.annotator, r]));
  assert.ok(byName.get('gpt4-careful')!.human_agreement > byName.get('davinci-lengthy')!.human_agreement + 3);
  assert.ok(byName.get('davinci-lengthy')!.p_prefer_longer! > byName.get('chatgpt-concise')!.p_prefer_longer! + 0.2);
  assert.ok(m.pool.variance! > 10, 'the pool is noisy across seeds, as sampled LLM judges are');
});

test('the registry builds every named annotator and explains unknown ones', async () => {
  const few = pairs.slice(0, 20);
  for (const spec of ['pool', 'pool:eval', 'pool:train', 'panel', 'human', ...FARM_JUDGES.map((j) => j.name), 'longest', 'shortest', 'first', 'second', 'random']) {
    const a = await createAnnotator(spec, { world });
    const out = await a.annotate(few);
    assert.is(out.length, few.length, spec);
    assert.ok(out.every((x) => x.preference === 1 || x.preference === 2 || x.preference === 0), spec);
    assert.is(typeof a.stats().pairs, 'number');
  }
  const train = await createAnnotator('pool:train', { world });
  assert.is((train as AnnotatorPool).flipP, 0.25);
  assert.is(((await createAnnotator('pool', { world })) as AnnotatorPool).flipP, 0);
  await createAnnotator('gpt-5-judge', { world }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /unknown annotator "gpt-5-judge"; known: pool, pool:eval, pool:train, panel/),
  );
  await createAnnotator('openai:', {}).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /needs a model name/));
  await createAnnotator('model:runs/rm', {}).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /reward-model judges need the engine's reward scoring/));
  const panel = await createAnnotator('panel', { world });
  const p = await panel.annotate(few.slice(0, 3));
  assert.is(p[0].price_per_example, 0.3);
});

test('model-based judges plug in through a scorer, alone or as a pool member', async () => {
  // A scorer that prefers the output with the higher gold score: a perfect reward model.
  const scorer: PairScorer = { score: async (ps) => ps.map((q) => [world.grade(q.instruction, q.input, q.output_1).total, world.grade(q.instruction, q.input, q.output_2).total]) };
  registerScorerLoader(async (d) => {
    assert.is(d, 'runs/rm');
    return scorer;
  });
  try {
    const rm = await createAnnotator('model:runs/rm', { world });
    const few = pairs.slice(0, 300);
    const out = await rm.annotate(few);
    let right = 0;
    let decided = 0;
    for (const [i, q] of few.entries()) {
      const d = world.grade(q.instruction, q.input, q.output_1).total - world.grade(q.instruction, q.input, q.output_2).total;
      if (d === 0) continue;
      decided += 1;
      if (out[i].preference === (d > 0 ? 1 : 2)) right += 1;
    }
    assert.is(right, decided);
    const pool = createFarmPool(world, { scorer });
    assert.is(pool.members.length, FARM_JUDGES.length + 1);
    const labels = await pool.annotate(pairs.slice(0, 2000));
    assert.ok(labels.some((a) => a.annotator === 'reward-model'));
  } finally {
    registerScorerLoader(null);
  }
});

test.run();
