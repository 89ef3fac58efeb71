// Sampling with a KV cache (native DecodeSession) and scoring of given responses.
//
// Randomness: every token is drawn with a counter-based RNG keyed by (seed, prompt id, sample index,
// position), so the samples of a prompt do not depend on the thread count, on the other prompts in the
// call, or on how the call is split into batches.
import { native } from './native.ts';
import type { Model } from './model.ts';
import { checkOptionKeys } from './options.ts';

/** What generate() needs from an engine (an Engine satisfies it). */
export interface EngineLike { readonly threads: number; readonly seed: number }

export type FinishReason = 'stop' | 'length' | 'context';
const FINISH: FinishReason[] = ['length', 'stop', 'length', 'context'];  // native codes 0..3 (0 = unfinished)

export interface GenerateProgress {
  /** Decode steps done in the current batch of sequences, and its bound (maxNewTokens). */
  step: number;
  maxSteps: number;
  /** Sequences finished so far / all sequences of the call (prompts × n). */
  finishedSequences: number;
  totalSequences: number;
  /** New tokens sampled so far in the call. */
  newTokens: number;
}

export interface GenerateOptions {
  /** Samples per prompt; they share the prompt's prefilled cache. Default 1. */
  n?: number;
  /** Cap on new tokens per sample. Default 64. */
  maxNewTokens?: number;
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). Applied after temperature, before top-p, as transformers does. */
  topK?: number;
  /** Nucleus sampling mass in (0, 1] (1 = off). */
  topP?: number;
  /** Token ids that end a sample (emitted, then the sample stops). */
  stopTokens?: number[];
  /** End-of-sequence id (a stop token); null/undefined = none. */
  eosTokenId?: number | null;
  /** RNG seed (default: the engine's seed). */
  seed?: number;
  /** Stable ids of the prompts for the RNG (default: their index); give them to split a job into calls. */
  promptIds?: number[];
  /** Sequences decoded together (default 256); prompts are processed in groups that fit. */
  maxBatchSequences?: number;
  /** Bound on the KV cache of one group, in bytes (default 1 GiB); a prompt's n samples always go together. */
  maxCacheBytes?: number;
  /**
   * What the decoder streams each step: 'fp32' (exact, the default) or 'bf16': the weights and the KV cache
   * rounded to bfloat16, half the bytes a step reads; activations, scores and accumulation stay fp32. The
   * effect on log-probs is measured in test/generate/bf16.test.ts and documented in docs/profiling.md.
   */
  decodePrecision?: DecodePrecision;
  /** Decode steps per native call; progress is reported between calls. Default 16. */
  stepsPerCall?: number;
  onProgress?: (p: GenerateProgress) => void;
}

export type DecodePrecision = 'fp32' | 'bf16';
function checkPrecision(w: unknown): DecodePrecision {
  if (w === undefined) return 'fp32';
  if (w !== 'fp32' && w !== 'bf16') throw new Error(`decodePrecision must be 'fp32' or 'bf16', got ${JSON.stringify(w)}`);
  return w;
}

export interface Sample {
  /** New tokens (a stop token, when one ended the sample, is included). */
  tokens: number[];
  /** Log-prob of each token under the model (temperature 1, no truncation). */
  logprobs: Float32Array;
  /** Under softmax(logits / temperature), no top-k/top-p truncation (the PPO convention of TRL/AlpacaFarm); 0 when greedy. */
  scaledLogprobs: Float32Array;
  /** Under the distribution actually sampled (temperature, top-k, top-p, renormalized); 0 when greedy. */
  sampleLogprobs: Float32Array;
  /** Scalar head at the position that predicted each token (models with a scalar head). */
  values?: Float32Array;
  finishReason: FinishReason;
}

const MAX_N = 1 << 20;

/**
 * The RNG stream of sample j of prompt `promptId` in generate() (and in GenerationSession.addPrompts by default):
 * a method that drives a session itself (TreeBoN) uses the same streams to draw exactly generate()'s samples.
 */
