// File-in, file-out runs of each method, with a run folder (run-folder.ts): what `farm <method>` calls and
// what the experiments' stages call, so a pipeline step and the command a user types are the same code.
// Every job checks its inputs (files, model folders, tokenizers, config keys) before any training starts.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, type Model, type ModelConfig } from '../engine/index.ts';
import { writeFileAtomic } from '../data/json.ts';
import { formatPrompt, TEMPLATE_PHRASES, type AlpacaRecord } from '../data/template.ts';
import { Tokenizer, trainBpe } from '../tokenizer/index.ts';
import { bestOfN, BEST_OF_N_DEFAULTS, resolveBestOfNConfig, type BestOfNConfig } from './best-of-n.ts';
import {
  ConfigError, controlIds, dataTags, generateOutputs, GENERATION_DEFAULTS, NO_CONTROL, resolveConfig, scalarModelFrom, tokenizerFingerprint,
  type Conditioning, type GenerationConfig, type PromptControl, type TrainingWarning,
} from './common.ts';
import { DPO_METHOD_DEFAULTS, dpo, resolveDpoConfig, type DPOMethodConfig } from './dpo.ts';
import { expertIteration, expertIterationResumeStep, resolveExpertIterationConfig, type ExpertIterationConfig } from './expert-iteration.ts';
import { feedme, preferredRecords } from './feedme.ts';
import { ppo, resolvePpoMethodConfig, type PPOMethodConfig } from './ppo.ts';
import { quark, resolveQuarkConfig, type QuarkConfig } from './quark.ts';
import { rewardConditioning } from './reward-conditioning.ts';
import { resolveRewardModelConfig, REWARD_MODEL_DEFAULTS, rewardScorer, trainRewardModel, usablePreferences, type PreferenceRecord, type RewardModelConfig } from './reward-model.ts';
import { RunFolder } from './run-folder.ts';
import { resolveSftConfig, sft, type SftConfig } from './sft.ts';
import { resolveTreeBoNConfig, TREEBON_DEFAULTS, treeBoN, type TreeBoNConfig } from './treebon.ts';
import { resolveRlpConfig, rlpRewardModel, RLP_VARIANTS, sampleRlpOutputs, type Equivalence, type RLPConfig, type RLPSample, type RLPVariant } from './rlp.ts';
import { latestCheckpoint } from './checkpoint.ts';

/** How a job reports progress (the CLI draws a bar or prints lines; experiments show stage and ETA). */
export interface Progress {
  start(label: string, total: number): void;
  update(done: number, metrics?: Record<string, number>): void;
  stop(): void;
  log(line: string): void;
  warn(line: string): void;
}
export const SILENT: Progress = { start() {}, update() {}, stop() {}, log() {}, warn() {} };

export interface JobOptions {
  /** The run folder. */
  outputDir: string;
  /** Seed of model initialization and of every method seed the config leaves unset (default 1). */
  seed?: number;
  threads?: number;
  /** Checkpoint every this many steps (0: only at the end; default 20). */
  saveSteps?: number;
  /** Checkpoints kept (default 2; Infinity keeps all, e.g. to evaluate each later). */
  keepCheckpoints?: number;
  resume?: boolean;
  force?: boolean;
  /** Check every input, model and setting (the run folder's too), then throw DryRun before any work or write. */
  dryRun?: boolean;
  /** An engine to share (default: a new one with threads and seed). */
  engine?: Engine;
  progress?: Progress;
}

export interface JobResult { dir: string; summary: Record<string, unknown> }

// ---- inputs ----

interface Row { value: Record<string, unknown>; line: number }

/** Objects of a JSON array or JSON Lines file, with their line numbers. */
export function readRows(file: string, flag: string): Row[] {
  if (!existsSync(file)) throw new ConfigError(`${flag} ${file}: no such file`);
  if (statSync(file).isDirectory()) throw new ConfigError(`${flag} ${file}: is a folder, expected a JSON or JSONL file`);
  const text = readFileSync(file, 'utf8');
  const rows: Row[] = [];
  if (text.trimStart().startsWith('[')) {
    let arr: unknown;
    try { arr = JSON.parse(text); } catch (e) { throw new ConfigError(`${flag} ${file}: invalid JSON (${(e as Error).message})`); }
    (arr as unknown[]).forEach((v, i) => rows.push({ value: v as Record<string, unknown>, line: i + 1 }));
  } else {
    text.split('\n').forEach((l, i) => {
      if (!l.trim()) return;
      try { rows.push({ value: JSON.parse(l), line: i + 1 }); } catch (e) { throw new ConfigError(`${flag} ${file}:${i + 1}: invalid JSON (${(e as Error).message})`); }
    });
  }
  rows.forEach((r) => { if (!r.value || typeof r.value !== 'object' || Array.isArray(r.value)) throw new ConfigError(`${flag} ${file}: record ${r.line} is not an object`); });
  if (rows.length === 0) throw new ConfigError(`${flag} ${file}: no records`);
  return rows;
}

function str(r: Row, key: string, file: string, flag: string, optional = false): string {
  const v = r.value[key];
  if (v === undefined || v === null) { if (optional) return ''; throw new ConfigError(`${flag} ${file}: record ${r.line} has no "${key}"`); }
  if (typeof v !== 'string') throw new ConfigError(`${flag} ${file}: record ${r.line}: "${key}" must be a string, got ${typeof v}`);
  return v;
}

/** Instructions (alpaca_eval / AlpacaFarm fields: instruction, input; output when `withOutput`). */
export function readInstructions(file: string, flag: string, withOutput = false): (AlpacaRecord & { input: string; dataset?: string; world_seed?: number })[] {
  return readRows(file, flag).map((r) => ({
    instruction: str(r, 'instruction', file, flag), input: str(r, 'input', file, flag, true),
    output: withOutput ? str(r, 'output', file, flag) : '', ...dataTags(r.value),
  }));
}

/** Preference records; refuses a file with no usable pair (draws, failed labels and identical outputs do not count). */
export function readPreferences(file: string, flag: string): PreferenceRecord[] {
  const rows = readRows(file, flag);
  const recs = rows.map((r) => {
    const p = r.value.preference;
    if (p !== undefined && p !== null && (typeof p !== 'number' || !(p === 0 || (p >= 1 && p <= 2))))
      throw new ConfigError(`${flag} ${file}: record ${r.line}: preference must be 1, 2, 0 (draw), a soft value in [1, 2] or null, got ${JSON.stringify(p)}`);
    return { instruction: str(r, 'instruction', file, flag), input: str(r, 'input', file, flag, true), output_1: str(r, 'output_1', file, flag),
      output_2: str(r, 'output_2', file, flag), preference: (p ?? NaN) as number };
  });
  if (usablePreferences(recs).length === 0) {
    const draws = recs.filter((r) => r.preference === 0).length, none = recs.filter((r) => Number.isNaN(r.preference)).length;
    const same = recs.filter((r) => r.output_1 === r.output_2).length;
    throw new ConfigError(`${flag} ${file}: no usable pair among ${recs.length} records (${draws} draws, ${none} without a label, ${same} with identical outputs); label the pairs first (farm annotate)`);
  }
  return recs;
}

