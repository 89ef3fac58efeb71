// Judge analysis on synthetic data whose answers are known by construction.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { agreementScore, analyzeJudge, containsList, groupReferences, medians, type ReferencePair } from '../../ts/feedback/analysis.ts';
import { BaselineJudge } from '../../ts/feedback/baselines.ts';
import type { Annotation, Pair } from '../../ts/feedback/types.ts';

const close = (a: number | null, b: number, eps = 1e-9) => assert.ok(a !== null && Math.abs(a - b) <= eps, `${a} != ${b}`);

function makePairs(n: number): Pair[] {
  return Array.from({ length: n }, (_, i) => ({ instruction: `q${i}`, input: '', output_1: `a${i}`, output_2: `b${i}` }));
}
const ann = (p: Pair, preference: number | null, extra: Partial<Annotation> = {}): Annotation => ({ ...p, preference, annotator: 'j', ...extra });

test('medians and the absolute score', () => {
  assert.equal(medians([0, 1, 1]), [1]);
  assert.equal(medians([0, 1, 1, 0]), [0, 1]);
  assert.is(agreementScore([1], [0, 1]), 0.5);
  assert.is(agreementScore([0.5], [1]), 0.5);
  assert.is(agreementScore([1], [1]), 1);
});

test('the rater-vs-others example of alpaca_eval (4 raters, two pairs) gives 0.875', () => {
  const ps = makePairs(2);
  const refs: ReferencePair[] = [{ ...ps[0], preferences: [1, 1, 1, 1] }, { ...ps[1], preferences: [2, 2, 2, 1] }];
  const perRater = [0, 1, 2, 3].map((i) => refs.map((r) => ann(r, r.preferences[i])));
  const m = analyzeJudge(perRater, refs, { isReference: true });
  close(m.human_agreement, 87.5);
  close(m.variance, 12.5);
  close(m.reference_agreement, 87.5);
  assert.is(m.bias, 0);
});

test('a judge equal to the majority agrees 100%, the reversed one 0%, with exact leave-one-out figures', () => {
  const ps = makePairs(3);
  // 3 raters: majorities 1, 2, 1 (unanimous, 2-1, unanimous).
  const refs: ReferencePair[] = [{ ...ps[0], preferences: [1, 1, 1] }, { ...ps[1], preferences: [2, 2, 1] }, { ...ps[2], preferences: [1, 1, 1] }];
  const good = analyzeJudge([ps.map((p, i) => ann(p, [1, 2, 1][i]))], refs);
  close(good.human_agreement, 100);
  // Leave-one-out on pair 2: subsets {2,2}->2 (1), {2,1}->tie (0.5), {2,1}->tie (0.5): 2/3.
  close(good.agreement_loo, (100 * (1 + 2 / 3 + 1)) / 3);
  // The raters themselves: pair 1 and 3 all agree; pair 2: 2 vs {2,1} = .5, 2 vs {2,1} = .5, 1 vs {2,2} = 0.
  close(good.reference_agreement, (100 * (1 + 1 / 3 + 1)) / 3);
  const bad = analyzeJudge([ps.map((p, i) => ann(p, [2, 1, 2][i]))], refs);
  close(bad.human_agreement, 0);
  assert.is(good.variance, null, 'one run: no variance');
  assert.is(good.bias, null);
});

test('failures are dropped, draws count half, soft labels score by distance', () => {
  const ps = makePairs(4);
  const refs: ReferencePair[] = ps.map((p) => ({ ...p, preferences: [2, 2, 2] }));
  const m = analyzeJudge([[ann(ps[0], 2), ann(ps[1], null), ann(ps[2], 0), ann(ps[3], 1.75)]], refs);
  close(m.human_agreement, (100 * (1 + 0.5 + 0.75)) / 3);
  assert.is(m.n_parsed, 3);
  assert.is(m.n_pairs, 4);
});

test('variance and bias across runs', () => {
  const ps = makePairs(400);
  const refs: ReferencePair[] = ps.map((p) => ({ ...p, preferences: [1, 1, 1] }));
  const same = analyzeJudge([0, 1, 2].map(() => ps.map((p) => ann(p, 1))), refs);
  close(same.variance, 0);
  close(same.bias, 0);
  // Three runs that always split 2-1 on every pair: each run disagrees with the others' majority... run k is
  // the odd one out on a third of the pairs.
  const runs = [0, 1, 2].map((k) => ps.map((p, i) => ann(p, i % 3 === k ? 2 : 1)));
  const split = analyzeJudge(runs, refs);
  // Per pair: the odd run vs {1,1} -> 0; each majority run vs {1,2} -> 0.5. Mean agreement (0 + .5 + .5)/3.
  close(split.variance, 100 * (1 - 1 / 3), 1e-6);
  close(split.bias, 0, 1e-9);
  close(split.human_agreement, (100 * 2) / 3, 1e-6);
});

test('P(prefer longer), P(prefer lists), P(prefer first), price and time per 1000', async () => {
  const ps: Pair[] = [];
  for (let i = 0; i < 100; i++) {
    const long = `item ${i} `.repeat(10);
    const list = `- a${i}\n- b${i}\n- c${i}`;
    if (i < 50) ps.push({ instruction: `q${i}`, input: '', output_1: i % 2 ? long : 'short', output_2: i % 2 ? 'short' : long });
    else ps.push({ instruction: `q${i}`, input: '', output_1: i % 2 ? list : `a${i}, b${i}, c${i}`, output_2: i % 2 ? `a${i}, b${i}, c${i}` : list });
  }
  const refs = ps.map((p) => ({ ...p, preferences: [1, 2, 1] as number[] }));
  const longest = await new BaselineJudge('longest').annotate(ps);
  const m = analyzeJudge([longest.map((a) => ({ ...a, price_per_example: 0.002, time_per_example: 0.25 }))], refs);
  close(m.p_prefer_longer, 1);
  close(m.price_per_1000, 2);
  close(m.seconds_per_1000, 250);
  const first = analyzeJudge([await new BaselineJudge('first').annotate(ps)], refs);
  close(first.p_prefer_first, 1);
  close(first.p_prefer_longer, 0.5);
  close(first.p_prefer_lists, 0.5);
  // A judge that picks the list whenever there is one.
  const listy = ps.map((p) => ann(p, containsList(p.output_1) ? 1 : containsList(p.output_2) ? 2 : 1));
  close(analyzeJudge([listy], refs).p_prefer_lists, 1);
  const second = analyzeJudge([await new BaselineJudge('second').annotate(ps)], refs);
  close(second.p_prefer_first, 0);
});

test('containsList and groupReferences', () => {
  assert.ok(containsList('Here:\n1. apple\n2. pear'));
  assert.ok(containsList('- apple\n- pear'));
  assert.ok(containsList('* one'));
  assert.not.ok(containsList('apple, pear and plum.'));
  assert.not.ok(containsList('It costs 3.5 dollars.'));
  const p = makePairs(2);
  const g = groupReferences([
    { ...p[0], preference: 1 },
    { ...p[1], preference: 2 },
    { ...p[0], preference: 2 },
    { ...p[1], preferences: [1, 1] },
  ]);
  assert.equal(g.map((r) => r.preferences), [[1, 2], [2, 1, 1]]);
});

test.run();
