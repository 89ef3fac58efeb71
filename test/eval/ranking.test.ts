import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareRankings, kendallTau, pearson, rankValues, spearman } from '../../ts/eval/index.ts';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('ranks: ties share the average rank (scipy rankdata)', () => {
  assert.equal(rankValues([10, 30, 20, 20]), [1, 4, 2.5, 2.5]);
  assert.throws(() => rankValues([1, NaN]), /not finite/);
});

test('spearman: perfect, reversed, and a value checked against scipy', () => {
  close(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  close(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // scipy.stats.spearmanr([1,2,3,4,5],[5,6,7,8,7]) = 0.8207826816681233
  close(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 0.8207826816681233);
  // no ties: 1 - 6 sum d^2 / (n (n^2 - 1)); d = (0,-2,1,1,0) -> 1 - 36/120 = 0.7
  close(spearman([1, 2, 3, 4, 5], [1, 4, 2, 3, 5]), 0.7);
  assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
  assert.throws(() => spearman([1], [1]), /at least two/);
  assert.throws(() => spearman([1, 2], [1]), /2 vs 1/);
});

test('kendall tau-b matches scipy with ties', () => {
  // scipy.stats.kendalltau([1,2,3,4,5],[5,6,7,8,7]).statistic = 0.7378647873726218
  close(kendallTau([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 0.7378647873726218);
  close(kendallTau([1, 2, 3], [3, 2, 1]), -1);
});

test('compareRankings: only shared models are compared, the rest listed', () => {
  const sim = { ppo: 55, bon: 50, sft: 40, dpo: 52, extra: 1 };
  const human = { ppo: 60, bon: 50, sft: 44, dpo: 49, other: 3 };
  const c = compareRankings(sim, human);
  assert.equal(c.items, ['bon', 'dpo', 'ppo', 'sft']);
  assert.equal(c.only_in_a, ['extra']);
  assert.equal(c.only_in_b, ['other']);
  close(c.spearman, 0.8);
  close(c.pairwise_agreement, 5 / 6);
  assert.throws(() => compareRankings({ a: 1 }, { a: 2, b: 1 }), /1 shared items/);
});

test.run();