// ---- model folders ----

/** A model folder, or a run folder whose model/ holds the final checkpoint; checks the files are there. */
export function resolveModelDir(dir: string, flag: string): string {
  if (!existsSync(dir)) throw new ConfigError(`${flag} ${dir}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new ConfigError(`${flag} ${dir}: is a file, expected a model folder (config.json, model.safetensors, tokenizer.json)`);
  const d = !existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model', 'config.json')) ? join(dir, 'model') : dir;
  const missing = ['config.json', 'tokenizer.json'].filter((f) => !existsSync(join(d, f)));
  if (!existsSync(join(d, 'model.safetensors')) && !existsSync(join(d, 'model.safetensors.index.json'))) missing.push('model.safetensors');
  if (missing.length) {
    const hint = existsSync(join(dir, 'run.json')) ? ' (an unfinished run? its model/ appears when it completes)' : '';
    throw new ConfigError(`${flag} ${dir}: not a model folder, missing ${missing.join(', ')}${hint}`);
  }
  return d;
}

export interface LoadedModel { dir: string; model: Model; tokenizer: Tokenizer; conditioning: Conditioning | null }

function readConditioning(dir: string): Conditioning | null {
  const f = join(dir, 'conditioning.json');
  if (!existsSync(f)) return null;
  const c = JSON.parse(readFileSync(f, 'utf8')) as Conditioning;
  if (!Array.isArray(c.tokens) || typeof c.method !== 'string') throw new ConfigError(`${f}: expected {method, tokens, generateWith}`);
  return c;
}

/** Loads a model folder and its tokenizer and checks they fit each other and the role (policy or reward model). */
export async function loadModelFolder(engine: Engine, dir: string, flag: string, role: 'policy' | 'reward model'): Promise<LoadedModel> {
  const d = resolveModelDir(dir, flag);
  let tokenizer: Tokenizer;
  try { tokenizer = Tokenizer.load(d); } catch (e) { throw new ConfigError(`${flag} ${dir}: ${(e as Error).message}`); }
  let model: Model;
  try { model = await engine.loadModel(d); } catch (e) { throw new ConfigError(`${flag} ${dir}: ${(e as Error).message}`); }
  if (role === 'policy' && !model.config.lm_head) throw new ConfigError(`${flag} ${dir}: a reward model (no LM head), expected a policy that can generate`);
  if (role === 'reward model' && !model.config.scalar_head) throw new ConfigError(`${flag} ${dir}: not a reward model (no scalar head / score.weight)`);
  if (tokenizer.vocabSize > model.config.vocab_size)
    throw new ConfigError(`${flag} ${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.config.vocab_size}: tokenizer.json does not belong to this model`);
  return { dir: d, model, tokenizer, conditioning: readConditioning(d) };
}

/** Refuses a reward model whose tokenizer differs from the policy's (rollouts are scored on the policy's token ids). */
export function checkSameTokenizer(policy: LoadedModel, rm: LoadedModel, flags = ['--model', '--reward-model']): void {
  const a = tokenizerFingerprint(policy.tokenizer, policy.conditioning?.tokens ?? []), b = tokenizerFingerprint(rm.tokenizer);
  if (a !== b) throw new ConfigError(`${flags[1]} ${rm.dir} has a different tokenizer than ${flags[0]} ${policy.dir} (tokenizer.json differs): rewards are computed on the policy's token ids, so the reward model must share the policy's tokenizer`);
}

/** Writes a model folder: config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json) and conditioning.json when conditioned. */
export async function saveModelFolder(engine: Engine, dir: string, model: Model, tokenizer: Tokenizer, conditioning: Conditioning | null = null): Promise<void> {
  await engine.saveModel(model, dir);
  tokenizer.save(join(dir, 'tokenizer.json'));
  if (conditioning) writeFileSync(join(dir, 'conditioning.json'), `${JSON.stringify(conditioning, null, 2)}\n`);
}

// ---- shared job plumbing ----

interface Ctx { engine: Engine; run: RunFolder; progress: Progress; saveSteps: number; seed: number }

/** Rollouts need room in the policy's context for a prompt and maxNewTokens: checked before the run folder is made. */
function checkRoom(what: string, c: { maxNewTokens: number; maxPromptLength?: number }, policy: Model, min: number): void {
  const P = policy.config.max_position_embeddings;
  if (!((c.maxPromptLength ?? P - c.maxNewTokens) >= min)) {
    throw new ConfigError(`${what}: --max-new-tokens ${c.maxNewTokens} leaves no room for a prompt in the policy's context of ${P} tokens; lower it (or set --max-prompt-length)`);
  }
}

/** The job's engine (checks seed and save steps first). */
async function engineOf(o: JobOptions): Promise<Engine> {
  const seed = o.seed ?? 1, saveSteps = o.saveSteps ?? 20;
  if (!Number.isInteger(seed) || seed < 0) throw new ConfigError(`seed must be an integer >= 0, got ${seed}`);
  if (!Number.isInteger(saveSteps) || saveSteps < 0) throw new ConfigError(`save steps must be an integer >= 0, got ${saveSteps}`);
  return o.engine ?? Engine.create({ threads: o.threads ?? 2, seed });
}

/** Opens the run folder, after every input was checked and loaded. */
function open(o: JobOptions, engine: Engine, command: string, config: Record<string, unknown>, inputs: Record<string, string | undefined>,
  resumeStepOf?: (dir: string) => number | null): Ctx {
  const seed = o.seed ?? 1;
  const defined = Object.fromEntries(Object.entries(inputs).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const run = RunFolder.open({ dir: o.outputDir, command, config, seed, inputs: defined, resume: o.resume, force: o.force, dryRun: o.dryRun, resumeStepOf });
  return { engine, run, progress: o.progress ?? SILENT, saveSteps: o.saveSteps ?? 20, seed };
}

/** Runs `body` inside the run: progress, failure recorded in run.json (the error is rethrown). */
async function within(ctx: Ctx, body: () => Promise<Record<string, unknown>>): Promise<JobResult> {
  try {
    const summary = await body();
    ctx.progress.stop();
    ctx.run.finish(summary);
    return { dir: ctx.run.dir, summary };
  } catch (e) {
    ctx.progress.stop();
    ctx.run.fail(e);
    throw e;
  }
}

const checkpointOf = (ctx: Ctx, o: JobOptions) => ({ dir: ctx.run.checkpointDir, every: ctx.saveSteps, resume: o.resume, keep: o.keepCheckpoints ?? 2 });
const warner = (ctx: Ctx) => (w: TrainingWarning) => { ctx.run.warn(w); ctx.progress.warn(w.message); };

/** Numbers only, with TRL's names for the engine's camelCase fields. */
export function metricsLine(log: object): Record<string, number> {
  const rename: Record<string, string> = { gradNorm: 'grad_norm', lr: 'learning_rate', tokensPerSecond: 'time/tokens_per_second' };
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(log)) if (typeof v === 'number' && k !== 'totalSteps') out[rename[k] ?? k] = v;
  return out;
}

