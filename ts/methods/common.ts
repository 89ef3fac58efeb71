// Shared machinery of the methods (best-of-n, expert iteration, PPO, DPO): Alpaca-template encoding of
// prompts and responses, decoding of samples, rewards from any source (a reward model, a function, a pair
// scorer), sampling in bounded chunks, frozen copies of models. One copy of each loop, used by every method.
import { Model, type Engine, type GenerateOptions, type Sample } from '../engine/index.ts';
import { formatPrompt, type AlpacaExample, type TextEncoderLike } from '../data/template.ts';
import type { Pair, PairScorer } from '../feedback/types.ts';

export { shuffled } from './sft.ts';

/** What the methods need from a tokenizer (the farm BPE tokenizer and tokenizer.json tokenizers fit). */
export interface MethodTokenizer extends TextEncoderLike {
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
  readonly padId?: number | null;
}

/** Pad id for batches: the tokenizer's PAD, else EOS, else 0 (padding sits after every position read). */
export function padIdOf(tok: MethodTokenizer): number {
  return tok.padId ?? tok.eosId ?? 0;
}

/** BOS + the Alpaca prompt of a record (as SFT trained on it: data text never yields control tokens). */
export function encodePrompt(tok: MethodTokenizer, ex: AlpacaExample): number[] {
  return tok.encode(formatPrompt(ex), { addBos: tok.bosId !== null, parseSpecial: false });
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
    if (bad >= 0) throw new Error(`reward of candidate ${bad} is not a finite number (${r[bad]})`);
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

/** Merges a user config over defaults and checks the fields named in `checks` (integers >= min, numbers in ranges). */
export function resolveConfig<C extends object>(what: string, defaults: C, over: Partial<C> | undefined,
  checks: { int?: [keyof C, number][]; range?: [keyof C, number, number][] } = {}): C {
  const c = { ...defaults } as C;
  for (const [k, v] of Object.entries(over ?? {})) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  for (const [k, min] of checks.int ?? []) {
    const v = c[k] as unknown;
    if (!Number.isInteger(v) || (v as number) < min) throw new Error(`${what} config ${String(k)} must be an integer >= ${min}, got ${v}`);
  }
  for (const [k, lo, hi] of checks.range ?? []) {
    const v = c[k] as unknown;
    if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new Error(`${what} config ${String(k)} must be a number in [${lo}, ${hi}], got ${v}`);
  }
  return c;
}

/** Milliseconds since `t0` (performance.now()). */
export const since = (t0: number): number => performance.now() - t0;
