// Shared machinery of the methods (SFT and its variants, best-of-n, expert iteration, PPO, Quark, DPO):
// Alpaca-template encoding of prompts and responses (with control tokens where a method conditions on them),
// decoding of samples, rewards from any source (a reward model, a function, a pair scorer), sampling in
// bounded chunks, frozen copies of models, strict configs and the finite-value guards. One copy of each loop.
import { createHash } from 'node:crypto';
import { Model, type Engine, type GenerateOptions, type Sample } from '../engine/index.ts';
import { closestKey } from '../engine/options.ts';
import { formatPrompt, type AlpacaExample, type TextEncoderLike } from '../data/template.ts';
import type { Pair, PairScorer } from '../feedback/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

export { closestKey };

/** A seeded Fisher-Yates permutation of 0..n-1 (xorshift32; the same in every process). */
export function shuffled(n: number, seed: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let s = (seed * 2654435761) >>> 0 || 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** What the methods need from a tokenizer (the farm BPE tokenizer and tokenizer.json tokenizers fit). */
export interface MethodTokenizer extends TextEncoderLike {
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
  readonly padId?: number | null;
}

/** Pad id for batches: the tokenizer's PAD, else EOS, else 0 (padding sits after every position read). */
export function padIdOf(tok: MethodTokenizer): number {
  return tok.padId ?? tok.eosId ?? 0;
}

/**
 * BOS + the Alpaca prompt of a record (as SFT trained on it: data text never yields control tokens). `control`
 * token ids (reward conditioning, Quark) go right after BOS, as AlpacaFarm places its reward tokens.
 */
export function encodePrompt(tok: MethodTokenizer, ex: AlpacaExample, control: readonly number[] = []): number[] {
  const ids = tok.encode(formatPrompt(ex), { addBos: tok.bosId !== null, parseSpecial: false });
  if (control.length === 0) return ids;
  const at = tok.bosId !== null && ids[0] === tok.bosId ? 1 : 0;
  return [...ids.slice(0, at), ...control, ...ids.slice(at)];
}

/** A response as the policy should produce it: its tokens, then EOS (when the tokenizer has one). */
export function encodeResponse(tok: MethodTokenizer, text: string): number[] {
  const ids = tok.encode(text, { parseSpecial: false });
  return tok.eosId !== null ? [...ids, tok.eosId] : ids;
}

/** The text of sampled tokens: special tokens (EOS) dropped, surrounding whitespace trimmed (AlpacaFarm's post-processing). */
export function decodeResponse(tok: MethodTokenizer, tokens: ArrayLike<number>): string {
  return tok.decode(tokens, { skipSpecialTokens: true }).trim();
}

/** One response to score: its record, the prompt and response token ids, and the decoded text. */
export interface Candidate {
  instruction: string;
  input: string;
  prompt: number[];
  response: number[];
  output: string;
  /** Index of the candidate's record in the call's record list. */
  record: number;
}

/** A reward function over candidates (higher is better); may be async. Use it for hand-built or gold rewards. */
export type RewardFn = (candidates: Candidate[]) => ArrayLike<number> | Promise<ArrayLike<number>>;

/**
 * Where rewards come from: a reward model (scalar head read at the last token, on the very token ids the
 * policy sampled), a RewardFn, or a PairScorer (text-based, e.g. rewardScorer or any judge exposing scores).
 */
export type RewardSource = Model | RewardFn | PairScorer;

/** Turns any RewardSource into a RewardFn returning a Float32Array in candidate order. */
export function toRewardFn(engine: Engine, source: RewardSource, tok: MethodTokenizer, opts: { batchSize?: number } = {}): (c: Candidate[]) => Promise<Float32Array> {
  const check = (r: ArrayLike<number>, n: number): Float32Array => {
    if (!r || r.length !== n) throw new Error(`reward function returned ${r ? r.length : 'no'} scores for ${n} candidates`);
    const out = Float32Array.from(r);
    const bad = out.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new NonFiniteError('reward', r[bad], `candidate ${bad}`);
    return out;
  };
  if (source instanceof Model) {
    if (!source.config.scalar_head) throw new Error('reward model has no scalar head (scalar_head: true): it cannot score responses');
    return async (c) => c.length === 0 ? new Float32Array(0)
      : check(await engine.scoreResponses(source, c.map((x) => ({ prompt: x.prompt, response: x.response })), { batchSize: opts.batchSize ?? 32, padId: padIdOf(tok) }), c.length);
  }
  if (typeof source === 'function') return async (c) => check(await source(c), c.length);
  if (source && typeof (source as PairScorer).score === 'function') return pairScorerRewards(source as PairScorer, check);
  throw new Error('reward source must be a reward Model, a function of candidates, or a PairScorer');
}

// Pairs neighbouring candidates of the same instruction, so each scorer call rates two outputs (a lone one is paired with itself).
function pairScorerRewards(scorer: PairScorer, check: (r: ArrayLike<number>, n: number) => Float32Array) {
  return async (c: Candidate[]): Promise<Float32Array> => {
    const pairs: Pair[] = [], slots: [number, number][] = [];
    for (let i = 0; i < c.length;) {
      const j = i + 1 < c.length && c[i + 1].instruction === c[i].instruction && c[i + 1].input === c[i].input ? i + 1 : i;
      pairs.push({ instruction: c[i].instruction, input: c[i].input, output_1: c[i].output, output_2: c[j].output });
      slots.push([i, j]);
      i = j + 1;
    }
    const scored = await scorer.score(pairs);
    if (scored.length !== pairs.length) throw new Error(`pair scorer returned ${scored.length} results for ${pairs.length} pairs`);
    const out = new Array<number>(c.length);
    scored.forEach(([a, b], k) => { out[slots[k][0]] = a; out[slots[k][1]] = b; });
    return check(out, c.length);
  };
}

/** Sampling settings shared by the methods (a subset of GenerateOptions, with the EOS taken from the tokenizer). */
export interface SamplingConfig {
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
}

/** Samples n responses for each prompt, with RNG streams keyed by `ids` (so results do not depend on chunking). */
export async function sampleResponses(engine: Engine, policy: Model, tok: MethodTokenizer, prompts: number[][], ids: number[],
  s: SamplingConfig & { n: number; seed: number }, extra: Partial<GenerateOptions> = {}): Promise<Sample[][]> {
  return engine.generate(policy, prompts, {
    n: s.n, temperature: s.temperature, topP: s.topP, topK: s.topK, maxNewTokens: s.maxNewTokens,
    eosTokenId: tok.eosId, seed: s.seed, promptIds: ids, ...extra,
  });
}

/**
 * Policy prompts for conditioned sampling: `prefix` ids go after BOS when sampling; `strip` ids (every control
 * token of the method) are removed from sampled responses before they are scored or decoded, so reward models
 * and judges see the plain prompt and response, as AlpacaFarm's Quark keeps reward tokens out of the scored text.
 */
export interface PromptControl { prefix: readonly number[]; strip: readonly number[] }
export const NO_CONTROL: PromptControl = Object.freeze({ prefix: [], strip: [] });

/** One batch of samples with its candidates: n samples per row, candidates carrying the plain prompt. */
export interface SampledBatch { samples: Sample[][]; candidates: Candidate[][] }

/**
 * Samples n responses for each of `rows` (indices into `records`; `plain[k]` is row k's encoded plain prompt)
 * with the control prefix, and builds the candidates to score. Streams are keyed by `streamIds`.
 */
export async function sampleCandidates(engine: Engine, policy: Model, tok: MethodTokenizer, records: readonly AlpacaExample[], rows: readonly number[],
  plain: readonly number[][], streamIds: number[], s: SamplingConfig & { n: number; seed: number }, control: PromptControl = NO_CONTROL): Promise<SampledBatch> {
  const withPrefix = control.prefix.length ? plain.map((p) => {
    const at = tok.bosId !== null && p[0] === tok.bosId ? 1 : 0;
    return [...p.slice(0, at), ...control.prefix, ...p.slice(at)];
  }) : plain as number[][];
  const samples = await sampleResponses(engine, policy, tok, withPrefix, streamIds, s);
  const strip = new Set(control.strip);
  const candidates = rows.map((i, k) => samples[k].map((x): Candidate => {
    const response = strip.size ? x.tokens.filter((t) => !strip.has(t)) : x.tokens;
    return { instruction: records[i].instruction, input: records[i].input ?? '', prompt: plain[k], response, output: decodeResponse(tok, response), record: i };
  }));
  return { samples, candidates };
}

/**
 * Endless seeded shuffles of prompt indices, reshuffled at each pass (pass e uses shuffled(n, seed + e)). Its
 * position is plain JSON, so a checkpoint restores exactly where the prompts were.
 */
export class PromptStream {
  epoch: number;
  at: number;
  private order: number[];
  constructor(private readonly indices: readonly number[], private readonly seed: number, state: { epoch: number; at: number } = { epoch: 0, at: 0 }) {
    if (indices.length === 0) throw new Error('PromptStream: no prompts');
    this.epoch = state.epoch;
    this.at = state.at;
    this.order = shuffled(indices.length, seed + this.epoch);
  }
  next(k: number): number[] {
    const rows: number[] = [];
    while (rows.length < k) {
      if (this.at === this.order.length) { this.epoch++; this.at = 0; this.order = shuffled(this.indices.length, this.seed + this.epoch); }
      rows.push(this.indices[this.order[this.at++]]);
    }
    return rows;
  }
  state(): { epoch: number; at: number } { return { epoch: this.epoch, at: this.at }; }
}

/** Decoding of evaluation outputs (AlpacaFarm samples its evaluated outputs at temperature 0.7). */
export interface GenerationConfig {
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  seed: number;
  /** Instructions sampled together (bounds memory). */
  promptBatchSize: number;
}
export const GENERATION_DEFAULTS: Readonly<GenerationConfig> = Object.freeze({ temperature: 0.7, topP: 1, topK: 0, maxNewTokens: 300, seed: 1, promptBatchSize: 64 });
export const GENERATION_HELP: Record<keyof GenerationConfig, string> = {
  temperature: 'temperature of the evaluated outputs (AlpacaFarm 0.7)',
  topP: 'nucleus p of the evaluated outputs (1 = off)',
  topK: 'top-k of the evaluated outputs (0 = off)',
  maxNewTokens: 'cap on new tokens per output (AlpacaFarm 300)',
  seed: 'sampling seed of the evaluated outputs',
  promptBatchSize: 'instructions sampled together',
};

/** An output in alpaca_eval's model_outputs.json layout. */
export interface OutputRow { instruction: string; input: string; output: string; generator: string; dataset?: string; world_seed?: number }

/** Tags of an input record that its outputs keep: the task family and the farm world seed (judges need it). */
export function dataTags(r: { dataset?: unknown; world_seed?: unknown }): { dataset?: string; world_seed?: number } {
  return { ...(typeof r.dataset === 'string' && r.dataset ? { dataset: r.dataset } : {}),
    ...(typeof r.world_seed === 'number' && Number.isInteger(r.world_seed) ? { world_seed: r.world_seed } : {}) };
}

/**
 * One sampled output per record (stream i for record i, so outputs do not depend on batching), conditioned as
 * `control` says; prompts that leave no room in the context get an empty output and are counted.
 */
export async function generateOutputs(engine: Engine, policy: Model, tok: MethodTokenizer, records: readonly (AlpacaExample & { dataset?: string; world_seed?: number })[],
  gen: Partial<GenerationConfig>, generator: string, control: PromptControl = NO_CONTROL, onProgress?: (done: number, total: number) => void):
  Promise<{ outputs: OutputRow[]; tooLong: number; tokens: number; seconds: number }> {
  const g = resolveConfig('generation', GENERATION_DEFAULTS as GenerationConfig, gen, {
    int: [['maxNewTokens', 1], ['topK', 0], ['seed', 0], ['promptBatchSize', 1]], range: [['temperature', 0, Infinity], ['topP', Number.MIN_VALUE, 1]],
  });
  const P = policy.config.max_position_embeddings;
  const outputs: OutputRow[] = records.map((r) => ({ instruction: r.instruction, input: r.input ?? '', output: '', generator, ...dataTags(r) }));
  const plain = records.map((r) => encodePrompt(tok, r));
  const ok = plain.map((_, i) => i).filter((i) => plain[i].length + control.prefix.length < P);
  const t0 = performance.now();
  let tokens = 0;
  for (const rows of batches(ok, g.promptBatchSize)) {
    const { candidates } = await sampleCandidates(engine, policy, tok, records, rows, rows.map((i) => plain[i]), rows, { ...g, n: 1 }, control);
    rows.forEach((i, k) => { outputs[i].output = candidates[k][0].output; tokens += candidates[k][0].response.length; });
    onProgress?.(rows[rows.length - 1] + 1, records.length);
  }
  return { outputs, tooLong: records.length - ok.length, tokens, seconds: since(t0) / 1000 };
}

/** A new model with the same config and weights (a frozen reference, a value model to be). */
export function cloneModel(engine: Engine, model: Model): Model {
  const copy = engine.createModel(model.config);
  copy.copyFrom(model);
  return copy;
}

/**
 * A reward or value model initialized from a policy, as AlpacaFarm does: every tensor the two share (same name
 * and shape) is copied; the scalar head starts at zero. Returns the new model.
 */
export function scalarModelFrom(engine: Engine, policy: Model): Model {
  const m = engine.createModel({ ...policy.config, lm_head: false, scalar_head: true });
  const src = new Map(policy.parameters().map((p) => [p.name, p]));
  for (const p of m.parameters()) {
    const s = src.get(p.name);
    if (s && s.data.length === p.data.length) p.data.set(s.data);
    else if (p.name.startsWith('score.')) p.data.fill(0);
  }
  return m;
}

/** A seeded uniform generator in [0, 1) (mulberry32 over a mix of the keys; the same in every process). */
export function seededUniform(...keys: number[]): () => number {
  let h = 0x9e3779b9;
  for (const k of keys) h = Math.imul(h ^ (k >>> 0), 0x85ebca6b) ^ (h >>> 13);
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits items into consecutive batches of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length ? s / xs.length : NaN;
}

/** A config key that does not exist, a value of the wrong type or out of range: raised before any work. */
export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = 'ConfigError'; }
}

