// The paper's pipeline as stages (stages.ts): data -> tokenizer -> SFT -> pairs -> annotation by a feedback
// source -> reward model -> every method -> outputs on the eval split -> evaluation by the evaluation pool, the
// human panel and the gold standard. The feedback source and the evaluators are parameters, so `farm run`
// (simulated feedback) and `farm validate` (simulated and human feedback) are the same stages.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../engine/index.ts';
import { createWorld, type World } from '../world/index.ts';
import { generateSplits, writeSplits } from '../data/splits.ts';
import { formatPrompt, TEMPLATE_PHRASES } from '../data/template.ts';
import { trainBpe } from '../tokenizer/index.ts';
import { createAnnotator } from '../feedback/index.ts';
import { evaluateModel } from '../eval/index.ts';
import { generateOutputs, type OutputRow } from '../methods/common.ts';
import {
  loadModelFolder, readInstructions, runBestOfN, runDpo, runExpertIteration, runFeedME, runPairs, runPpo, runQuark, runRewardConditioning,
  runRewardModel, runRlp, runRlpSamples, runSft, runTreeBoN, type JobOptions, type Progress,
} from '../methods/jobs.ts';
import { farmEquivalence } from './equivalence.ts';
import { resolveRlpConfig } from '../methods/rlp.ts';
import type { Preset } from './presets.ts';
import type { Stage, StageContext } from './stages.ts';

export const METHODS = ['sft', 'best-of-n', 'expert-iteration', 'feedme', 'reward-conditioning', 'ppo', 'quark', 'dpo', 'treebon', 'rlp-uml', 'rlp-spg'] as const;
export type MethodName = (typeof METHODS)[number];
/** Methods that learn from the feedback (every one but SFT). */
export const FEEDBACK_METHODS = METHODS.filter((m) => m !== 'sft');

/** Display names and AlpacaFarm's published win-rates vs Davinci-003 (simulated, human; null: not reported). */
export const PAPER: Record<MethodName, { label: string; simulated: number | null; human: number | null }> = {
  ppo: { label: 'PPO', simulated: 46.8, human: 55.1 },
  'best-of-n': { label: 'Best-of-n', simulated: 45.0, human: 50.7 },
  'expert-iteration': { label: 'Expert iteration', simulated: 41.9, human: 45.7 },
  sft: { label: 'SFT', simulated: 36.7, human: 44.3 },  // the paper's SFT 10k row
  feedme: { label: 'Binary FeedME', simulated: 36.6, human: 37.9 },
  quark: { label: 'Quark', simulated: 35.6, human: null },
  'reward-conditioning': { label: 'Binary reward conditioning', simulated: 32.4, human: null },
  dpo: { label: 'DPO', simulated: null, human: null },
  treebon: { label: 'TreeBoN', simulated: null, human: null },  // its paper reports win-rates against best-of-n, not Davinci-003
  'rlp-uml': { label: 'RLP-UML', simulated: 49.1, human: 56.5 },  // the RLP paper, AlpacaFarm's evaluation
  'rlp-spg': { label: 'RLP-SPG', simulated: 50.2, human: 57.4 },
};

/** Methods whose stage decodes the eval split itself (no separate outputs stage). */
const DECODERS: readonly MethodName[] = ['best-of-n', 'treebon'];
/** Method stages another method's stage reads (TreeBoN: the DPO model; RLP: the PPO policy). */
const NEEDS: Partial<Record<MethodName, MethodName>> = { treebon: 'dpo', 'rlp-uml': 'ppo', 'rlp-spg': 'ppo' };

export interface PipelineSpec {
  preset: Preset;
  /** World seed; every other seed (splits, annotators, models, sampling) follows it. */
  seed: number;
  /** Feedback sources the methods learn from: createAnnotator specs ('pool:train' simulated, 'panel' human, a judge name). */
  feedback: string[];
  /** Feedback sources that only get annotation and a reward model (e.g. a noise-free judge for control curves). */
  rewardOnlyFeedback?: string[];
  /** Annotators of the evaluation (the gold standard is always measured too). */
  evaluators: string[];
  methods: readonly MethodName[];
  engine: Engine;
  progress: Progress;
  /** Checkpoint interval of the training stages. */
  saveSteps?: number;
}

