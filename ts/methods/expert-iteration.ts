// Expert iteration (AlpacaFarm): best-of-n outputs of the policy on the unlabeled instructions, then supervised
// fine-tuning of the policy on those choices. AlpacaFarm runs one round (best-of-16, SFT from the SFT model);
// more rounds repeat the two steps with the improved policy.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine, Model } from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import { bestOfN, resolveBestOfNConfig, type BestOfNConfig, type BestOfNMetrics } from './best-of-n.ts';
import { resolveSftConfig, sft, type SftConfig, type SftStepLog, type TrainHooks } from './sft.ts';
import { Checkpointer, latestCheckpoint } from './checkpoint.ts';
import { ConfigError, resolveConfig, type MethodTokenizer, type RewardSource } from './common.ts';

export interface ExpertIterationConfig {
  /** Rounds of (best-of-n, SFT) (AlpacaFarm: 1). */
  rounds: number;
  /** Best-of-n settings (AlpacaFarm: n 16, temperature 1.0, top-p 0.9); see BestOfNConfig. */
  bestOfN: Partial<BestOfNConfig>;
  /** SFT settings for training on the choices (AlpacaFarm: its SFT recipe); see SftConfig. */
  sft: SftConfig;
  /** Keep only choices whose reward is at least this (−∞ = keep all, as AlpacaFarm). */
  minReward: number;
  /** Called after each round. */
  onRound?: (r: ExpertIterationRound) => void;
}

export const EXPERT_ITERATION_DEFAULTS: Readonly<ExpertIterationConfig> = Object.freeze({
  rounds: 1, bestOfN: {}, sft: {}, minReward: -Infinity,
});

export const EXPERT_ITERATION_HELP: Record<'rounds' | 'minReward' | 'bestOfN' | 'sft', string> = {
  rounds: '(best-of-n, SFT) rounds (AlpacaFarm 1)',
  minReward: 'drop choices whose reward is below this (default: keep all, as AlpacaFarm)',
  bestOfN: 'best-of-n settings, an object (n, temperature, topP, maxNewTokens, ...)',
  sft: 'SFT settings for the choices, an object (lr, epochs, batchSize, ...)',
};

export interface ExpertIterationRound {
  round: number;
  bestOfN: BestOfNMetrics;
  /** Choices kept for SFT (after minReward). */
  kept: number;
  sft: { steps: number; finalLoss: number; meanLossLastEpoch: number; seconds: number };
}

export interface ExpertIterationResult {
  rounds: ExpertIterationRound[];
  /** The choices of the last round (instruction, input, output, reward), what the policy was last trained on. */
  data: { instruction: string; input: string; output: string; reward: number }[];
}

/** SFT step logs of a round carry the round number; `step` counts SFT steps over all rounds. */
export type ExpertIterationLog = SftStepLog & { round: number; roundStep: number };

/** The global step a resumed run continues from: finished rounds' steps plus the interrupted round's checkpoint. */
export function expertIterationResumeStep(dir: string): number | null {
  let total = 0, any = false;
  for (let r = 1; existsSync(join(dir, `round-${r}`)); r++) {
    const done = join(dir, `round-${r}`, 'round.json');
    if (existsSync(done)) { total += (JSON.parse(readFileSync(done, 'utf8')) as { round: ExpertIterationRound }).round.sft.steps; any = true; continue; }
    const s = latestCheckpoint(join(dir, `round-${r}`));
    if (s !== null) { total += s; any = true; }
    break;
  }
  return any ? total : null;
}

/** Every expert-iteration setting, the nested best-of-n and SFT settings included, checked. */
export function resolveExpertIterationConfig(config: Partial<ExpertIterationConfig> = {}): ExpertIterationConfig {
  const c = resolveConfig('expert iteration', EXPERT_ITERATION_DEFAULTS as ExpertIterationConfig, config, { int: [['rounds', 1]], optional: ['onRound'] });
  if (typeof c.minReward !== 'number' || Number.isNaN(c.minReward)) throw new ConfigError(`expert iteration config minReward must be a number, got ${c.minReward}`);
  resolveBestOfNConfig({ ...c.bestOfN });
  resolveSftConfig('expert iteration sft', c.sft);
  return c;
}