/** Throws a ConfigError for every key of `over` not in `known` (typos are never silently ignored). */
export function checkKnownKeys(what: string, over: object | undefined, known: readonly string[]): void {
  for (const k of Object.keys(over ?? {})) {
    if (known.includes(k)) continue;
    const hint = closestKey(k, known);
    throw new ConfigError(`${what} config has no key "${k}"${hint ? `; did you mean "${hint}"?` : ''} (known: ${[...new Set(known)].sort().join(', ')})`);
  }
}

/**
 * Merges a user config over defaults, refusing keys that are neither in the defaults nor in `optional`, and checks
 * the fields named in `checks` (integers >= min, numbers in ranges).
 */
export function resolveConfig<C extends object>(what: string, defaults: C, over: Partial<C> | undefined,
  checks: { int?: [keyof C, number][]; range?: [keyof C, number, number][]; optional?: readonly string[] } = {}): C {
  checkKnownKeys(what, over, [...Object.keys(defaults), ...(checks.optional ?? [])]);
  const c = { ...defaults } as C;
  for (const [k, v] of Object.entries(over ?? {})) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  for (const [k, min] of checks.int ?? []) {
    const v = c[k] as unknown;
    if (v === undefined && (checks.optional ?? []).includes(k as string)) continue;
    if (!Number.isInteger(v) || (v as number) < min) throw new ConfigError(`${what} config ${String(k)} must be an integer >= ${min}, got ${v}`);
  }
  for (const [k, lo, hi] of checks.range ?? []) {
    const v = c[k] as unknown;
    if (v === undefined && (checks.optional ?? []).includes(k as string)) continue;
    if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new ConfigError(`${what} config ${String(k)} must be a number in [${lo}, ${hi}], got ${v}`);
  }
  return c;
}

