// The world's API contract: determinism, parsing from text, unknown instructions, responders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWorld, FAMILIES, GOLD_WEIGHTS, Rng } from '../../ts/world/index.ts';

const world = createWorld({ seed: 1 });

test('at least 10 families, each with several phrasings, some with an input field', () => {
  assert.ok(FAMILIES.length >= 10);
  let withInput = 0;
  for (const f of FAMILIES) {
    assert.ok(f.templates.length >= 3, `${f.name} has ${f.templates.length} phrasings`);
    if (f.templates.some((t) => t.input)) withInput++;
  }
  assert.ok(withInput >= 6);
});

test('same seed, same world; another seed, another knowledge base', () => {
  const a = createWorld({ seed: 7 });
  const b = createWorld({ seed: 7 });
  const c = createWorld({ seed: 8 });
  assert.equal(a.kb.people, b.kb.people);
  assert.not.equal(a.kb.people, c.kb.people);
  const ra = new Rng(1), rb = new Rng(1);
  for (let i = 0; i < 50; i++) {
    const ta = a.sampleTask(ra), tb = b.sampleTask(rb);
    assert.equal(ta, tb);
    assert.is(a.demonstrator(3).respondTask(ta, i), b.demonstrator(3).respondTask(tb, i));
    assert.equal(a.grade(ta.instruction, ta.input, 'x'), b.grade(tb.instruction, tb.input, 'x'));
  }
});

test('grade works from text alone, with normalized whitespace; unknown instructions throw a clear Error', () => {
  const s = world.grade('  What is 2   plus 2? ', '', '4');
  assert.is(s.task, 'arithmetic');
  assert.is(s.features.correctness, 1);
  assert.throws(() => world.grade('Explain quantum gravity.', '', 'No.'), /not a task of this world/);
  assert.throws(() => world.grade('Where does Zebedee live?', '', 'Paris.'), /not a task of this world/);
  assert.is(world.tryGrade('Explain quantum gravity.', '', 'No.'), null);
  assert.throws(() => world.grade('Add these numbers.', '', '4'), /not a task/, 'an input-taking template without input');
  assert.throws(() => createWorld({ seed: 1.5 }), /seed must be an integer/);
});

test('gold total is the documented weighted mean of the features', () => {
  const s = world.grade('Make this request more polite.', 'Give me the hammer.', 'Give me the hammer now.');
  const w: Record<string, number> = { ...GOLD_WEIGHTS };
  let num = 0, den = 0;
  for (const [k, v] of Object.entries(s.features)) { num += w[k] * v; den += w[k]; }
  assert.ok(Math.abs(s.total - num / den) < 1e-12);
  assert.ok(!('politeness' in world.grade('What is 2 plus 2?', '', '4').features), 'politeness only where asked');
});

test('responders: deterministic, varied, quality orders gold; the reference sits below the demonstrator', () => {
  const rng = new Rng(11);
  const tasks = Array.from({ length: 600 }, () => world.sampleTask(rng));
  const mean = (q: number) => tasks.reduce((a, t, i) => a + world.gradeTask(t, world.responder({ quality: q, seed: 2 }).respondTask(t, i)).total, 0) / tasks.length;
  const [low, mid, high] = [mean(0.2), mean(0.6), mean(1)];
  assert.ok(low < mid && mid < high, `${low} ${mid} ${high}`);
  const demo = world.demonstrator(0), ref = world.referencePolicy(0);
  const d = tasks.reduce((a, t) => a + world.gradeTask(t, demo.respondTask(t)).total, 0) / tasks.length;
  const r = tasks.reduce((a, t) => a + world.gradeTask(t, ref.respondTask(t)).total, 0) / tasks.length;
  // the reference is calibrated against trained farm models (docs/world.md), not against the demonstrator
  assert.ok(r < d && r > 0.5, `reference ${r} below the demonstrator ${d}, well above chance`);
  assert.ok(d > 0.75 && d < 0.95, `demonstrator is decent but imperfect: ${d}`);
  const t = tasks[0];
  assert.is(demo.respond(t.instruction, t.input, 5), demo.respond(t.instruction, t.input, 5));
  const variants = new Set(tasks.slice(0, 50).flatMap((x) => [0, 1, 2, 3].map((i) => demo.respondTask(x, i))));
  assert.ok(variants.size > 100, `varied phrasings: ${variants.size}`);
  assert.match(demo.respond('Explain quantum gravity.', ''), /not sure|do not know/);
});

test('responders make the mistakes they are asked to make', () => {
  const rng = new Rng(5);
  const bad = world.responder({ quality: 0, seed: 1 });
  const texts = Array.from({ length: 300 }, (_, i) => { const t = world.sampleTask(rng); return { t, o: bad.respondTask(t, i) }; });
  const scores = texts.map(({ t, o }) => world.gradeTask(t, o));
  assert.ok(scores.filter((s) => s.features.correctness < 1).length > 100, 'wrong items and off-by-ones');
  assert.ok(scores.filter((s) => s.features.fluency < 0.9).length > 30, 'repetition');
  assert.ok(scores.filter((s) => s.features.verbosity < 0.9).length > 30, 'rambling');
});

test('prompts plus good responses stay short (about 100 tokens)', () => {
  const rng = new Rng(9);
  const ref = world.referencePolicy(0);
  let max = 0, sum = 0;
  for (let i = 0; i < 500; i++) {
    const t = world.sampleTask(rng);
    const n = `${t.instruction} ${t.input} ${ref.respondTask(t)}`.split(/\s+|(?=[.,!?])/).length;
    max = Math.max(max, n);
    sum += n;
  }
  assert.ok(sum / 500 < 40, `mean ${sum / 500} words+punctuation`);
  assert.ok(max < 80, `max ${max}`);
});

test.run();
