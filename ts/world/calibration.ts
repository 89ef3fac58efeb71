// Measures the human panel on pairs of realistic, mixed-quality responses: leave-one-out agreement of a
// rater with the majority of the others, and how often the panel prefers the longer response.
import type { World } from './index.ts';
import type { PanelOptions, PanelPair } from './panel.ts';
import { Rng } from './rng.ts';
import { rawTokens } from './text.ts';

export interface MixedPairOptions {
  seed?: number;
  /** quality of the policy that writes a pair is drawn uniformly from this range */
  quality?: [number, number];
  /** verbosity of each response is drawn uniformly from this range */
  verbosity?: [number, number];
}

export interface MixedPair extends PanelPair {
  family: string;
}

/**
 * Pairs like those AlpacaFarm sampled from its SFT model: both outputs come from the same policy (whose
 * quality varies from pair to pair) and differ by sampling. Identical outputs are skipped.
 */
export function sampleMixedPairs(world: World, n: number, opts: MixedPairOptions = {}): MixedPair[] {
  const [qlo, qhi] = opts.quality ?? [0.35, 0.95];
  const [vlo, vhi] = opts.verbosity ?? [0, 0.8];
  const rng = Rng.from(world.seed, 'mixed-pairs', opts.seed ?? 0);
  const out: MixedPair[] = [];
  for (let guard = 0; out.length < n && guard < n * 20; guard++) {
    const task = world.sampleTask(rng);
    const quality = qlo + (qhi - qlo) * rng.next();
    const a = world.responder({ seed: rng.int(1 << 30), quality, verbosity: vlo + (vhi - vlo) * rng.next() }).respondTask(task);
    const b = world.responder({ seed: rng.int(1 << 30), quality, verbosity: vlo + (vhi - vlo) * rng.next() }).respondTask(task);
    if (a === b) continue;
    out.push({ instruction: task.instruction, input: task.input, output_1: a, output_2: b, family: task.family });
  }
  return out;
}

export interface CalibrationReport {
  pairs: number;
  /** leave-one-out: rater vs the majority of the other `looRaters - 1` raters on the same pair */
  looAgreement: number;
  looRaters: number;
  /** P(panel majority prefers the longer output), pairs of unequal length in words */
  pLongerMajority: number;
  /** the same for single raters */
  pLongerRater: number;
  /** P(single rater prefers output_1) */
  pFirstRater: number;
  /** agreement of the panel majority with the gold total (pairs with unequal gold totals) */
  majorityGoldAgreement: number;
  /** agreement of a single rater with the gold total */
  raterGoldAgreement: number;
  /** P(gold prefers the longer output) */
  pLongerGold: number;
  panel: Required<PanelOptions>;
}

export function measureCalibration(world: World, pairs: readonly PanelPair[], panelOptions: PanelOptions = {}, looRaters = 4): CalibrationReport {
  const panel = world.createPanel(panelOptions);
  let looAgree = 0, looN = 0;
  let longM = 0, longMN = 0, longR = 0, longRN = 0, first = 0, firstN = 0;
  let goldM = 0, goldMN = 0, goldR = 0, goldRN = 0, longG = 0, longGN = 0;
  for (const pair of pairs) {
    if (pair.output_1 === pair.output_2) continue;
    const raters = panel.ratersFor(pair, looRaters);
    const votes = raters.map((r) => panel.rate(pair, r));
    for (let i = 0; i < votes.length; i++) {
      let one = 0, two = 0;
      for (let j = 0; j < votes.length; j++) if (j !== i) { if (votes[j] === 1) one++; else if (votes[j] === 2) two++; }
      if (one === two) continue;
      looN++;
      if (votes[i] === (one > two ? 1 : 2)) looAgree++;
    }
    for (const v of votes) { firstN++; if (v === 1) first++; }
    const maj = panel.majority(pair);
    const l1 = rawTokens(pair.output_1).length, l2 = rawTokens(pair.output_2).length;
    const g1 = world.grade(pair.instruction, pair.input, pair.output_1).total;
    const g2 = world.grade(pair.instruction, pair.input, pair.output_2).total;
    if (l1 !== l2) {
      const longer = l1 > l2 ? 1 : 2;
      if (maj !== 0) { longMN++; if (maj === longer) longM++; }
      for (const v of votes) { longRN++; if (v === longer) longR++; }
      if (Math.abs(g1 - g2) > 1e-9) { longGN++; if ((g1 > g2 ? 1 : 2) === longer) longG++; }
    }
    if (Math.abs(g1 - g2) > 1e-9) {
      const better = g1 > g2 ? 1 : 2;
      if (maj !== 0) { goldMN++; if (maj === better) goldM++; }
      for (const v of votes) { goldRN++; if (v === better) goldR++; }
    }
  }
  const r = (a: number, b: number) => (b ? a / b : NaN);
  return {
    pairs: pairs.length,
    looAgreement: r(looAgree, looN),
    looRaters,
    pLongerMajority: r(longM, longMN),
    pLongerRater: r(longR, longRN),
    pFirstRater: r(first, firstN),
    majorityGoldAgreement: r(goldM, goldMN),
    raterGoldAgreement: r(goldR, goldRN),
    pLongerGold: r(longG, longGN),
    panel: panel.options,
  };
}