/**
 * NaN or Inf in a loss, reward, log-prob or gradient. `step` and `method` are filled in by the loop that saw it
 * (withStep), so the message names where training stopped and which quantity went bad.
 */
export class NonFiniteError extends Error {
  constructor(readonly quantity: string, readonly value: unknown, readonly detail = '', readonly method = '', readonly step = -1) {
    super(`${method ? `${method}${step >= 0 ? ` step ${step}` : ''}: ` : ''}${quantity} is not a finite number (${String(value)}${detail ? `, ${detail}` : ''})${method ? '; training stopped, the last checkpoint is kept' : ''}`);
    this.name = 'NonFiniteError';
  }
  at(method: string, step: number): NonFiniteError {
    return this.method ? this : new NonFiniteError(this.quantity, this.value, this.detail, method, step);
  }
}

/** Throws NonFiniteError naming the first non-finite value of `values` (named as in the logs). */
export function checkFinite(method: string, step: number, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) if (!Number.isFinite(v)) throw new NonFiniteError(k, v, '', method, step);
}

/** Runs fn, tagging a NonFiniteError it raises with the method and step. */
export async function withStep<T>(method: string, step: number, fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (e) { throw e instanceof NonFiniteError ? e.at(method, step) : e; }
}

/** A warning a loop raises while it keeps going (KL far above its target, exploding ratios). */
export interface TrainingWarning { step: number; kind: string; message: string }