// ---- code identity: a cached stage is reused only while the code it ran is unchanged ----
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// the sources in a checkout, the compiled modules in an installed package (which ships no ts/)
const SRC = existsSync(join(ROOT, 'ts')) ? 'ts' : 'dist';
const codeHashes = new Map<string, string>();
/** SHA-256 of the TypeScript sources under the given folders of ts/ (and of the native sources for 'engine'). */
export function codeHash(...areas: string[]): string {
  const key = areas.join(',');
  const hit = codeHashes.get(key);
  if (hit) return hit;
  const h = createHash('sha256');
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|js|cc|h|cu|cuh)$/.test(n) && !n.endsWith('.d.ts')) h.update(relative(ROOT, p)).update(readFileSync(p));
    }
  };
  for (const a of areas) { walk(join(ROOT, SRC, a)); if (a === 'engine') walk(join(ROOT, 'native')); }
  const out = h.digest('hex').slice(0, 16);
  codeHashes.set(key, out);
  return out;
}
const CODE = {
  data: () => codeHash('world', 'data'),
  train: () => codeHash('methods', 'engine', 'tokenizer', 'data'),
  judge: () => codeHash('world', 'feedback', 'eval'),
};

/** A file name for a feedback spec ('pool:train' -> 'pool-train'). */
export const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-');

const worlds = new Map<number, World>();
function worldOf(seed: number): World {
  let w = worlds.get(seed);
  if (!w) worlds.set(seed, (w = createWorld({ seed })));
  return w;
}

/** Names of the stages of a method's chain. */
export const stageNames = {
  method: (m: MethodName, fb: string) => (m === 'sft' ? 'sft' : `${m}/${slug(fb)}`),
  outputs: (m: MethodName, fb: string) => (DECODERS.includes(m) ? `${m}/${slug(fb)}` : m === 'sft' ? 'outputs/sft' : `outputs/${m}/${slug(fb)}`),
  evaluate: (m: MethodName, fb: string) => (m === 'sft' ? 'evaluate/sft' : `evaluate/${m}/${slug(fb)}`),
};