export function sampleStream(promptId: number, j: number): number {
  checkInt('sample index', j, 0, MAX_N - 1);
  return promptId * MAX_N + j;
}

/** The native KV-cache session of the model's backend (the same methods on either). */
function newSession(model: Model, opts: { maxSequences: number; maxLength: number; precision: DecodePrecision }): any {
  const { maxSequences, maxLength, precision } = opts;
  if (model.backend !== 'cuda') return new native.DecodeSession(model.raw, { maxSequences, maxLength, weights: precision, kvCache: precision });
  if (precision !== 'fp32') throw new Error(`decodePrecision '${precision}' is an option of the CPU decoder; the CUDA backend decodes in fp32`);
  return new native.CudaDecodeSession(model.raw, { maxSequences, maxLength });
}

function checkInt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new Error(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  return v;
}

function checkPrompts(model: Model, prompts: number[][], what = 'prompts'): void {
  if (!Array.isArray(prompts) || prompts.length === 0) throw new Error(`${what} must be a non-empty array of token-id arrays`);
  const V = model.config.vocab_size;
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) && !(p as any instanceof Int32Array)) throw new Error(`${what}[${i}] must be an array of token ids`);
    if (p.length === 0) throw new Error(`${what}[${i}] is empty (start prompts with BOS)`);
    for (let j = 0; j < p.length; j++) {
      const t = p[j];
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`${what}[${i}][${j}] = ${t} is not a token id in [0, vocab_size=${V})`);
    }
  });
}