// ---- tokenizers and control tokens ----

/**
 * A digest of what decides token ids: the BPE model, normalizer, pre-tokenizer and the added tokens, minus the
 * control tokens a method adds (`ignore`). Two models can share rollouts only when their fingerprints agree.
 */
export function tokenizerFingerprint(tok: Tokenizer, ignore: readonly string[] = []): string {
  const j = tok.json as Record<string, unknown>;
  const added = (Array.isArray(j.added_tokens) ? j.added_tokens as { id: number; content: string }[] : [])
    .filter((t) => !ignore.includes(t.content)).map((t) => [t.id, t.content]);
  return createHash('sha256').update(JSON.stringify([j.model, j.normalizer ?? null, j.pre_tokenizer ?? null, added])).digest('hex');
}

/**
 * A copy of `model` with `vocab` rows of token embeddings (and LM head when untied). Old rows are copied; new
 * rows start at the mean of the old ones (transformers' mean resizing), so a new token starts as an average
 * token rather than a random one and the distribution over old tokens barely moves.
 */
export function resizeVocab(engine: Engine, model: Model, vocab: number): Model {
  const V = model.config.vocab_size;
  if (!Number.isInteger(vocab) || vocab < V) throw new Error(`resizeVocab: new vocab_size ${vocab} must be an integer >= the current ${V}`);
  if (vocab === V) return cloneModel(engine, model);
  const out = engine.createModel({ ...model.config, vocab_size: vocab });
  const src = new Map(model.parameters().map((p) => [p.name, p]));
  for (const p of out.parameters()) {
    const s = src.get(p.name)!;
    if (p.name === 'model.embed_tokens.weight' || p.name === 'lm_head.weight') {
      const H = p.shape[1];
      p.data.set(s.data);
      const meanRow = new Float32Array(H);
      for (let v = 0; v < V; v++) for (let h = 0; h < H; h++) meanRow[h] += s.data[v * H + h] / V;
      for (let v = V; v < vocab; v++) p.data.set(meanRow, v * H);
    } else p.data.set(s.data);
  }
  return out;
}