/** Step logger: metrics.jsonl line and progress. */
function stepLogger(ctx: Ctx, show: string[]) {
  return (log: object) => {
    const m = metricsLine(log);
    ctx.run.log(m);
    ctx.progress.update(m.step, Object.fromEntries(show.filter((k) => k in m).map((k) => [k, m[k]])));
  };
}

async function writeEvalOutputs(ctx: Ctx, policy: Model, tok: Tokenizer, evalData: string | undefined, gen: GenerationConfig, control: PromptControl, generator: string) {
  if (!evalData) return {};
  const records = readInstructions(evalData, '--eval-data');
  ctx.progress.start('outputs', records.length);
  const r = await generateOutputs(ctx.engine, policy, tok, records, gen, generator, control, (d) => ctx.progress.update(d));
  ctx.progress.stop();
  writeFileAtomic(ctx.run.path('model_outputs.json'), `${JSON.stringify(r.outputs, null, 2)}\n`);
  if (r.tooLong) ctx.progress.warn(`${r.tooLong} evaluation prompts do not fit the context; their outputs are empty`);
  return { outputs: ctx.run.path('model_outputs.json'), 'outputs/tokens_per_second': r.tokens / Math.max(r.seconds, 1e-9), 'outputs/too_long': r.tooLong };
}

function resolveGeneration(over: Partial<GenerationConfig> | undefined, seed: number): GenerationConfig {
  return resolveConfig('generation', GENERATION_DEFAULTS as GenerationConfig, { seed, ...over }, {
    int: [['maxNewTokens', 1], ['topK', 0], ['seed', 0], ['promptBatchSize', 1]], range: [['temperature', 0, Infinity], ['topP', Number.MIN_VALUE, 1]],
  });
}

const lastOf = (run: RunFolder): Record<string, number> => {
  const lines = readFileSync(run.metricsFile, 'utf8').trim().split('\n').filter(Boolean);
  return lines.length ? JSON.parse(lines[lines.length - 1]) : {};
};

const controlOf = (m: LoadedModel): PromptControl => m.conditioning
  ? { prefix: controlIds(m.tokenizer, m.conditioning), strip: m.conditioning.tokens.map((t) => m.tokenizer.tokenToId(t)!).filter((x) => x !== null) }
  : NO_CONTROL;

/** Name written to outputs' generator field: the run folder's name. */
const generatorName = (dir: string) => dir.replace(/\/+$/, '').split('/').pop() || 'model';

// ---- the jobs ----

export interface SftJob {
  /** Demonstrations: instruction, input, output. */
  data: string;
  /** Start from this model folder; else a new model of `architecture` with `tokenizer` (or a BPE trained on the data). */
  model?: string;
  architecture?: Omit<ModelConfig, 'vocab_size'>;
  tokenizer?: string;
  vocabSize?: number;
  evalData?: string;
  config?: SftConfig;
  generation?: Partial<GenerationConfig>;
}