/** The stages of the pipeline (topologically ordered). */
export function buildStages(spec: PipelineSpec): Stage[] {
  const { preset: P, seed } = spec;
  const job = (ctx: StageContext): JobOptions => ({ outputDir: join(ctx.dir, 'run'), resume: true, seed, engine: spec.engine, progress: ctx.progress, saveSteps: spec.saveSteps ?? P.saveSteps });
  const file = (ctx: StageContext, dep: string, key: string) => String(ctx.dep(dep).result[key]);
  const stages: Stage[] = [];

  stages.push({
    name: 'data', kind: 'data', deps: [], config: { seed, sizes: P.data, code: CODE.data() },
    async run(ctx) {
      const world = worldOf(seed);
      const splits = generateSplits(world, P.data, { seed });
      writeSplits(ctx.dir, splits, { preset: P.name, seed, command: 'farm run' });
      return { ...Object.fromEntries(Object.keys(splits).map((s) => [s, join(ctx.dir, `${s}.jsonl`)])), sizes: P.data };
    },
  });
  stages.push({
    name: 'tokenizer', kind: 'tokenizer', deps: ['data'], config: { vocabSize: P.vocabSize, phrases: TEMPLATE_PHRASES, code: CODE.train() },
    async run(ctx) {
      const sft = readInstructions(file(ctx, 'data', 'sft'), 'sft split', true);
      // the template's fixed pieces as single tokens: a farm prompt costs ~18 tokens instead of ~47
      const tok = trainBpe(sft.map((r) => `${formatPrompt(r)}${r.output}`), { vocabSize: P.vocabSize, phrases: [...TEMPLATE_PHRASES] });
      tok.save(join(ctx.dir, 'tokenizer.json'));
      return { tokenizer: join(ctx.dir, 'tokenizer.json'), vocab: tok.vocabSize };
    },
  });
  stages.push({
    name: 'sft', kind: 'sft', deps: ['data', 'tokenizer'], config: { model: P.model, sft: P.sft, code: CODE.train() },
    async run(ctx) {
      const r = await runSft(job(ctx), { data: file(ctx, 'data', 'sft'), architecture: P.model, tokenizer: file(ctx, 'tokenizer', 'tokenizer'), config: P.sft });
      return { model: r.summary.model, ...pick(r.summary, ['steps', 'final_loss']) };
    },
  });
  const needsPairs = spec.methods.some((m) => m !== 'sft');
  if (needsPairs || spec.rewardOnlyFeedback?.length) {
    stages.push({
      name: 'pairs', kind: 'pairs', deps: ['data', 'sft'], config: { pairs: P.pairs, code: CODE.train() },
      async run(ctx) {
        const r = await runPairs(job(ctx), { model: file(ctx, 'sft', 'model'), data: file(ctx, 'data', 'preference'), generation: P.pairs });
        return { file: r.summary.pairs_file, ...pick(r.summary, ['pairs', 'identical']) };
      },
    });
  }
  for (const fb of needsPairs || spec.rewardOnlyFeedback?.length ? [...spec.feedback, ...(spec.rewardOnlyFeedback ?? [])] : []) {
    const f = slug(fb);
    stages.push({
      name: `annotate/${f}`, kind: 'annotate', deps: ['pairs'], config: { feedback: fb, annotatorSeed: seed, heldOut: P.heldOutPairs, world: seed, code: CODE.judge() },
      async run(ctx) {
        const pairs = JSON.parse(readFileSync(file(ctx, 'pairs', 'file'), 'utf8')) as { instruction: string; input: string; output_1: string; output_2: string }[];
        const world = worldOf(seed);
        const annotator = await createAnnotator(fb, { world, seed });
        ctx.progress.start(`annotate (${fb})`, pairs.length);
        const labels = await annotator.annotate(pairs.map(({ instruction, input, output_1, output_2 }) => ({ instruction, input, output_1, output_2 })), { onProgress: (d) => ctx.progress.update(d) });
        ctx.progress.stop();
        const prefs = labels.map((a) => ({ instruction: a.instruction, input: a.input, output_1: a.output_1, output_2: a.output_2, preference: a.preference, annotator: a.annotator }));
        const held = Math.min(P.heldOutPairs, Math.floor(prefs.length / 5));
        writeFileSync(join(ctx.dir, 'preferences.json'), JSON.stringify(prefs.slice(0, prefs.length - held), null, 1));
        writeFileSync(join(ctx.dir, 'heldout.json'), JSON.stringify(prefs.slice(prefs.length - held), null, 1));
        // how often the labels agree with the hidden gold standard (pairs whose gold differs)
        let agree = 0, decided = 0;
        for (const p of prefs) {
          if (p.preference !== 1 && p.preference !== 2) continue;
          const g1 = world.tryGrade(p.instruction, p.input, p.output_1)?.total, g2 = world.tryGrade(p.instruction, p.input, p.output_2)?.total;
          if (g1 === undefined || g2 === undefined || g1 === g2) continue;
          decided++; if ((g2 > g1 ? 2 : 1) === p.preference) agree++;
        }
        return { preferences: join(ctx.dir, 'preferences.json'), heldout: join(ctx.dir, 'heldout.json'), labelled: prefs.filter((p) => p.preference === 1 || p.preference === 2).length,
          draws: prefs.filter((p) => p.preference === 0).length, failed: prefs.filter((p) => p.preference === null).length, label_gold_agreement: decided ? agree / decided : null };
      },
    });
    stages.push({
      name: `reward-model/${f}`, kind: 'reward-model', deps: ['sft', `annotate/${f}`], config: { rewardModel: P.rewardModel, code: CODE.train() },
      async run(ctx) {
        const r = await runRewardModel(job(ctx), { model: file(ctx, 'sft', 'model'), preferences: file(ctx, `annotate/${f}`, 'preferences'), evalPreferences: file(ctx, `annotate/${f}`, 'heldout'),
          config: P.rewardModel });
        return { model: r.summary.model, ...pick(r.summary, ['steps', 'pairs', 'train_accuracy_last_epoch', 'eval_accuracy', 'eval_loss']) };
      },
    });
  }
  // methods, their outputs on the eval split, their evaluation
  const evalStage = (name: string, deps: string[], outputsOf: (ctx: StageContext) => string, method: MethodName, fb: string | null): Stage => ({
    name, kind: 'evaluate', deps: [...deps, 'data'], config: { evaluators: spec.evaluators, annotatorSeed: seed, world: seed, code: CODE.judge() },
    run: (ctx) => evaluateStage(ctx, worldOf(seed), spec.evaluators, seed, file(ctx, 'data', 'eval'), outputsOf(ctx), method, fb),
  });
  const outputsStage = (name: string, deps: string[], modelOf: (ctx: StageContext) => string, generator: string): Stage => ({
    name, kind: 'outputs', deps: [...deps, 'data'], config: { generation: P.generation, code: CODE.train() },
    async run(ctx) {
      const records = readInstructions(file(ctx, 'data', 'eval'), 'eval split');
      const m = await loadModelFolder(spec.engine, modelOf(ctx), 'model', 'policy');
      const control = m.conditioning ? { prefix: [m.tokenizer.tokenToId(m.conditioning.generateWith!)!], strip: m.conditioning.tokens.map((t) => m.tokenizer.tokenToId(t)!) } : undefined;
      ctx.progress.start(`outputs (${generator})`, records.length);
      const r = await generateOutputs(spec.engine, m.model, m.tokenizer, records, { seed, ...P.generation }, generator, control, (d) => ctx.progress.update(d));
      ctx.progress.stop();
      writeFileSync(join(ctx.dir, 'model_outputs.json'), JSON.stringify(r.outputs, null, 2));
      return { outputs: join(ctx.dir, 'model_outputs.json'), 'time/tokens_per_second': r.tokens / Math.max(r.seconds, 1e-9), tokens: r.tokens };
    },
  });
  if (spec.methods.includes('sft')) {
    stages.push(outputsStage('outputs/sft', ['sft'], (ctx) => file(ctx, 'sft', 'model'), 'sft'));
    stages.push(evalStage('evaluate/sft', ['outputs/sft'], (ctx) => file(ctx, 'outputs/sft', 'outputs'), 'sft', null));
  }
  for (const fb of spec.feedback) {
    const f = slug(fb), rm = `reward-model/${f}`, ann = `annotate/${f}`;
    const added = (name: string) => stages.some((x) => x.name === name);
    for (const m of spec.methods) {
      if (m === 'sft') continue;
      const name = stageNames.method(m, fb);
      // a stage this method reads comes first, also when its own method is not on the leaderboard
      const need = NEEDS[m];
      if (need && !added(stageNames.method(need, fb))) stages.push(methodStage(need, stageNames.method(need, fb), spec, job, file, rm, ann));
      if ((m === 'rlp-uml' || m === 'rlp-spg') && !added(`rlp-samples/${f}`)) stages.push(rlpSamplesStage(spec, job, file, fb));
      if (!added(name)) stages.push(methodStage(m, name, spec, job, file, rm, ann));
      if (DECODERS.includes(m)) {
        stages.push(evalStage(stageNames.evaluate(m, fb), [name], (ctx) => file(ctx, name, 'outputs'), m, fb));
        continue;
      }
      const out = stageNames.outputs(m, fb);
      stages.push(outputsStage(out, [name], (ctx) => file(ctx, name, 'model'), `${m}-${f}`));
      stages.push(evalStage(stageNames.evaluate(m, fb), [out], (ctx) => file(ctx, out, 'outputs'), m, fb));
    }
  }
  return stages;
}