/**
 * Trains `policy` in place: `rounds` × (best-of-n on `records` with `reward`, then SFT on the argmax outputs).
 * With hooks.checkpoint, round r keeps its choices and its SFT checkpoints under dir/round-r/, and a resumed run
 * skips finished rounds (loading the policy they ended with) and continues the interrupted one.
 */
export async function expertIteration(engine: Engine, policy: Model, reward: RewardSource, tokenizer: MethodTokenizer,
  records: AlpacaExample[], config: Partial<ExpertIterationConfig> = {}, hooks: TrainHooks<ExpertIterationLog> = {}): Promise<ExpertIterationResult> {
  const c = resolveExpertIterationConfig(config);
  if (records.length === 0) throw new ConfigError('expertIteration: no records');
  const rounds: ExpertIterationRound[] = [];
  let data: ExpertIterationResult['data'] = [];
  let offset = 0;  // SFT steps of the rounds before
  for (let round = 0; round < c.rounds; round++) {
    const dir = hooks.checkpoint ? join(hooks.checkpoint.dir, `round-${round + 1}`) : null;
    const doneFile = dir && join(dir, 'round.json'), choicesFile = dir && join(dir, 'choices.json');
    if (hooks.checkpoint?.resume && doneFile && existsSync(doneFile)) {
      // a finished round: its summary, choices and the policy its SFT ended with
      const saved = JSON.parse(readFileSync(doneFile, 'utf8')) as { round: ExpertIterationRound; data: ExpertIterationResult['data'] };
      await new Checkpointer(engine, { dir: dir!, every: 0, resume: true }, 'SFT').restore({ models: { model: policy }, optimizers: {} });
      rounds.push(saved.round);
      data = saved.data;
      offset += saved.round.sft.steps;
      continue;
    }
    let bon: { metrics: BestOfNMetrics };
    if (hooks.checkpoint?.resume && choicesFile && existsSync(choicesFile)) {
      ({ bon, data } = JSON.parse(readFileSync(choicesFile, 'utf8')) as { bon: { metrics: BestOfNMetrics }; data: ExpertIterationResult['data'] });
    } else {
      const seed = (c.bestOfN.seed ?? 1) + round;  // fresh samples each round
      bon = await bestOfN(engine, policy, reward, tokenizer, records, { ...c.bestOfN, seed, generator: 'expert-iteration' });
      data = (bon as Awaited<ReturnType<typeof bestOfN>>).outputs.filter((o) => o.reward >= c.minReward)
        .map((o) => ({ instruction: o.instruction, input: o.input, output: o.output, reward: o.reward }));
      if (choicesFile) { mkdirSync(dir!, { recursive: true }); writeFileSync(choicesFile, JSON.stringify({ bon: { metrics: bon.metrics }, data })); }
    }
    if (data.length === 0) throw new Error(`expertIteration round ${round + 1}: no choice has reward >= minReward ${c.minReward}`);
    const s = await sft(engine, policy, tokenizer, data, { ...c.sft, seed: (c.sft.seed ?? 1) + round }, {
      checkpoint: dir ? { ...hooks.checkpoint!, dir, keep: 1 } : undefined,
      onStep: (l) => hooks.onStep?.({ ...l, step: offset + l.step, roundStep: l.step, round: round + 1 }),
    });
    const r: ExpertIterationRound = {
      round: round + 1, bestOfN: bon.metrics, kept: data.length,
      sft: { steps: s.steps, finalLoss: s.finalLoss, meanLossLastEpoch: s.meanLossLastEpoch, seconds: s.seconds },
    };
    if (doneFile) writeFileSync(doneFile, JSON.stringify({ round: r, data }));
    offset += s.steps;
    rounds.push(r);
    c.onRound?.(r);
  }
  return { rounds, data };
}
