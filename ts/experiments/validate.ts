// `farm validate`: AlpacaFarm's validation of the simulator, on the farm. The same stages as `farm run`
// (pipeline.ts) run twice, once learning from simulated feedback (the noisy pool) and once from human
// feedback (the panel); every method is evaluated by the evaluation pool and by the panel on the eval split.
// Then: the two rankings and their Spearman / Pearson correlation, simulated-vs-human annotator agreement,
// the reward models' agreement with gold and with the panel on held-out within-prompt pairs, and the
// over-optimization curves (PPO win-rate and gold vs step and KL, best-of-n vs n) for the noisy pool and for
// one noise-free judge. Results: <run folder>/results.json (and leaderboard.md, pipeline.json).
import { readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../engine/index.ts';
import { createWorld, type World } from '../world/index.ts';
import { measurePoolAgainstPanel } from '../feedback/index.ts';
import { pearson, spearman } from '../eval/index.ts';
import { bestOfN } from '../methods/best-of-n.ts';
import { ConfigError, generateOutputs, type OutputRow } from '../methods/common.ts';
import { rewardScorer } from '../methods/reward-model.ts';
import { loadModelFolder, readInstructions, runPairs, runPpo, type Progress } from '../methods/jobs.ts';
import { checkpointPath, listCheckpoints } from '../methods/checkpoint.ts';
import { readMetrics } from '../methods/run-folder.ts';
import { buildStages, codeHash, evaluateOutputs, slug, type MethodName, type WinRate } from './pipeline.ts';
import { presetByName, type Preset } from './presets.ts';
import { formatTable, leaderboardRows, lockFolder, writePipelineFile, type LeaderboardRow } from './run.ts';
import { runStages, selectStages, type Stage, type StageContext, type StageRecord } from './stages.ts';

export const SIMULATED = 'pool:train';
export const HUMAN = 'panel';
const EVALUATORS = ['pool', 'panel'];
/** The methods of the paper's table, validated by default; TreeBoN and RLP (later papers) join with `methods`. They
 * add ~10 minutes per feedback on 2 cores, which the quick preset's budget cannot carry. */
export const VALIDATE_METHODS: readonly MethodName[] = ['sft', 'best-of-n', 'expert-iteration', 'feedme', 'reward-conditioning', 'ppo', 'quark', 'dpo'];

export interface ValidateOptions {
  preset: string | Preset;
  seed?: number;
  outputDir: string;
  engine: Engine;
  progress: Progress;
  methods?: MethodName[];
  only?: string[];
  force?: boolean;
  onStage?: Parameters<typeof runStages>[1]['onStage'];
}

export interface CurvePoint { step: number; kl: number; rm_score: number; pool: WinRate; panel: WinRate; gold: { mean: number; standard_error: number } }
export interface BonPoint { n: number; rm_score: number; pool: WinRate; panel: WinRate; gold: { mean: number; standard_error: number } }

export interface ValidateResult {
  preset: string;
  seed: number;
  /** Methods trained on simulated feedback and on human feedback, each evaluated by the pool and the panel. */
  leaderboard: { simulated: LeaderboardRow[]; human: LeaderboardRow[] };
  table: string;
  /** Ranking agreement: methods ranked by (simulated feedback, pool eval) vs (human feedback, panel eval), as the paper. */
  ranking: { methods: string[]; simulated: number[]; human: number[]; spearman: number; pearson: number };
  /** The pool and a panel rater, each against the panel majority (leave-one-out), on pairs of this run's SFT samples. */
  agreement: { pool_panel_agreement: number; panel_rater_agreement: number; pairs: number } | null;
  /** Reward models (per feedback) vs gold and vs the panel on held-out within-prompt pairs. */
  rewardModels: Record<string, { gold_agreement: number; panel_agreement: number; pairs_gold: number; pairs_panel: number; eval_accuracy: unknown }>;
  overoptimization: Record<string, { ppo: CurvePoint[]; bestOfN: BonPoint[]; peak_step_panel: number; peak_step_gold: number }>;
  /** The figures of issue 10 (panel gains are method minus SFT, in win-rate points). */
  figures: Record<string, number | null>;
  stages: { name: string; cached: boolean; seconds: number }[];
  ran: number;
  seconds: number;
}

const worlds = new Map<number, World>();
const worldOf = (seed: number) => { let w = worlds.get(seed); if (!w) worlds.set(seed, (w = createWorld({ seed }))); return w; };

function readOutputs(file: string): OutputRow[] { return JSON.parse(readFileSync(file, 'utf8')) as OutputRow[]; }

export function validateStages(preset: Preset, seed: number, methods: readonly MethodName[], engine: Engine, progress: Progress): Stage[] {
  const noiseFree = preset.overoptimization.noiseFreeJudge;
  const stages = buildStages({ preset, seed, feedback: [SIMULATED, HUMAN], rewardOnlyFeedback: [noiseFree], evaluators: EVALUATORS, methods, engine, progress });
  const O = preset.overoptimization;
  const code = { judge: codeHash('world', 'feedback', 'eval'), train: codeHash('methods', 'engine', 'tokenizer', 'data') };
  const file = (ctx: StageContext, dep: string, key: string) => String(ctx.dep(dep).result[key]);
  const evalSubset = (ctx: StageContext) => readInstructions(file(ctx, 'data', 'eval'), 'eval split', true).slice(0, O.evalInstructions);
  const reference = (rows: ReturnType<typeof evalSubset>) => rows.map((r) => ({ instruction: r.instruction, input: r.input, output: r.output, generator: 'reference' }));

  stages.push({
    name: 'agreement', kind: 'agreement', deps: ['pairs'], config: { seed, code: code.judge },
    async run(ctx) {
      const pairs = (JSON.parse(readFileSync(file(ctx, 'pairs', 'file'), 'utf8')) as { instruction: string; input: string; output_1: string; output_2: string }[])
        .filter((p) => p.output_1 !== p.output_2).map(({ instruction, input, output_1, output_2 }) => ({ instruction, input, output_1, output_2 }));
      const m = await measurePoolAgainstPanel(worldOf(seed), pairs, { runs: 1, seed });
      return { pool_panel_agreement: m.poolAgreement / 100, panel_rater_agreement: m.panelAgreement / 100, pool_panel_agreement_full: m.poolAgreementFull / 100, pairs: m.pairs };
    },
  });
  stages.push({
    name: 'heldout-pairs', kind: 'pairs', deps: ['sft', 'data'], config: { pairs: preset.pairs, code: code.train },
    async run(ctx) {
      const r = await runPairs({ outputDir: join(ctx.dir, 'run'), resume: true, seed: seed + 1000, engine, progress: ctx.progress },
        { model: file(ctx, 'sft', 'model'), data: file(ctx, 'data', 'val'), generation: preset.pairs });
      return { file: r.summary.pairs_file, pairs: r.summary.pairs };
    },
  });
  for (const fb of [SIMULATED, HUMAN, noiseFree]) {
    const f = slug(fb), rm = `reward-model/${f}`;
    stages.push({
      name: `rm-agreement/${f}`, kind: 'rm-agreement', deps: ['heldout-pairs', rm], config: { seed, code: code.judge },
      async run(ctx) {
        const world = worldOf(seed);
        const pairs = (JSON.parse(readFileSync(file(ctx, 'heldout-pairs', 'file'), 'utf8')) as { instruction: string; input: string; output_1: string; output_2: string }[])
          .filter((p) => p.output_1 !== p.output_2);
        const m = await loadModelFolder(engine, file(ctx, rm, 'model'), 'reward model', 'reward model');
        const scores = await rewardScorer(engine, m.model, m.tokenizer).score(pairs);
        let g = 0, gn = 0, p = 0, pn = 0;
        pairs.forEach((x, i) => {
          const rmPref = scores[i][1] > scores[i][0] ? 2 : 1;
          const g1 = world.grade(x.instruction, x.input, x.output_1).total, g2 = world.grade(x.instruction, x.input, x.output_2).total;
          if (g1 !== g2) { gn++; if ((g2 > g1 ? 2 : 1) === rmPref) g++; }
          const maj = world.panel.majority({ instruction: x.instruction, input: x.input, output_1: x.output_1, output_2: x.output_2 });
          if (maj === 1 || maj === 2) { pn++; if (maj === rmPref) p++; }
        });
        return { gold_agreement: gn ? g / gn : NaN, panel_agreement: pn ? p / pn : NaN, pairs_gold: gn, pairs_panel: pn, eval_accuracy: ctx.dep(rm).result.eval_accuracy ?? null };
      },
    });
  }
  for (const fb of [SIMULATED, noiseFree]) {
    const f = slug(fb), rm = `reward-model/${f}`;
    stages.push({
      name: `overopt-ppo/${f}`, kind: 'overopt-ppo', deps: ['sft', rm, 'data'], config: { ppo: preset.ppo, steps: O.ppoSteps, every: O.every, n: O.evalInstructions, generation: preset.generation, evaluators: EVALUATORS, code },
      async run(ctx) {
        const runDir = join(ctx.dir, 'run');
        const r = await runPpo({ outputDir: runDir, resume: true, seed, engine, progress: ctx.progress, saveSteps: O.every, keepCheckpoints: Infinity },
          { model: file(ctx, 'sft', 'model'), rewardModel: file(ctx, rm, 'model'), data: file(ctx, 'data', 'unlabeled'), config: { ...preset.ppo, steps: O.ppoSteps } });
        void r;
        const rows = evalSubset(ctx), ref = reference(rows);
        const metrics = readMetrics(join(runDir, 'metrics.jsonl'));
        const pointsFile = join(ctx.dir, 'points.jsonl');
        const done = new Map(readMetrics(pointsFile).map((p) => [p.step, p as unknown as CurvePoint]));
        const policy = await loadModelFolder(engine, file(ctx, 'sft', 'model'), 'sft', 'policy');
        const rmModel = await loadModelFolder(engine, file(ctx, rm, 'model'), 'reward model', 'reward model');
        const scorer = rewardScorer(engine, rmModel.model, rmModel.tokenizer);
        const steps = [0, ...listCheckpoints(join(runDir, 'checkpoints'))];
        const points: CurvePoint[] = [];
        for (const step of steps) {
          const hit = done.get(step);
          if (hit) { points.push(hit); continue; }
          if (step > 0) { const w = await engine.loadModel(join(checkpointPath(join(runDir, 'checkpoints'), step), 'policy')); policy.model.copyFrom(w); }
          const g = await generateOutputs(engine, policy.model, policy.tokenizer, rows, { seed, ...preset.generation }, `ppo-step-${step}`);
          const ev = await evaluateOutputs(worldOf(seed), EVALUATORS, seed, ref, g.outputs, ctx.progress);
          const rs = await scorer.score(g.outputs.map((o) => ({ instruction: o.instruction, input: o.input, output_1: o.output, output_2: o.output })));
          const kl = step === 0 ? 0 : metrics.find((m) => m.step === step)?.['objective/kl'] ?? NaN;
          const point: CurvePoint = { step, kl, rm_score: rs.reduce((a, s) => a + s[0], 0) / rs.length, pool: ev.pool as WinRate, panel: ev.panel as WinRate, gold: ev.gold as CurvePoint['gold'] };
          appendFileSync(pointsFile, `${JSON.stringify(point)}\n`);
          points.push(point);
        }
        return { points };
      },
    });
    stages.push({
      name: `overopt-bon/${f}`, kind: 'overopt-bon', deps: ['sft', rm, 'data'], config: { bestOfN: preset.bestOfN, ns: O.bestOfNs, n: O.evalInstructions, evaluators: EVALUATORS, code },
      async run(ctx) {
        const rows = evalSubset(ctx), ref = reference(rows);
        const policy = await loadModelFolder(engine, file(ctx, 'sft', 'model'), 'sft', 'policy');
        const rmModel = await loadModelFolder(engine, file(ctx, rm, 'model'), 'reward model', 'reward model');
        const nMax = Math.max(...O.bestOfNs);
        ctx.progress.start(`best-of-${nMax} samples`, rows.length);
        const b = await bestOfN(engine, policy.model, rmModel.model, policy.tokenizer, rows, { ...preset.bestOfN, n: nMax, seed, keepCandidates: true, onProgress: (p) => ctx.progress.update(p.done) });
        ctx.progress.stop();
        const points: BonPoint[] = [];
        for (const n of O.bestOfNs) {
          // samples of best-of-n are the first n of best-of-nMax (same streams), so one pass serves every n
          const chosen = b.candidates!.map((c) => c.slice(0, n).reduce((best, x) => (x.reward > best.reward ? x : best)));
          const outs = rows.map((r, i) => ({ instruction: r.instruction, input: r.input, output: chosen[i].output, generator: `best-of-${n}` }));
          const ev = await evaluateOutputs(worldOf(seed), EVALUATORS, seed, ref, outs, ctx.progress);
          points.push({ n, rm_score: chosen.reduce((a, x) => a + x.reward, 0) / chosen.length, pool: ev.pool as WinRate, panel: ev.panel as WinRate, gold: ev.gold as BonPoint['gold'] });
        }
        return { points };
      },
    });
  }
  return stages;
}

const pm = (w: WinRate | undefined) => (w ? `${w.win_rate.toFixed(1)} ± ${w.standard_error.toFixed(1)}` : '-');

/** The paper's table: simulated (pool feedback, pool eval) and human (panel feedback, panel eval) columns, ours and AlpacaFarm's. */
export function formatValidateTable(sim: LeaderboardRow[], human: LeaderboardRow[]): string {
  const h = new Map(human.map((r) => [r.method, r]));
  const rows = sim.filter((r) => r.method !== 'reference').map((r) => {
    const x = h.get(r.method);
    return [r.label, pm(r.evaluations.pool), pm(x?.evaluations.panel), pm(r.evaluations.panel), r.gold.mean.toFixed(3), x ? x.gold.mean.toFixed(3) : '-',
      r.paper.simulated === null ? '-' : r.paper.simulated.toFixed(1), r.paper.human === null ? '-' : r.paper.human.toFixed(1)];
  });
  return formatTable(['method', 'simulated (pool fb, pool eval)', 'human (panel fb, panel eval)', 'pool fb, panel eval', 'gold, pool fb', 'gold, panel fb', 'paper simulated', 'paper human'], rows);
}

function peak(points: CurvePoint[], key: (p: CurvePoint) => number): number {
  return points.reduce((best, p) => (key(p) > key(best) ? p : best), points[0])?.step ?? NaN;
}

export async function runValidate(o: ValidateOptions): Promise<ValidateResult> {
  const preset = typeof o.preset === 'string' ? presetByName(o.preset, ['quick', 'standard', 'smoke', 'paper']) : o.preset;
  const seed = o.seed ?? preset.seed;
  if (!Number.isInteger(seed) || seed < 0) throw new ConfigError(`--seed must be an integer >= 0, got ${seed}`);
  const methods = o.methods ? [...o.methods] : [...VALIDATE_METHODS];
  if (!methods.includes('sft')) methods.unshift('sft');
  const stages = validateStages(preset, seed, methods, o.engine, o.progress);
  selectStages(stages, o.only);  // a bad --only fails before the run folder is touched
  if (o.force) rmSync(o.outputDir, { recursive: true, force: true });
  const unlock = lockFolder(o.outputDir);
  const t0 = performance.now();
  try {
    const records = await runStages(stages, { root: o.outputDir, progress: o.progress, only: o.only, cost: preset.cost, onStage: o.onStage });
    const by = new Map(records.map((r) => [r.name, r]));
    const sim = leaderboardRows(by, methods, SIMULATED, EVALUATORS), human = leaderboardRows(by, methods, HUMAN, EVALUATORS);
    const table = sim.length ? formatValidateTable(sim, human) : '';
    // rankings over the methods present in both
    const hm = new Map(human.map((r) => [r.method, r]));
    const both = sim.filter((r) => r.method !== 'reference' && hm.has(r.method));
    const simScores = both.map((r) => r.evaluations.pool.win_rate), humanScores = both.map((r) => hm.get(r.method)!.evaluations.panel.win_rate);
    const corr = (f: typeof spearman) => (both.length >= 2 ? f(simScores, humanScores) : NaN);
    const result = <T>(name: string) => by.get(name)?.result as T | undefined;
    const noiseFree = slug(preset.overoptimization.noiseFreeJudge);
    const overopt: ValidateResult['overoptimization'] = {};
    for (const f of ['pool-train', noiseFree]) {
      const ppo = result<{ points: CurvePoint[] }>(`overopt-ppo/${f}`)?.points ?? [];
      const bon = result<{ points: BonPoint[] }>(`overopt-bon/${f}`)?.points ?? [];
      if (ppo.length || bon.length) overopt[f] = { ppo, bestOfN: bon, peak_step_panel: peak(ppo, (p) => p.panel.win_rate), peak_step_gold: peak(ppo, (p) => p.gold.mean) };
    }
    const rmAgreement: ValidateResult['rewardModels'] = {};
    for (const f of ['pool-train', 'panel', noiseFree]) { const r = result<ValidateResult['rewardModels'][string]>(`rm-agreement/${f}`); if (r) rmAgreement[f] = r; }
    const agreement = result<ValidateResult['agreement']>('agreement') ?? null;
    const row = (rows: LeaderboardRow[], m: MethodName) => rows.find((r) => r.method === m);
    const sftRow = row(sim, 'sft');
    const gain = (m: MethodName, rows = sim) => { const r = row(rows, m), s = row(rows, 'sft'); return r && s ? r.evaluations.panel.win_rate - s.evaluations.panel.win_rate : null; };
    const figures: Record<string, number | null> = {
      rm_gold_agreement: rmAgreement['pool-train']?.gold_agreement ?? null,
      rm_panel_agreement: rmAgreement['pool-train']?.panel_agreement ?? null,
      sft_panel_winrate: sftRow?.evaluations.panel.win_rate ?? null,
      ppo_panel_gain: gain('ppo'), bon_panel_gain: gain('best-of-n'), expiter_panel_gain: gain('expert-iteration'), dpo_panel_gain: gain('dpo'),
      feedme_panel_gain: gain('feedme'), quark_panel_gain: gain('quark'), rc_panel_gain: gain('reward-conditioning'),
      treebon_panel_gain: gain('treebon'), rlp_uml_panel_gain: gain('rlp-uml'), rlp_spg_panel_gain: gain('rlp-spg'),
      ppo_panel_gain_human_feedback: gain('ppo', human), bon_panel_gain_human_feedback: gain('best-of-n', human),
      ppo_gold_gain: row(sim, 'ppo') && sftRow ? row(sim, 'ppo')!.gold.mean - sftRow.gold.mean : null,
      ppo_gold_gain_se: row(sim, 'ppo') && sftRow ? Math.hypot(row(sim, 'ppo')!.gold.standard_error, sftRow.gold.standard_error) : null,
      spearman_sim_vs_human: Number.isFinite(corr(spearman)) ? corr(spearman) : null,
      pearson_sim_vs_human: Number.isFinite(corr(pearson)) ? corr(pearson) : null,
      overopt_peak_step: overopt['pool-train']?.peak_step_panel ?? null,
      overopt_peak_step_noise_free: overopt[noiseFree]?.peak_step_panel ?? null,
      pool_panel_agreement: agreement?.pool_panel_agreement ?? null,
      panel_rater_agreement: agreement?.panel_rater_agreement ?? null,
      validate_s: (performance.now() - t0) / 1000,
    };
    const out: ValidateResult = {
      preset: preset.name, seed, leaderboard: { simulated: sim, human }, table,
      ranking: { methods: both.map((r) => r.method), simulated: simScores, human: humanScores, spearman: corr(spearman), pearson: corr(pearson) },
      agreement, rewardModels: rmAgreement, overoptimization: overopt, figures,
      stages: records.map((r) => ({ name: r.name, cached: r.cached, seconds: r.seconds })), ran: records.filter((r) => !r.cached).length, seconds: (performance.now() - t0) / 1000,
    };
    writePipelineFile(o.outputDir, preset.name, seed, records, { command: 'farm validate' });
    writeFileSync(join(o.outputDir, 'results.json'), `${JSON.stringify(out, null, 2)}\n`);
    if (table) writeFileSync(join(o.outputDir, 'leaderboard.md'), `${table}\n`);
    return out;
  } finally { unlock(); }
}

