// The human panel: determinism, draws, and calibration figures in their target bands.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWorld, GOLD_WEIGHTS } from '../../ts/world/index.ts';
import { measureCalibration, sampleMixedPairs } from '../../ts/world/calibration.ts';

const world = createWorld({ seed: 1 });
const pair = { instruction: 'What is 17 plus 25?', input: '', output_1: '17 plus 25 is 42.', output_2: 'The answer is 41.' };

test('rate and majority are deterministic; identical outputs are a draw', () => {
  const p1 = world.createPanel({ seed: 3 });
  const p2 = createWorld({ seed: 1 }).createPanel({ seed: 3 });
  for (let r = 0; r < p1.raters.length; r++) assert.is(p1.rate(pair, r), p2.rate(pair, r));
  assert.is(p1.majority(pair), p2.majority(pair));
  assert.equal(p1.ratersFor(pair), p2.ratersFor(pair));
  assert.is(new Set(p1.ratersFor(pair)).size, p1.options.size);
  assert.is(p1.majority({ ...pair, output_2: pair.output_1 }), 0);
  assert.is(p1.rate({ ...pair, output_2: pair.output_1 }, 0), 0);
  assert.is(world.panel.majority(pair), 1, 'a clear error is caught by the majority');
});

test('raters differ from each other around a shared mean', () => {
  const p = world.createPanel();
  const w = p.raters.map((r) => r.weights.correctness);
  assert.ok(Math.max(...w) > 1.3 * Math.min(...w));
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  assert.ok(Math.abs(mean - GOLD_WEIGHTS.correctness) < 1e-9, `pool mean pinned to the gold weight: ${mean}`);
});

test('bad options give clear errors', () => {
  assert.throws(() => world.createPanel({ size: 0 }), /size/);
  assert.throws(() => world.createPanel({ raters: 3, size: 5 }), /size/);
  assert.throws(() => world.panel.rate(pair, 99), /out of range/);
});

test('calibration: leave-one-out agreement 63-68%, panel prefers longer 60-65%', () => {
  const pairs = sampleMixedPairs(world, 2000);
  assert.is(pairs.length, 2000);
  const r = measureCalibration(world, pairs);
  console.log(`\nNOTE panel calibration on 2000 pairs: loo ${r.looAgreement.toFixed(3)}, P(longer) majority ${r.pLongerMajority.toFixed(3)}, rater ${r.pLongerRater.toFixed(3)}, majority-gold ${r.majorityGoldAgreement.toFixed(3)}`);
  assert.ok(r.looAgreement >= 0.63 && r.looAgreement <= 0.68, `loo ${r.looAgreement}`);
  assert.ok(r.pLongerMajority >= 0.6 && r.pLongerMajority <= 0.65, `P(longer) ${r.pLongerMajority}`);
  assert.ok(r.majorityGoldAgreement > r.raterGoldAgreement, 'a majority is closer to gold than one rater');
  assert.ok(r.pFirstRater > 0.45 && r.pFirstRater < 0.56);
});

test.run();