export async function runSft(o: JobOptions, j: SftJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveSftConfig('SFT', { seed, ...j.config });
  const gen = resolveGeneration(j.generation, seed);
  const records = readInstructions(j.data, '--data', true);
  if (!j.model && !j.architecture) throw new ConfigError('sft: give --model (a folder to start from) or an architecture for a new model');
  if (j.model && (j.architecture || j.tokenizer)) throw new ConfigError('sft: --model starts from a checkpoint; --architecture and --tokenizer are for a new model');
  if (j.vocabSize !== undefined && (!Number.isInteger(j.vocabSize) || j.vocabSize < 300)) throw new ConfigError(`vocab size must be an integer >= 300, got ${j.vocabSize}`);
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  let model: Model, tok: Tokenizer, cond: Conditioning | null = null;
  if (j.model) ({ model, tokenizer: tok, conditioning: cond } = await loadModelFolder(engine, j.model, '--model', 'policy'));
  else {
    if (j.tokenizer) { try { tok = Tokenizer.load(j.tokenizer); } catch (e) { throw new ConfigError(`--tokenizer ${j.tokenizer}: ${(e as Error).message}`); } }
    else tok = trainBpe(records.map((r) => `${formatPrompt(r)}${r.output}`), { vocabSize: j.vocabSize ?? 1024, phrases: [...TEMPLATE_PHRASES] });
    try { model = engine.createModel({ ...j.architecture!, vocab_size: tok.vocabSize }, { seed }); } catch (e) { throw new ConfigError(`architecture: ${(e as Error).message}`); }
  }
  const ctx = open(o, engine, 'sft', { method: config, generation: gen, init: j.model ? { model: 'from --model' } : { architecture: j.architecture, vocabSize: j.tokenizer ? null : j.vocabSize ?? 1024 } },
    { data: j.data, model: j.model, tokenizer: j.tokenizer, evalData: j.evalData });
  return within(ctx, async () => {
    ctx.progress.log(`sft: ${records.length} demonstrations, ${(model.numParameters / 1e6).toFixed(2)}M parameters`);
    let total = 0;
    const r = await sft(ctx.engine, model, tok, records, config, {
      checkpoint: checkpointOf(ctx, o),
      onStep: (l) => { if (!total) { total = l.totalSteps; ctx.progress.start('sft', total); } stepLogger(ctx, ['loss'])(l); },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, model, tok, cond);
    const outs = await writeEvalOutputs(ctx, model, tok, j.evalData, gen, NO_CONTROL, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, steps: r.steps, final_loss: r.finalLoss, mean_loss_last_epoch: r.meanLossLastEpoch, resumed_from: r.resumedFrom ?? null, ...outs };
  });
}

export interface PairsJob { model: string; data: string; generation?: Partial<GenerationConfig> }

/** Two samples per instruction (AlpacaFarm's outputs_pairs.json) for annotation; default temperature 1.0. */
export async function runPairs(o: JobOptions, j: PairsJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const gen = resolveGeneration({ temperature: 1, ...j.generation }, seed);
  const records = readInstructions(j.data, '--data');
  const engine = await engineOf(o);
  const p = await loadModelFolder(engine, j.model, '--model', 'policy');
  const ctx = open(o, engine, 'pairs', { generation: gen }, { model: j.model, data: j.data });
  return within(ctx, async () => {
    const gname = generatorName(j.model === p.dir ? j.model : join(p.dir, '..'));
    ctx.progress.start('pairs', records.length);
    // two independent streams per record: seeds s and s + 1 (record i is stream i in each)
    const a = await generateOutputs(ctx.engine, p.model, p.tokenizer, records, gen, gname, controlOf(p), (d) => ctx.progress.update(d / 2));
    const b = await generateOutputs(ctx.engine, p.model, p.tokenizer, records, { ...gen, seed: gen.seed + 1 }, gname, controlOf(p), (d) => ctx.progress.update(records.length / 2 + d / 2));
    const pairs = records.map((r, i) => ({ instruction: r.instruction, input: r.input, output_1: a.outputs[i].output, output_2: b.outputs[i].output, generator_1: gname, generator_2: gname, ...dataTags(r) }));
    writeFileAtomic(ctx.run.path('pairs.json'), `${JSON.stringify(pairs, null, 2)}\n`);
    const identical = pairs.filter((x) => x.output_1 === x.output_2).length;
    const m = { pairs: pairs.length, identical, 'time/tokens_per_second': (a.tokens + b.tokens) / (a.seconds + b.seconds) };
    ctx.run.log({ step: 1, ...m });
    return { pairs_file: ctx.run.path('pairs.json'), ...m };
  });
}

export interface RewardModelJob { model: string; preferences: string; evalPreferences?: string; config?: RewardModelConfig }

/** A reward model initialized from the policy's weights with a zero scalar head (AlpacaFarm). */
export async function runRewardModel(o: JobOptions, j: RewardModelJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveRewardModelConfig({ seed, ...j.config });
  const prefs = readPreferences(j.preferences, '--preferences');
  const held = j.evalPreferences ? readPreferences(j.evalPreferences, '--eval-preferences') : undefined;
  const engine = await engineOf(o);
  const p = await loadModelFolder(engine, j.model, '--model', 'policy');
  const ctx = open(o, engine, 'reward-model', { method: config }, { model: j.model, preferences: j.preferences, evalPreferences: j.evalPreferences });
  return within(ctx, async () => {
    const rm = scalarModelFrom(ctx.engine, p.model);
    let started = false;
    const r = await trainRewardModel(ctx.engine, rm, p.tokenizer, prefs, config, {
      evalRecords: held, checkpoint: checkpointOf(ctx, o),
      onStep: (l) => { if (!started) { ctx.progress.start('reward model', l.totalSteps); started = true; } stepLogger(ctx, ['loss', 'accuracy'])(l); },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, rm, p.tokenizer);
    return { model: ctx.run.modelDir, steps: r.steps, pairs: usablePreferences(prefs).length, train_accuracy_last_epoch: r.lastEpochAccuracy,
      ...(r.eval ? { eval_accuracy: r.eval.accuracy, eval_loss: r.eval.loss, eval_pairs: r.eval.pairs } : {}), resumed_from: r.resumedFrom ?? null };
  });
}

export interface ScoreJob { rewardModel: string; data: string }

/** Rewards of outputs (adds `reward`) or of pairs (adds `reward_1`, `reward_2`; agreement with labels when present). */
export async function runScore(o: JobOptions, j: ScoreJob): Promise<JobResult> {
  const rows = readRows(j.data, '--data');
  const isPairs = typeof rows[0].value.output_1 === 'string';
  for (const r of rows) for (const k of isPairs ? ['instruction', 'output_1', 'output_2'] : ['instruction', 'output']) str(r, k, j.data, '--data');
  const engine = await engineOf(o);
  const rm = await loadModelFolder(engine, j.rewardModel, '--reward-model', 'reward model');
  const ctx = open(o, engine, 'score', {}, { rewardModel: j.rewardModel, data: j.data });
  return within(ctx, async () => {
    const scorer = rewardScorer(ctx.engine, rm.model, rm.tokenizer);
    const v = rows.map((r) => r.value as Record<string, unknown> & { instruction: string; input?: string });
    const pairs = v.map((r) => ({ instruction: r.instruction, input: (r.input as string) ?? '', output_1: (isPairs ? r.output_1 : r.output) as string, output_2: (isPairs ? r.output_2 : r.output) as string }));
    ctx.progress.start('score', pairs.length);
    const scores: [number, number][] = [];
    for (let i = 0; i < pairs.length; i += 64) { scores.push(...await scorer.score(pairs.slice(i, i + 64))); ctx.progress.update(Math.min(pairs.length, i + 64)); }
    const out = v.map((r, i) => isPairs ? { ...r, reward_1: scores[i][0], reward_2: scores[i][1] } : { ...r, reward: scores[i][0] });
    writeFileAtomic(ctx.run.path('scored.json'), `${JSON.stringify(out, null, 2)}\n`);
    const labelled = isPairs ? v.map((r, i) => ({ p: r.preference, s: scores[i] })).filter((x) => x.p === 1 || x.p === 2) : [];
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const m: Record<string, number> = isPairs
      ? { records: out.length, 'reward/mean_1': mean(scores.map((s) => s[0])), 'reward/mean_2': mean(scores.map((s) => s[1])),
          ...(labelled.length ? { agreement_with_labels: labelled.filter((x) => (x.s[1] > x.s[0] ? 2 : 1) === x.p).length / labelled.length, labelled: labelled.length } : {}) }
      : { records: out.length, 'reward/mean': mean(scores.map((s) => s[0])) };
    ctx.run.log({ step: 1, ...m });
    return { scored_file: ctx.run.path('scored.json'), ...m };
  });
}

export interface BestOfNJob { model: string; rewardModel: string; data: string; config?: Partial<BestOfNConfig> }

export async function runBestOfN(o: JobOptions, j: BestOfNJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveBestOfNConfig({ seed, ...j.config });
  const records = readInstructions(j.data, '--data');
  const engine = await engineOf(o);
  const p = await loadModelFolder(engine, j.model, '--model', 'policy');
  const rm = await loadModelFolder(engine, j.rewardModel, '--reward-model', 'reward model');
  checkSameTokenizer(p, rm);
  const ctx = open(o, engine, 'best-of-n', { method: { ...BEST_OF_N_DEFAULTS, ...config } }, { model: j.model, rewardModel: j.rewardModel, data: j.data });
  return within(ctx, async () => {
    ctx.progress.start(`best-of-${config.n}`, records.length);
    const r = await bestOfN(ctx.engine, p.model, rm.model, p.tokenizer, records, {
      ...config, generator: config.generator ?? generatorName(o.outputDir), control: controlOf(p), onProgress: (x) => ctx.progress.update(x.done),
    });
    const outputs = r.outputs.map((x, i) => ({ instruction: x.instruction, input: x.input, output: x.output, generator: x.generator, reward: x.reward,
      ...dataTags(records[i]) }));
    writeFileAtomic(ctx.run.path('model_outputs.json'), `${JSON.stringify(outputs, null, 2)}\n`);
    if (r.candidates) writeFileAtomic(ctx.run.path('candidates.json'), JSON.stringify(r.candidates.map((c, i) => ({ instruction: records[i].instruction, input: records[i].input, samples: c.map((s) => ({ output: s.output, reward: s.reward })) }))));
    const m = { step: 1, ...r.metrics, 'time/tokens_per_second': r.outputs.length ? (r.metrics['bon/samples'] * r.metrics['bon/response_length']) / (r.metrics['time/generate_ms'] / 1000) : 0 };
    ctx.run.log(m);
    return { outputs: ctx.run.path('model_outputs.json'), ...m };
  });
}

/** The policy + reward model pair of the RL jobs, checked before work. */
async function policyAndReward(engine: Engine, model: string, rewardModel: string) {
  const p = await loadModelFolder(engine, model, '--model', 'policy');
  const rm = await loadModelFolder(engine, rewardModel, '--reward-model', 'reward model');
  checkSameTokenizer(p, rm);
  if (p.conditioning) throw new ConfigError(`--model ${model} is a ${p.conditioning.method} policy with control tokens; start this method from an unconditioned (SFT) model`);
  return { p, rm };
}

export interface ExpertIterationJob { model: string; rewardModel: string; data: string; evalData?: string; config?: Partial<ExpertIterationConfig>; generation?: Partial<GenerationConfig> }

export async function runExpertIteration(o: JobOptions, j: ExpertIterationJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const given = j.config ?? {};
  const config = resolveExpertIterationConfig({ ...given, bestOfN: { seed, ...given.bestOfN }, sft: { seed, ...given.sft } });
  const gen = resolveGeneration(j.generation, seed);
  const records = readInstructions(j.data, '--data');
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const { p, rm } = await policyAndReward(engine, j.model, j.rewardModel);
  const ctx = open(o, engine, 'expert-iteration', { method: { ...config, minReward: Number.isFinite(config.minReward) ? config.minReward : null }, generation: gen },
    { model: j.model, rewardModel: j.rewardModel, data: j.data, evalData: j.evalData }, expertIterationResumeStep);
  return within(ctx, async () => {
    let started = 0;
    let bonStarted = false;
    const onProgress = (x: { done: number; total: number }) => { if (!bonStarted) { ctx.progress.start(`expert iteration: best-of-${config.bestOfN.n ?? 16}`, x.total); bonStarted = true; } ctx.progress.update(x.done); };
    const r = await expertIteration(ctx.engine, p.model, rm.model, p.tokenizer, records, {
      ...config, bestOfN: { ...config.bestOfN, onProgress }, onRound: (x) => { ctx.run.log({ step: started, round: x.round, kept: x.kept, ...x.bestOfN }); started = 0; },
    }, {
      checkpoint: checkpointOf(ctx, o),
      onStep: (l) => {
        if (started === 0) { bonStarted = false; ctx.progress.start(`expert iteration, round ${l.round}: sft`, l.totalSteps); }
        started = l.step;
        ctx.run.log(metricsLine(l));
        ctx.progress.update(l.roundStep, { loss: l.loss });
      },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, p.model, p.tokenizer);
    const outs = await writeEvalOutputs(ctx, p.model, p.tokenizer, j.evalData, gen, NO_CONTROL, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, rounds: r.rounds, ...outs };
  });
}

export interface PreferenceSftJob { model: string; preferences: string; evalData?: string; config?: SftConfig; generation?: Partial<GenerationConfig> }

export async function runFeedME(o: JobOptions, j: PreferenceSftJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveSftConfig('FeedME', { seed, ...j.config });
  const gen = resolveGeneration(j.generation, seed);
  const prefs = readPreferences(j.preferences, '--preferences');
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const p = await loadModelFolder(engine, j.model, '--model', 'policy');
  const ctx = open(o, engine, 'feedme', { method: config, generation: gen }, { model: j.model, preferences: j.preferences, evalData: j.evalData });
  return within(ctx, async () => {
    let total = 0;
    const r = await feedme(ctx.engine, p.model, p.tokenizer, prefs, config, {
      checkpoint: checkpointOf(ctx, o),
      onStep: (l) => { if (!total) { total = l.totalSteps; ctx.progress.start('feedme', total); } stepLogger(ctx, ['loss'])(l); },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, p.model, p.tokenizer, p.conditioning);
    const outs = await writeEvalOutputs(ctx, p.model, p.tokenizer, j.evalData, gen, controlOf(p), generatorName(o.outputDir));
    return { model: ctx.run.modelDir, steps: r.steps, used_pairs: r.used, skipped_pairs: r.skipped, final_loss: r.finalLoss, resumed_from: r.resumedFrom ?? null, ...outs };
  });
}

export async function runRewardConditioning(o: JobOptions, j: PreferenceSftJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveSftConfig('reward conditioning', { seed, ...j.config });
  const gen = resolveGeneration(j.generation, seed);
  const prefs = readPreferences(j.preferences, '--preferences');
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const p = await loadModelFolder(engine, j.model, '--model', 'policy');
  if (p.conditioning) throw new ConfigError(`--model ${j.model} is already a ${p.conditioning.method} policy; start reward conditioning from an unconditioned (SFT) model`);
  const ctx = open(o, engine, 'reward-conditioning', { method: config, generation: gen }, { model: j.model, preferences: j.preferences, evalData: j.evalData });
  return within(ctx, async () => {
    let total = 0;
    const r = await rewardConditioning(ctx.engine, p.model, p.tokenizer, prefs, config, {
      checkpoint: checkpointOf(ctx, o),
      onStep: (l) => { if (!total) { total = l.totalSteps; ctx.progress.start('reward conditioning', total); } stepLogger(ctx, ['loss'])(l); },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, r.model, r.tokenizer, r.conditioning);
    const outs = await writeEvalOutputs(ctx, r.model, r.tokenizer, j.evalData, gen, r.control, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, steps: r.steps, used_pairs: r.used, skipped_pairs: r.skipped, final_loss: r.finalLoss, resumed_from: r.resumedFrom ?? null, ...outs };
  });
}

export interface RLJob<C> { model: string; rewardModel: string; data: string; evalData?: string; config?: Partial<C>; generation?: Partial<GenerationConfig> }

export async function runPpo(o: JobOptions, j: RLJob<PPOMethodConfig>): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const { c: config } = resolvePpoMethodConfig({ rolloutSeed: seed, ...j.config });
  const gen = resolveGeneration(j.generation, seed);
  const prompts = readInstructions(j.data, '--data');
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const { p, rm } = await policyAndReward(engine, j.model, j.rewardModel);
  checkRoom('ppo', config, p.model, 1);
  const ctx = open(o, engine, 'ppo', { method: config, generation: gen }, { model: j.model, rewardModel: j.rewardModel, data: j.data, evalData: j.evalData });
  return within(ctx, async () => {
    ctx.progress.start('ppo', config.steps);
    const r = await ppo(ctx.engine, {
      policy: p.model, rewardModel: rm.model, tokenizer: p.tokenizer, prompts, config,
      checkpoint: checkpointOf(ctx, o), onWarning: warner(ctx), onStep: stepLogger(ctx, ['objective/scores', 'objective/kl']),
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, p.model, p.tokenizer);
    const outs = await writeEvalOutputs(ctx, p.model, p.tokenizer, j.evalData, gen, NO_CONTROL, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, steps: r.steps, skipped_prompts: r.skippedPrompts, resumed_from: r.resumedFrom ?? null, final: lastOf(ctx.run), ...outs };
  });
}

export async function runQuark(o: JobOptions, j: RLJob<QuarkConfig>): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveQuarkConfig({ seed, ...j.config });
  const gen = resolveGeneration(j.generation, seed);
  const prompts = readInstructions(j.data, '--data');
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const { p, rm } = await policyAndReward(engine, j.model, j.rewardModel);
  checkRoom('quark', config, p.model, 2);
  const ctx = open(o, engine, 'quark', { method: config, generation: gen }, { model: j.model, rewardModel: j.rewardModel, data: j.data, evalData: j.evalData });
  return within(ctx, async () => {
    ctx.progress.start('quark', config.steps);
    const r = await quark(ctx.engine, {
      policy: p.model, reward: rm.model, tokenizer: p.tokenizer, prompts, config,
      checkpoint: checkpointOf(ctx, o), onWarning: warner(ctx), onStep: stepLogger(ctx, ['objective/scores', 'quark/best_quantile_reward']),
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, r.model, r.tokenizer, r.conditioning);
    const outs = await writeEvalOutputs(ctx, r.model, r.tokenizer, j.evalData, gen, r.control, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, steps: r.steps, pool: r.pool.length, skipped_prompts: r.skippedPrompts, resumed_from: r.resumedFrom ?? null, final: lastOf(ctx.run), ...outs };
  });
}

export interface DpoJob { model: string; preferences: string; evalPreferences?: string; evalData?: string; config?: Partial<DPOMethodConfig>; generation?: Partial<GenerationConfig> }

export async function runDpo(o: JobOptions, j: DpoJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveDpoConfig({ seed, ...j.config });
  const gen = resolveGeneration(j.generation, seed);
  const prefs = readPreferences(j.preferences, '--preferences');
  const held = j.evalPreferences ? readPreferences(j.evalPreferences, '--eval-preferences') : undefined;
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const p = await loadModelFolder(engine, j.model, '--model', 'policy');
  if (p.conditioning) throw new ConfigError(`--model ${j.model} is a ${p.conditioning.method} policy with control tokens; start DPO from an unconditioned (SFT) model`);
  const ctx = open(o, engine, 'dpo', { method: { ...DPO_METHOD_DEFAULTS, ...config }, generation: gen },
    { model: j.model, preferences: j.preferences, evalPreferences: j.evalPreferences, evalData: j.evalData });
  return within(ctx, async () => {
    let started = false;
    const r = await dpo(ctx.engine, {
      policy: p.model, tokenizer: p.tokenizer, pairs: prefs, evalPairs: held, config, checkpoint: checkpointOf(ctx, o),
      onStep: (l) => {
        if (!started) { ctx.progress.start('dpo', Math.min(config.maxSteps ?? Infinity, Math.ceil(preferredRecords(prefs).records.length / config.batchSize) * config.epochs)); started = true; }
        stepLogger(ctx, ['loss', 'rewards/accuracies'])(l);
      },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, p.model, p.tokenizer);
    const outs = await writeEvalOutputs(ctx, p.model, p.tokenizer, j.evalData, gen, NO_CONTROL, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, steps: r.steps, used_pairs: r.used, skipped_pairs: r.skipped, ...(r.eval ? { eval: r.eval } : {}), resumed_from: r.resumedFrom ?? null, ...outs };
  });
}


// ---- TreeBoN and RLP (issue 13) ----

export interface TreeBoNJob {
  /** The sampling policy (the paper: the SFT model). */
  model: string;
  /** The final scorer. */
  rewardModel: string;
  /** partialReward implicit-dpo: the DPO-trained model ... */
  dpoModel?: string;
  /** ... and its reference (default: --model, the model DPO starts from in AlpacaFarm's pipeline). */
  refModel?: string;
  /** partialReward reward-model: the model read on prefixes (default: --reward-model). */
  partialRewardModel?: string;
  data: string;
  config?: Partial<TreeBoNConfig>;
}

/** TreeBoN decoding (model_outputs.json, and candidates.json with every leaf when keepCandidates). */
export async function runTreeBoN(o: JobOptions, j: TreeBoNJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveTreeBoNConfig({ seed, ...j.config });
  const implicit = config.partialReward === 'implicit-dpo';
  if (implicit && !j.dpoModel) throw new ConfigError('--partial-reward implicit-dpo needs --dpo-model (a DPO-trained policy; its reference is --ref-model, default --model); or use --partial-reward reward-model');
  if (!implicit && (j.dpoModel || j.refModel)) throw new ConfigError('--dpo-model and --ref-model serve --partial-reward implicit-dpo only');
  if (implicit && j.partialRewardModel) throw new ConfigError('--partial-reward-model serves --partial-reward reward-model only');
  const records = readInstructions(j.data, '--data');
  const engine = await engineOf(o);
  const { p, rm } = await policyAndReward(engine, j.model, j.rewardModel);
  const extra = async (dir: string | undefined, flag: string, role: 'policy' | 'reward model') => {
    if (!dir) return undefined;
    const m = await loadModelFolder(engine, dir, flag, role);
    checkSameTokenizer(p, m, ['--model', flag]);
    return m;
  };
  const dpoM = await extra(j.dpoModel, '--dpo-model', 'policy'), refM = await extra(j.refModel, '--ref-model', 'policy');
  const partialM = await extra(j.partialRewardModel, '--partial-reward-model', 'reward model');
  const ctx = open(o, engine, 'treebon', { method: { ...TREEBON_DEFAULTS, ...config } },
    { model: j.model, rewardModel: j.rewardModel, dpoModel: j.dpoModel, refModel: j.refModel, partialRewardModel: j.partialRewardModel, data: j.data });
  return within(ctx, async () => {
    ctx.progress.start(`treebon ${config.n}x${config.branchingFactor}x${config.depth}`, records.length);
    const r = await treeBoN(ctx.engine, {
      policy: p.model, reward: rm.model, dpo: dpoM?.model, ref: implicit ? (refM?.model ?? p.model) : undefined, partialReward: partialM?.model,
      tokenizer: p.tokenizer, records, config: { ...config, generator: config.generator ?? generatorName(o.outputDir), onProgress: (x) => ctx.progress.update(x.done) },
    });
    const outputs = r.outputs.map((x, i) => ({ instruction: x.instruction, input: x.input, output: x.output, generator: x.generator, reward: x.reward,
      generated_tokens: x.generatedTokens, ...dataTags(records[i]) }));
    writeFileAtomic(ctx.run.path('model_outputs.json'), `${JSON.stringify(outputs, null, 2)}\n`);
    if (r.candidates) writeFileAtomic(ctx.run.path('candidates.json'), JSON.stringify(r.candidates.map((c, i) => ({ instruction: records[i].instruction, input: records[i].input,
      leaves: c.map((s) => ({ output: s.output, reward: s.reward, layer: s.layer, sample: s.sample })) }))));
    const m = { step: 1, ...r.metrics, 'time/tokens_per_second': r.metrics['treebon/generated_tokens'] / Math.max(1e-9, r.metrics['time/generate_ms'] / 1000) };
    ctx.run.log(m);
    return { outputs: ctx.run.path('model_outputs.json'), ...m };
  });
}

/** samples.json of an RLP run: instruction, input, outputs (n each). */
export function readRlpSamples(file: string, flag: string): RLPSample[] {
  return readRows(file, flag).map((r) => {
    const outs = r.value.outputs;
    if (!Array.isArray(outs) || outs.length === 0 || outs.some((x) => typeof x !== 'string'))
      throw new ConfigError(`${flag} ${file}: record ${r.line} needs "outputs", a non-empty array of strings (samples.json of a farm rlp run)`);
    return { instruction: str(r, 'instruction', file, flag), input: str(r, 'input', file, flag, true), outputs: outs as string[] };
  });
}

export interface RlpJob {
  variant: RLPVariant;
  /** The SFT model: the new reward model starts from its weights, the second PPO run from it. */
  model: string;
  /** The first PPO run's policy, whose outputs the reward model learns from. */
  ppoModel: string;
  /** The first run's reward model (RLP-SPG ranks a group's outputs with it). */
  rewardModel?: string;
  /** The human (or simulated) preference pairs the first reward model learned from. */
  preferences: string;
  evalPreferences?: string;
  /** Unlabeled instructions (AlpacaFarm's unlabeled split): sampled for RLP, rolled out by the second PPO. */
  data: string;
  /** samples.json of an earlier RLP run of the same PPO policy (skips sampling). */
  samples?: string;
  evalData?: string;
  config?: Partial<RLPConfig>;
  generation?: Partial<GenerationConfig>;
  /** RLP-SPG's semantic equivalence (default: normalized text equality; the farm's checker from the CLI and the pipelines). */
  equivalence?: Equivalence;
  /** A name for the equivalence, recorded in run.json (it decides the result). */
  equivalenceName?: string;
}

/**
 * RLP's steps in one run folder: samples.json (n outputs per instruction from the PPO policy), reward-model/
 * (the retrained reward model, checkpoints in checkpoints/reward-model), model/ (PPO from the SFT model against
 * it, checkpoints in checkpoints/ppo). metrics.jsonl numbers the reward model's steps first, then PPO's after them.
 */
export async function runRlp(o: JobOptions, j: RlpJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  if (!RLP_VARIANTS.includes(j.variant)) throw new ConfigError(`--variant must be ${RLP_VARIANTS.join(' or ')}, got ${JSON.stringify(j.variant)}`);
  const config = resolveRlpConfig({ seed, ...j.config });
  const { c: ppoConfig } = resolvePpoMethodConfig({ rolloutSeed: seed, ...config.ppo });
  const rmConfig = resolveConfig('reward model', { ...REWARD_MODEL_DEFAULTS } as Required<Omit<RewardModelConfig, 'onStep'>>, { seed, ...config.rewardModel } as never);
  const gen = resolveGeneration(j.generation, seed);
  if (j.variant === 'spg' && !j.rewardModel) throw new ConfigError('--variant spg needs --reward-model (the reward model the PPO run used ranks each group\'s outputs)');
  const prefs = readPreferences(j.preferences, '--preferences');
  const held = j.evalPreferences ? readPreferences(j.evalPreferences, '--eval-preferences') : undefined;
  const prompts = readInstructions(j.data, '--data');
  const given = j.samples ? readRlpSamples(j.samples, '--samples') : undefined;
  if (j.evalData) readInstructions(j.evalData, '--eval-data');
  const engine = await engineOf(o);
  const sftM = await loadModelFolder(engine, j.model, '--model', 'policy');
  const ppoM = await loadModelFolder(engine, j.ppoModel, '--ppo-model', 'policy');
  checkSameTokenizer(sftM, ppoM, ['--model', '--ppo-model']);
  const rmM = j.rewardModel ? await loadModelFolder(engine, j.rewardModel, '--reward-model', 'reward model') : undefined;
  if (rmM) checkSameTokenizer(sftM, rmM);
  for (const [m, flag] of [[sftM, '--model'], [ppoM, '--ppo-model']] as const)
    if (m.conditioning) throw new ConfigError(`${flag} ${m.dir} is a ${m.conditioning.method} policy with control tokens; RLP starts from an unconditioned SFT model and its PPO policy`);
  const rmSteps = (dir: string): number | null => {
    const done = join(dir, '..', 'reward-model', 'rlp-reward-model.json');
    if (existsSync(done)) {
      const total = (JSON.parse(readFileSync(done, 'utf8')) as { steps: number }).steps;
      return total + (latestCheckpoint(join(dir, 'ppo')) ?? 0);
    }
    return latestCheckpoint(join(dir, 'reward-model'));
  };
  const ctx = open(o, engine, 'rlp', { variant: j.variant, method: { ...config, rewardModel: rmConfig, ppo: ppoConfig }, generation: gen,
    ...(j.variant === 'spg' ? { equivalence: j.equivalenceName ?? 'normalized-text' } : {}) },
  { model: j.model, ppoModel: j.ppoModel, rewardModel: j.rewardModel, preferences: j.preferences, evalPreferences: j.evalPreferences, data: j.data, samples: j.samples, evalData: j.evalData },
  rmSteps);
  return within(ctx, async () => {
    // 1. samples of the PPO policy
    const samplesFile = ctx.run.path('samples.json');
    let samples: RLPSample[];
    if (given) samples = given;
    else if (existsSync(samplesFile)) samples = readRlpSamples(samplesFile, 'samples.json');
    else {
      const n = config.maxInstructions === null ? prompts.length : Math.min(prompts.length, config.maxInstructions);
      ctx.progress.start(`rlp: ${config.n} samples per instruction`, n);
      samples = await sampleRlpOutputs(ctx.engine, ppoM.model, ppoM.tokenizer, prompts, config, (d) => ctx.progress.update(d));
      ctx.progress.stop();
      writeFileAtomic(samplesFile, JSON.stringify(samples));
    }
    // 2. the reward model, retrained
    const rmDir = ctx.run.path('reward-model'), rmDone = join(rmDir, 'rlp-reward-model.json');
    let rewardModel: Model, rmSummary: Record<string, unknown>;
    if (existsSync(rmDone)) {
      rewardModel = (await loadModelFolder(ctx.engine, rmDir, 'reward-model', 'reward model')).model;
      rmSummary = JSON.parse(readFileSync(rmDone, 'utf8'));
    } else {
      let started = false;
      const r = await rlpRewardModel(ctx.engine, {
        variant: j.variant, init: sftM.model, tokenizer: sftM.tokenizer, preferences: prefs, evalPreferences: held, samples, reward: rmM?.model,
        equivalence: j.equivalence, config: { ...config, rewardModel: rmConfig },
        checkpoint: { ...checkpointOf(ctx, o), dir: join(ctx.run.checkpointDir, 'reward-model') },
        onStep: (l) => {
          if (!started) { ctx.progress.start(`rlp-${j.variant}: reward model`, l.totalSteps); started = true; }
          const m = metricsLine(l);
          ctx.run.log({ ...m, 'rlp/stage': 1 });
          ctx.progress.update(l.step, { loss: l.loss, ...(l['uml/loss'] !== undefined ? { 'uml/loss': l['uml/loss'] } : {}) });
        },
      });
      ctx.progress.stop();
      rewardModel = r.model;
      rmSummary = { steps: r.training.steps, train_accuracy_last_epoch: r.training.lastEpochAccuracy, ...(r.training.eval ? { eval_accuracy: r.training.eval.accuracy, eval_loss: r.training.eval.loss } : {}),
        ...(r.spg ?? {}), ...(r.umlInstructions !== undefined ? { 'uml/instructions': r.umlInstructions } : {}) };
      await saveModelFolder(ctx.engine, rmDir, rewardModel, sftM.tokenizer);
      if (r.synthetic) writeFileAtomic(ctx.run.path('synthetic_preferences.json'), JSON.stringify(r.synthetic, null, 1));
      writeFileAtomic(rmDone, `${JSON.stringify(rmSummary, null, 2)}\n`);
    }
    // 3. PPO again, from the SFT model, against it
    const offset = rmSummary.steps as number;
    const policy = (await loadModelFolder(ctx.engine, j.model, '--model', 'policy')).model;
    ctx.progress.start(`rlp-${j.variant}: ppo`, ppoConfig.steps);
    const r = await ppo(ctx.engine, {
      policy, rewardModel, tokenizer: sftM.tokenizer, prompts, config: ppoConfig,
      checkpoint: { ...checkpointOf(ctx, o), dir: join(ctx.run.checkpointDir, 'ppo') }, onWarning: warner(ctx),
      onStep: (l) => {
        const m = metricsLine(l);
        ctx.run.log({ ...m, step: offset + m.step, 'ppo/step': m.step, 'rlp/stage': 2 });
        ctx.progress.update(m.step, { 'objective/scores': m['objective/scores'], 'objective/kl': m['objective/kl'] });
      },
    });
    ctx.progress.stop();
    await saveModelFolder(ctx.engine, ctx.run.modelDir, policy, sftM.tokenizer);
    const outs = await writeEvalOutputs(ctx, policy, sftM.tokenizer, j.evalData, gen, NO_CONTROL, generatorName(o.outputDir));
    return { model: ctx.run.modelDir, reward_model: rmDir, samples: j.samples ?? samplesFile, instructions: samples.length, reward_model_summary: rmSummary,
      steps: r.steps, skipped_prompts: r.skippedPrompts, resumed_from: r.resumedFrom ?? null, final: lastOf(ctx.run), ...outs };
  });
}

export interface RlpSamplesJob { ppoModel: string; data: string; config?: Partial<RLPConfig> }

/** Only RLP's first step: samples.json of the PPO policy, for runs of both variants (runRlp's `samples`). */
export async function runRlpSamples(o: JobOptions, j: RlpSamplesJob): Promise<JobResult> {
  const seed = o.seed ?? 1;
  const config = resolveRlpConfig({ seed, ...j.config });
  const prompts = readInstructions(j.data, '--data');
  const engine = await engineOf(o);
  const ppoM = await loadModelFolder(engine, j.ppoModel, '--ppo-model', 'policy');
  const sampling = { n: config.n, temperature: config.temperature, topP: config.topP, maxNewTokens: config.maxNewTokens, maxInstructions: config.maxInstructions, seed: config.seed };
  const ctx = open(o, engine, 'rlp-samples', { sampling }, { ppoModel: j.ppoModel, data: j.data });
  return within(ctx, async () => {
    const n = config.maxInstructions === null ? prompts.length : Math.min(prompts.length, config.maxInstructions);
    ctx.progress.start(`rlp: ${config.n} samples per instruction`, n);
    const samples = await sampleRlpOutputs(ctx.engine, ppoM.model, ppoM.tokenizer, prompts, config, (d) => ctx.progress.update(d));
    ctx.progress.stop();
    writeFileAtomic(ctx.run.path('samples.json'), JSON.stringify(samples));
    const distinct = samples.reduce((a, s) => a + new Set(s.outputs).size, 0) / Math.max(1, samples.length);
    const m = { step: 1, instructions: samples.length, 'samples/distinct_per_instruction': distinct };
    ctx.run.log(m);
    return { samples: ctx.run.path('samples.json'), ...m };
  });
}