/**
 * Control tokens for conditioning (reward conditioning, Quark): added to the tokenizer as special tokens (never
 * produced from data text, dropped when decoding) and to the model's vocabulary (resizeVocab). Tokens the
 * tokenizer already has (a conditioned checkpoint) keep their ids. Returns the new model, tokenizer and the ids.
 */
export function addControlTokens(engine: Engine, model: Model, tok: Tokenizer, tokens: readonly string[]): { model: Model; tokenizer: Tokenizer; ids: number[] } {
  const tokenizer = tok.withAddedTokens(tokens, { special: true });
  if (tokenizer.vocabSize < model.config.vocab_size && tokenizer.vocabSize !== tok.vocabSize)
    throw new Error(`addControlTokens: the tokenizer has ${tokenizer.vocabSize} tokens, fewer than the model's vocab_size ${model.config.vocab_size}`);
  const resized = tokenizer.vocabSize > model.config.vocab_size ? resizeVocab(engine, model, tokenizer.vocabSize) : model;
  const ids = tokens.map((t) => tokenizer.tokenToId(t)!);
  return { model: resized, tokenizer, ids };
}

/**
 * How a conditioned policy is prompted (stored beside its checkpoint as conditioning.json): the control tokens
 * its method added, and the one placed after BOS when generating (the good token, Quark's best quantile).
 */
export interface Conditioning {
  method: string;
  tokens: string[];
  generateWith: string | null;
}

/** Token ids to put after BOS when sampling from a conditioned policy ([] for none). */
export function controlIds(tok: Tokenizer, c: Conditioning | null | undefined): number[] {
  if (!c?.generateWith) return [];
  const id = tok.tokenToId(c.generateWith);
  if (id === null) throw new Error(`conditioning token "${c.generateWith}" is not in the tokenizer (was conditioning.json copied without its tokenizer.json?)`);
  return [id];
}

/** Milliseconds since `t0` (performance.now()). */
export const since = (t0: number): number => performance.now() - t0;