/** Samples n continuations of every prompt. Returns, per prompt, its n samples. */
export async function generate(engine: EngineLike, model: Model, prompts: number[][], options: GenerateOptions = {}): Promise<Sample[][]> {
  const cfg = model.config;
  if (!cfg.lm_head) throw new Error('generate: this model has no LM head (a reward/value model cannot generate)');
  checkPrompts(model, prompts);
  checkOptionKeys('generate options', options, ['n', 'maxNewTokens', 'temperature', 'topK', 'topP', 'stopTokens', 'eosTokenId', 'seed', 'promptIds',
    'maxBatchSequences', 'maxCacheBytes', 'stepsPerCall', 'onProgress', 'decodePrecision']);
  const n = checkInt('n', options.n ?? 1, 1, MAX_N);
  const maxNew = checkInt('maxNewTokens', options.maxNewTokens ?? 64, 1, 1 << 24);
  const temperature = options.temperature ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new Error(`temperature must be >= 0 (0 = greedy), got ${temperature}`);
  const topK = checkInt('topK', options.topK ?? 0, 0, 2 ** 31 - 1);
  const topP = options.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${topP}`);
  const seed = checkInt('seed', options.seed ?? engine.seed, 0, Number.MAX_SAFE_INTEGER);
  const stop = [...(options.stopTokens ?? [])];
  if (options.eosTokenId !== undefined && options.eosTokenId !== null) stop.push(options.eosTokenId);
  stop.forEach((t, i) => { if (!Number.isInteger(t) || t < 0 || t >= cfg.vocab_size) throw new Error(`stop token ${t} (#${i}) is not in [0, vocab_size=${cfg.vocab_size})`); });
  const ids = options.promptIds ?? prompts.map((_, i) => i);
  if (ids.length !== prompts.length) throw new Error(`promptIds has ${ids.length} ids for ${prompts.length} prompts`);
  ids.forEach((id, i) => checkInt(`promptIds[${i}]`, id, 0, 2 ** 32 - 1));
  const maxBatch = checkInt('maxBatchSequences', options.maxBatchSequences ?? 256, 1, MAX_N);
  const stepsPerCall = checkInt('stepsPerCall', options.stepsPerCall ?? 16, 1, 1 << 20);
  const P = cfg.max_position_embeddings;
  prompts.forEach((p, i) => {
    if (p.length >= P) throw new Error(`prompt ${i} has ${p.length} tokens; the model's context (max_position_embeddings) is ${P}, leaving no room to generate`);
  });
  const precision = checkPrecision(options.decodePrecision);
  const maxCache = options.maxCacheBytes ?? 2 ** 30;
  if (!(maxCache > 0)) throw new Error(`maxCacheBytes must be > 0, got ${maxCache}`);
  const stopTokens = Int32Array.from(stop);
  const results: Sample[][] = prompts.map(() => []);
  // Groups of whole prompts whose samples fit one session (a prompt with n > the bound gets its own).
  const headDim = cfg.hidden_size / cfg.num_attention_heads;
  const seqBytes = (len: number) => Math.min(P, len + maxNew) * cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * headDim * 4;
  const groups: number[][] = [];
  let longest = 0;
  for (let i = 0; i < prompts.length; i++) {
    const last = groups[groups.length - 1];
    const len = Math.max(longest, prompts[i].length);
    if (last && (last.length + 1) * n <= maxBatch && (last.length + 1) * n * seqBytes(len) <= maxCache) { last.push(i); longest = len; }
    else { groups.push([i]); longest = prompts[i].length; }
  }
  let finished = 0, newTokens = 0;
  const total = prompts.length * n;
  for (const group of groups) {
    const maxLen = Math.min(P, Math.max(...group.map((i) => prompts[i].length)) + maxNew);
    const session = newSession(model, { maxSequences: group.length * n, maxLength: maxLen, precision });
    try {
      const lengths = Int32Array.from(group.map((i) => prompts[i].length));
      const tokens = Int32Array.from(group.flatMap((i) => Array.from(prompts[i])));
      const streams = new Float64Array(group.length * n);
      group.forEach((i, g) => { for (let j = 0; j < n; j++) streams[g * n + j] = ids[i] * MAX_N + j; });
      const slots: Int32Array = await session.addPrompts({ tokens, lengths, copies: n, streams, threads: engine.threads });
      const slotIndex = new Map<number, number>();
      slots.forEach((s, k) => slotIndex.set(s, k));
      const acc = Array.from(slots, () => ({ tokens: [] as number[], lp: [] as number[], slp: [] as number[], sam: [] as number[], val: [] as number[] }));
      let live = slots, step = 0, finish = new Int8Array(slots.length);
      while (live.length > 0 && step < maxNew) {
        const steps = Math.min(stepsPerCall, maxNew - step);
        const r = await session.sample({
          slots: live, steps, maxNewTokens: maxNew, temperature, topK, topP, seed, stopTokens, threads: engine.threads,
        });
        for (let i = 0; i < r.token.length; i++) {
          const a = acc[slotIndex.get(r.slot[i])!];
          a.tokens.push(r.token[i]); a.lp.push(r.logprob[i]); a.slp.push(r.scaledLogprob[i]); a.sam.push(r.sampleLogprob[i]);
          if (r.value) a.val.push(r.value[i]);
        }
        newTokens += r.token.length;
        const still: number[] = [];
        live.forEach((s: number, i: number) => {
          if (r.finish[i] !== 0) { finish[slotIndex.get(s)!] = r.finish[i]; finished++; } else still.push(s);
        });
        live = Int32Array.from(still);
        step += steps;
        options.onProgress?.({ step, maxSteps: maxNew, finishedSequences: finished, totalSequences: total, newTokens });
      }
      finished += live.length;  // reached maxNewTokens within the last call's bound
      group.forEach((pi, g) => {
        for (let j = 0; j < n; j++) {
          const k = g * n + j, a = acc[k];
          const s: Sample = {
            tokens: a.tokens, logprobs: Float32Array.from(a.lp), scaledLogprobs: Float32Array.from(a.slp),
            sampleLogprobs: Float32Array.from(a.sam), finishReason: FINISH[finish[k]],
          };
          if (cfg.scalar_head) s.values = Float32Array.from(a.val);
          results[pi].push(s);
        }
      });
    } finally {
      session.dispose();
    }
  }
  return results;
}

export interface ScoredResponse {
  /** Sum of the response tokens' log-probs (temperature 1). */
  sum: number;
  /** Log-prob of each response token given the prompt and the response tokens before it. */
  tokens: Float32Array;
  /** Scalar head at the position predicting each response token (models with a scalar head). */
  values?: Float32Array;
}

/**
 * Scores given responses: log p(response | prompt) per token and summed, batched through the full forward
 * pass (sequences sorted by length, packed up to maxBatchTokens positions per pass).
 */
export async function logprobs(engine: EngineLike, model: Model, prompts: number[][], responses: number[][],
  options: { maxBatchTokens?: number } = {}): Promise<ScoredResponse[]> {
  const cfg = model.config;
  if (!cfg.lm_head) throw new Error('logprobs: this model has no LM head');
  checkPrompts(model, prompts);
  if (!Array.isArray(responses) || responses.length !== prompts.length)
    throw new Error(`logprobs: need one response per prompt (${prompts.length} prompts, ${Array.isArray(responses) ? responses.length : 'no'} responses)`);
  responses.forEach((r, i) => {
    if (!Array.isArray(r) && !(r as any instanceof Int32Array)) throw new Error(`responses[${i}] must be an array of token ids`);
    for (let j = 0; j < r.length; j++)
      if (!Number.isInteger(r[j]) || r[j] < 0 || r[j] >= cfg.vocab_size) throw new Error(`responses[${i}][${j}] = ${r[j]} is not a token id in [0, vocab_size=${cfg.vocab_size})`);
    if (prompts[i].length + r.length > cfg.max_position_embeddings)
      throw new Error(`prompt ${i} + response has ${prompts[i].length + r.length} tokens, more than max_position_embeddings ${cfg.max_position_embeddings}`);
  });
  const budget = checkInt('maxBatchTokens', options.maxBatchTokens ?? 8192, 1, 1 << 28);
  const out: ScoredResponse[] = responses.map((r) => ({ sum: 0, tokens: new Float32Array(r.length), ...(cfg.scalar_head ? { values: new Float32Array(r.length) } : {}) }));
  // Input length of pair i: prompt + response - 1 (the last token is only a target).
  const order = prompts.map((_, i) => i).filter((i) => responses[i].length > 0)
    .sort((a, b) => (prompts[a].length + responses[a].length) - (prompts[b].length + responses[b].length));
  let at = 0;
  while (at < order.length) {
    let end = at + 1;
    const lenOf = (i: number) => prompts[i].length + responses[i].length - 1;
    while (end < order.length && lenOf(order[end]) * (end - at + 1) <= budget) end++;
    const idx = order.slice(at, end);
    const T = lenOf(idx[idx.length - 1]);
    const B = idx.length;
    const tokens = new Int32Array(B * T), targets = new Int32Array(B * T).fill(-1);
    idx.forEach((i, b) => {
      const seq = [...prompts[i], ...responses[i]], Pl = prompts[i].length;
      for (let t = 0; t < seq.length - 1; t++) {
        tokens[b * T + t] = seq[t];
        if (t + 1 >= Pl) targets[b * T + t] = seq[t + 1];
      }
    });
    const r = await model.raw.forward({ tokens, targets, batch: B, seqLen: T, train: false, entropy: false, logits: false, threads: engine.threads });
    idx.forEach((i, b) => {
      const Pl = prompts[i].length, o = out[i];
      let sum = 0;
      for (let j = 0; j < responses[i].length; j++) {
        const pos = b * T + Pl - 1 + j;
        o.tokens[j] = r.logp[pos];
        sum += r.logp[pos];
        if (o.values) o.values[j] = r.values[pos];
      }
      o.sum = sum;
    });
    at = end;
  }
  return out;
}

/** Options of GenerationSession.sample(). */
export interface SessionSampleOptions {
  /** Decode steps in this call (each live sequence gains at most one token per step). */
  steps: number;
  /** Cap on new tokens per sequence since its prompt (forks inherit their parent's count). */
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stopTokens?: number[];
}

/** Tokens sampled by one GenerationSession.sample() call, flat in step order. */
export interface SessionSampleResult {
  slot: Int32Array;
  token: Int32Array;
  logprob: Float32Array;
  scaledLogprob: Float32Array;
  sampleLogprob: Float32Array;
  value?: Float32Array;
  /** Per listed slot: finish reason ('none' while it can go on) and tokens generated so far. */
  finish: ('none' | FinishReason)[];
  generated: Int32Array;
}

const FINISH_NAMES = ['none', 'stop', 'length', 'context'] as const;

/**
 * A KV cache of sequences ("slots") over one model, for methods that steer decoding themselves (TreeBoN:
 * sample a while, score, fork the best, go on). Every token is drawn with the RNG keyed by
 * (seed, the slot's stream, position): a fork given its parent's stream continues exactly as the parent.
 * The weights are read at each call: do not train the model while a session is in use.
 */
export class GenerationSession {
  /** @internal */ readonly raw: any;
  readonly model: Model;
  readonly threads: number;
  constructor(engine: EngineLike, model: Model, opts: { maxSequences: number; maxLength?: number; decodePrecision?: DecodePrecision }) {
    this.model = model;
    this.threads = engine.threads;
    const precision = checkPrecision(opts.decodePrecision);
    this.raw = newSession(model, {
      maxSequences: opts.maxSequences, maxLength: opts.maxLength ?? model.config.max_position_embeddings, precision,
    });
  }
  /** Prefills each prompt once and forks it into `copies` sequences; streams[p*copies + j] keys copy j of prompt p. */
  async addPrompts(prompts: number[][], opts: { copies?: number; streams?: number[] } = {}): Promise<number[]> {
    checkPrompts(this.model, prompts);
    const copies = checkInt('copies', opts.copies ?? 1, 1, MAX_N);
    const streams = opts.streams ?? prompts.flatMap((_, p) => Array.from({ length: copies }, (_, j) => p * MAX_N + j));
    const slots: Int32Array = await this.raw.addPrompts({
      tokens: Int32Array.from(prompts.flat()), lengths: Int32Array.from(prompts.map((p) => p.length)), copies,
      streams: Float64Array.from(streams), threads: this.threads,
    });
    return Array.from(slots);
  }
  /** Samples up to `steps` tokens for each listed sequence that is not finished. */
  async sample(slots: number[], opts: SessionSampleOptions): Promise<SessionSampleResult> {
    const r = await this.raw.sample({
      slots: Int32Array.from(slots), steps: opts.steps, maxNewTokens: opts.maxNewTokens, temperature: opts.temperature ?? 1,
      topK: opts.topK ?? 0, topP: opts.topP ?? 1, seed: opts.seed ?? 0, stopTokens: Int32Array.from(opts.stopTokens ?? []),
      threads: this.threads,
    });
    return { ...r, finish: Array.from(r.finish as Int8Array, (f) => FINISH_NAMES[f]) };
  }
  /** New sequences continuing from `parent` (its cache, tokens and finish state), one per stream. */
  fork(parent: number, streams: number[]): number[] {
    return Array.from(this.raw.fork({ parent, streams: Float64Array.from(streams) }) as Int32Array);
  }
  /** Appends given tokens (teacher forcing); their log-probs (temperature 1) and values given all before. */
  async extend(slot: number, tokens: number[]): Promise<{ logprob: Float32Array; value?: Float32Array }> {
    return this.raw.extend({ slot, tokens: Int32Array.from(tokens), threads: this.threads });
  }
  /** Next-token logits (and value) of a sequence. */
  async nextLogits(slot: number): Promise<{ logits?: Float32Array; value?: number }> {
    return this.raw.nextLogits({ slot, threads: this.threads });
  }
  info(slot: number): { tokens: Int32Array; promptLength: number; generated: number; finish: 'none' | FinishReason; stream: number } {
    return this.raw.info(slot);
  }
  /** Frees sequences (their slots are reused by later prompts and forks). */
  release(slots: number[]): void { this.raw.release(Int32Array.from(slots)); }
  /** Frees the cache now (otherwise at garbage collection). */
  dispose(): void { this.raw.dispose(); }
}