/** n outputs per unlabeled instruction from the PPO policy, shared by RLP-UML and RLP-SPG. */
function rlpSamplesStage(spec: PipelineSpec, job: (ctx: StageContext) => JobOptions, file: (ctx: StageContext, dep: string, key: string) => string, fb: string): Stage {
  const P = spec.preset, f = slug(fb), ppoStage = `ppo/${f}`;
  const r = resolveRlpConfig(P.rlp);
  const sampling = { n: r.n, temperature: r.temperature, topP: r.topP, maxNewTokens: r.maxNewTokens, maxInstructions: r.maxInstructions, seed: r.seed };
  return {
    name: `rlp-samples/${f}`, kind: 'rlp-samples', deps: [ppoStage, 'data'], config: { sampling, code: CODE.train() },
    run: async (ctx) => pick((await runRlpSamples(job(ctx), { ppoModel: file(ctx, ppoStage, 'model'), data: file(ctx, 'data', 'unlabeled'), config: P.rlp })).summary,
      ['samples', 'instructions', 'samples/distinct_per_instruction']),
  };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

function methodStage(m: MethodName, name: string, spec: PipelineSpec, job: (ctx: StageContext) => JobOptions,
  file: (ctx: StageContext, dep: string, key: string) => string, rm: string, ann: string): Stage {
  const P = spec.preset, code = CODE.train();
  const model = (ctx: StageContext) => file(ctx, 'sft', 'model');
  const keep = (s: Record<string, unknown>) => pick(s, ['model', 'outputs', 'steps', 'final_loss', 'used_pairs', 'pool', 'eval', 'final', 'rounds', 'bon/reward_best', 'bon/reward_mean',
    'bon/generated_tokens', 'treebon/reward_best', 'treebon/generated_tokens', 'treebon/partial_reward_tokens', 'reward_model', 'reward_model_summary']);
  switch (m) {
    case 'best-of-n': return {
      name, kind: m, deps: ['sft', rm, 'data'], config: { bestOfN: P.bestOfN, code },
      run: async (ctx) => keep((await runBestOfN(job(ctx), { model: model(ctx), rewardModel: file(ctx, rm, 'model'), data: file(ctx, 'data', 'eval'), config: P.bestOfN })).summary),
    };
    case 'expert-iteration': return {
      name, kind: m, deps: ['sft', rm, 'data'], config: { expertIteration: P.expertIteration, code },
      run: async (ctx) => keep((await runExpertIteration(job(ctx), { model: model(ctx), rewardModel: file(ctx, rm, 'model'), data: file(ctx, 'data', 'unlabeled'), config: P.expertIteration })).summary),
    };
    case 'feedme': return {
      name, kind: m, deps: ['sft', ann], config: { feedme: P.feedme, code },
      run: async (ctx) => keep((await runFeedME(job(ctx), { model: model(ctx), preferences: file(ctx, ann, 'preferences'), config: P.feedme })).summary),
    };
    case 'reward-conditioning': return {
      name, kind: m, deps: ['sft', ann], config: { rewardConditioning: P.rewardConditioning, code },
      run: async (ctx) => keep((await runRewardConditioning(job(ctx), { model: model(ctx), preferences: file(ctx, ann, 'preferences'), config: P.rewardConditioning })).summary),
    };
    case 'ppo': return {
      name, kind: m, deps: ['sft', rm, 'data'], config: { ppo: P.ppo, code },
      run: async (ctx) => keep((await runPpo(job(ctx), { model: model(ctx), rewardModel: file(ctx, rm, 'model'), data: file(ctx, 'data', 'unlabeled'), config: P.ppo })).summary),
    };
    case 'quark': return {
      name, kind: m, deps: ['sft', rm, 'data'], config: { quark: P.quark, code },
      run: async (ctx) => keep((await runQuark(job(ctx), { model: model(ctx), rewardModel: file(ctx, rm, 'model'), data: file(ctx, 'data', 'unlabeled'), config: P.quark })).summary),
    };
    case 'dpo': return {
      name, kind: m, deps: ['sft', ann], config: { dpo: P.dpo, code },
      run: async (ctx) => keep((await runDpo(job(ctx), { model: model(ctx), preferences: file(ctx, ann, 'preferences'), evalPreferences: file(ctx, ann, 'heldout'), config: P.dpo })).summary),
    };
    case 'treebon': {
      // the paper's setting: samples of the SFT model, prefixes ranked by the DPO model's implicit reward against SFT
      const dpoStage = name.replace(/^treebon\//, 'dpo/');
      return {
        name, kind: m, deps: ['sft', rm, dpoStage, 'data'], config: { treebon: P.treebon, code },
        run: async (ctx) => keep((await runTreeBoN(job(ctx), { model: model(ctx), rewardModel: file(ctx, rm, 'model'), dpoModel: file(ctx, dpoStage, 'model'),
          data: file(ctx, 'data', 'eval'), config: P.treebon })).summary),
      };
    }
    case 'rlp-uml': case 'rlp-spg': {
      const f = name.split('/')[1], ppoStage = `ppo/${f}`, samples = `rlp-samples/${f}`, variant = m === 'rlp-uml' ? 'uml' : 'spg';
      // RLP retrains the reward model with the first one's settings and reruns PPO with PPO's
      const rlp = { ...P.rlp, rewardModel: P.rewardModel, ppo: P.ppo };
      return {
        name, kind: 'rlp', deps: ['sft', rm, ann, ppoStage, samples, 'data'], config: { rlp, variant, ...(variant === 'spg' ? { equivalence: `farm:${spec.seed}` } : {}), code },
        run: async (ctx) => keep((await runRlp(job(ctx), {
          variant, model: model(ctx), ppoModel: file(ctx, ppoStage, 'model'), rewardModel: file(ctx, rm, 'model'), preferences: file(ctx, ann, 'preferences'),
          evalPreferences: file(ctx, ann, 'heldout'), data: file(ctx, 'data', 'unlabeled'), samples: file(ctx, samples, 'samples'), config: rlp,
          ...(variant === 'spg' ? { equivalence: farmEquivalence(worldOf(spec.seed)), equivalenceName: `farm:${spec.seed}` } : {}),
        })).summary),
      };
    }
    default: throw new Error(`no stage for method ${m}`);
  }
}

/** One evaluation row: win-rate vs the reference outputs by an annotator, with its standard error. */
export interface WinRate { win_rate: number; standard_error: number; n: number }
export interface Evaluation { method: MethodName; feedback: string | null; [evaluator: string]: unknown; gold: { mean: number; standard_error: number; reference: number; n: number }; avg_length: number }

/** Evaluates outputs against the eval split's reference outputs by each evaluator, and by the gold standard. */
export async function evaluateOutputs(world: World, evaluators: string[], seed: number, reference: OutputRow[], outputs: OutputRow[], progress: Progress, dir?: string) {
  const out: Record<string, unknown> = {};
  for (const ev of evaluators) {
    const annotator = await createAnnotator(ev, { world, seed });
    progress.start(`evaluate (${ev})`, outputs.length);
    const r = await evaluateModel(reference, outputs, { annotator, lengthControl: false, onProgress: (d) => progress.update(d) });
    progress.stop();
    if (dir) writeFileSync(join(dir, `annotations_${slug(ev)}.json`), JSON.stringify(r.annotations, null, 1));
    out[ev] = { win_rate: r.metrics.win_rate, standard_error: r.metrics.standard_error, n: r.metrics.n_total } satisfies WinRate;
  }
  const grades = outputs.map((o) => world.grade(o.instruction, o.input, o.output).total);
  const refGrades = reference.map((o) => world.grade(o.instruction, o.input, o.output).total);
  const m = grades.reduce((a, b) => a + b, 0) / grades.length;
  const sd = Math.sqrt(grades.reduce((a, g) => a + (g - m) ** 2, 0) / Math.max(1, grades.length - 1));
  out.gold = { mean: m, standard_error: sd / Math.sqrt(grades.length), reference: refGrades.reduce((a, b) => a + b, 0) / refGrades.length, n: grades.length };
  out.avg_length = outputs.reduce((a, o) => a + o.output.length, 0) / outputs.length;
  return out;
}

async function evaluateStage(ctx: StageContext, world: World, evaluators: string[], seed: number, evalFile: string, outputsFile: string, method: MethodName, fb: string | null) {
  const reference = readInstructions(evalFile, 'eval split', true).map((r) => ({ instruction: r.instruction, input: r.input, output: r.output, generator: 'reference' }));
  const outputs = JSON.parse(readFileSync(outputsFile, 'utf8')) as OutputRow[];
  const r = await evaluateOutputs(world, evaluators, seed, reference, outputs, ctx.progress, ctx.dir);
  const result = { method, feedback: fb, ...r };
  writeFileSync(join(ctx.dir, 'metrics.json'), JSON.stringify(result, null, 2));
  return result;
}
