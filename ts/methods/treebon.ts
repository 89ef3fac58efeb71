// TreeBoN (Qiu et al., 2024): best-of-N decoding as a speculative tree search. N candidates grow segment by
// segment; between segments the candidates are scored by a partial reward, the best N / N_children are kept
// and each is continued by N_children children; the final reward picks the best complete candidate. Every
// layer generates N segments, so the tree generates as many tokens as best-of-N at the same N and length.
//
// The paper's code was not published; the choices it leaves open, as made here (docs/methods.md):
// - Children fork their parent's KV cache (engine.session().fork): no prefix is recomputed. Child 0 is the
//   parent itself, continued on the parent's RNG stream; children 1.. get fresh streams. So a child samples
//   exactly what the unforked parent would have, and with N_children = 1 TreeBoN returns best-of-N's samples
//   (the same streams as engine.generate), whatever the depth.
// - A candidate that ends (EOS, context) before its layer ends is a leaf: it leaves the beam, is not
//   extended, and competes in the final choice. The pruning ranks the unfinished candidates only; when fewer
//   than N / N_children remain, all are kept (that layer then generates fewer than N segments).
// - Segment lengths: l_max / N_layer, the remainder spread so the segments sum to l_max (or a fixed
//   segmentLength for every layer but the last, which takes the rest).
// - Partial reward 'implicit-dpo': Σ_k w_k (log π_dpo(y_k | x, y<k) − log π_ref(y_k | x, y<k)) over the prefix's
//   response tokens, w_k = 1/(k+1) with k = 0 the first response token; computed incrementally from KV-cache
//   sessions of the DPO model and its reference (extend with each new segment, fork with the tree), so
//   neither model recomputes a prefix either. 'reward-model': the reward source read on the prefix (a reward
//   model's scalar head at the prefix's last token).
// - Final choice: the final reward's argmax over every leaf; ties go to the earliest candidate (roots in
//   sample order, children after, in creation order), as best-of-n's ties go to the earliest sample.
import { sampleStream, type Engine, type GenerationSession, type Model } from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import {
  batches, ConfigError, decodeResponse, encodePrompt, mean, resolveConfig, since, toRewardFn, withStep,
  type Candidate, type MethodTokenizer, type RewardSource,
} from './common.ts';

export type PartialRewardKind = 'implicit-dpo' | 'reward-model';

export interface TreeBoNConfig {
  /** N, candidates per layer (the paper's N; as many tokens as best-of-N). */
  n: number;
  /** N_children, children of each kept candidate; n must be divisible by it (1: best-of-N). */
  branchingFactor: number;
  /** N_layer, segments (layers) of the tree. */
  depth: number;
  /** l_max, cap on new tokens per candidate (AlpacaFarm: 300). */
  maxNewTokens: number;
  /** Tokens per segment for every layer but the last (which takes the rest); null: l_max / depth. */
  segmentLength: number | null;
  /** T, sampling temperature. */
  temperature: number;
  /** p of nucleus sampling (1 = off). */
  topP: number;
  /** k of top-k sampling (0 = off). */
  topK: number;
  /** How prefixes are ranked between layers: the weighted implicit DPO reward, or the reward source on the prefix. */
  partialReward: PartialRewardKind;
  /** Instructions searched together (memory: promptBatchSize × n sequences in each session). */
  promptBatchSize: number;
  /** Sequences per reward-model forward pass. */
  scoreBatchSize: number;
  /** Sampling seed. */
  seed: number;
  /** Name written to the outputs' `generator` field (default `treebon-<n>x<b>x<d>`). */
  generator?: string;
  /** Keep every leaf and its reward in the result. */
  keepCandidates: boolean;
  onProgress?: (p: { done: number; total: number }) => void;
}

export const TREEBON_DEFAULTS: Readonly<TreeBoNConfig> = Object.freeze({
  n: 16, branchingFactor: 4, depth: 4, maxNewTokens: 300, segmentLength: null, temperature: 1, topP: 0.9, topK: 0,
  partialReward: 'implicit-dpo', promptBatchSize: 16, scoreBatchSize: 32, seed: 1, keepCandidates: false,
});

export const TREEBON_HELP: Record<'n' | 'branchingFactor' | 'depth' | 'maxNewTokens' | 'segmentLength' | 'temperature' | 'topP' | 'topK' | 'partialReward' | 'promptBatchSize' | 'scoreBatchSize' | 'seed', string> = {
  n: 'N, candidates per layer (generates as many tokens as best-of-N)',
  branchingFactor: 'N_children, children per kept candidate (n divisible by it; 1 = best-of-N)',
  depth: 'N_layer, segments of the tree',
  maxNewTokens: 'l_max, cap on new tokens per candidate (AlpacaFarm 300)',
  segmentLength: 'tokens per segment but the last (null: l_max / depth)',
  temperature: 'sampling temperature',
  topP: 'nucleus p (1 = off)',
  topK: 'top-k (0 = off)',
  partialReward: 'prefix ranking: implicit-dpo (weighted DPO log-ratio, needs a DPO model and its reference) or reward-model',
  promptBatchSize: 'instructions searched together (memory: x n sequences)',
  scoreBatchSize: 'sequences per reward-model forward pass',
  seed: 'sampling seed',
};

/** Every TreeBoN setting, defaults filled in and checked. */
export function resolveTreeBoNConfig(config: Partial<TreeBoNConfig> = {}): TreeBoNConfig {
  const c = resolveConfig('TreeBoN', TREEBON_DEFAULTS as TreeBoNConfig, config, {
    int: [['n', 1], ['branchingFactor', 1], ['depth', 1], ['maxNewTokens', 1], ['promptBatchSize', 1], ['scoreBatchSize', 1], ['topK', 0], ['seed', 0]],
    range: [['temperature', 0, Infinity], ['topP', Number.MIN_VALUE, 1]],
    optional: ['generator', 'onProgress'],
  });
  if (c.n % c.branchingFactor !== 0) throw new ConfigError(`TreeBoN config n (${c.n}) must be divisible by branchingFactor (${c.branchingFactor})`);
  if (c.partialReward !== 'implicit-dpo' && c.partialReward !== 'reward-model')
    throw new ConfigError(`TreeBoN config partialReward must be 'implicit-dpo' or 'reward-model', got ${JSON.stringify(c.partialReward)}`);
  if (typeof c.keepCandidates !== 'boolean') throw new ConfigError(`TreeBoN config keepCandidates must be true or false, got ${c.keepCandidates}`);
  segmentLengths(c);
  return c;
}

/** New tokens of each layer (they sum to maxNewTokens). */
export function segmentLengths(c: Pick<TreeBoNConfig, 'maxNewTokens' | 'depth' | 'segmentLength'>): number[] {
  const { maxNewTokens: L, depth: D, segmentLength: s } = c;
  if (D > L) throw new ConfigError(`TreeBoN config depth (${D}) exceeds maxNewTokens (${L}): every layer needs at least one token`);
  if (s === null || s === undefined) return Array.from({ length: D }, (_, i) => Math.floor((L * (i + 1)) / D) - Math.floor((L * i) / D));
  if (!Number.isInteger(s) || s < 1) throw new ConfigError(`TreeBoN config segmentLength must be an integer >= 1 or null, got ${s}`);
  const last = L - (D - 1) * s;
  if (last < 1) throw new ConfigError(`TreeBoN config segmentLength ${s} x ${D - 1} layers leaves no token of maxNewTokens ${L} for the last layer`);
  return [...Array.from({ length: D - 1 }, () => s), last];
}

/** w_k = 1/(k+1), k = 0 the first response token. */
export const implicitRewardWeight = (k: number): number => 1 / (k + 1);

/** Σ_i w_(offset+i) (dpo_i − ref_i): the weighted implicit DPO reward of response tokens offset, offset+1, ... */
export function weightedImplicitReward(dpoLogps: ArrayLike<number>, refLogps: ArrayLike<number>, offset = 0): number {
  if (dpoLogps.length !== refLogps.length) throw new Error(`weightedImplicitReward: ${dpoLogps.length} DPO log-probs but ${refLogps.length} reference log-probs`);
  let s = 0;
  for (let i = 0; i < dpoLogps.length; i++) s += implicitRewardWeight(offset + i) * (dpoLogps[i] - refLogps[i]);
  return s;
}

/**
 * The weighted implicit DPO reward of growing prefixes, from KV-cache sessions of the DPO model and its
 * reference that follow the search tree: each handle is a prefix; extend() scores new tokens given everything
 * before (no prefix recomputed) and returns the prefix's reward; fork() copies a prefix for a child.
 * When the DPO model is the sampling policy, pass the sampler's log-probs to extend() and its session is skipped.
 */
export class ImplicitRewardScorer {
  private dpoSession: GenerationSession | null;
  private refSession: GenerationSession;
  private nodes = new Map<number, { dpo: number; ref: number; k: number; sum: number }>();
  private next = 0;
  /** Tokens scored (per model). */
  tokens = 0;
  constructor(engine: Engine, readonly dpo: Model | null, readonly ref: Model, opts: { maxSequences: number; maxLength: number }) {
    if (dpo && !dpo.config.lm_head) throw new Error('TreeBoN: the DPO model has no LM head');
    if (!ref.config.lm_head) throw new Error('TreeBoN: the reference model has no LM head');
    this.dpoSession = dpo ? engine.session(dpo, opts) : null;
    this.refSession = engine.session(ref, opts);
  }
  /** One handle per (prompt, copy); every handle starts at reward 0 with no response token. */
  async start(prompts: number[][], copies: number): Promise<number[]> {
    const d = this.dpoSession ? await this.dpoSession.addPrompts(prompts, { copies }) : null;
    const r = await this.refSession.addPrompts(prompts, { copies });
    return r.map((slot, i) => this.add({ dpo: d ? d[i] : -1, ref: slot, k: 0, sum: 0 }));
  }
  private add(n: { dpo: number; ref: number; k: number; sum: number }): number {
    this.nodes.set(this.next, n);
    return this.next++;
  }
  private node(h: number) {
    const n = this.nodes.get(h);
    if (!n) throw new Error(`ImplicitRewardScorer: no prefix ${h}`);
    return n;
  }
  /** Scores `tokens` after the prefix; `policyLogps` are the DPO model's log-probs when it sampled them itself. */
  async extend(h: number, tokens: number[], policyLogps?: ArrayLike<number>): Promise<number> {
    const n = this.node(h);
    if (tokens.length === 0) return n.sum;
    let lpd: ArrayLike<number>;
    if (this.dpoSession) lpd = (await this.dpoSession.extend(n.dpo, tokens)).logprob;
    else {
      if (!policyLogps || policyLogps.length !== tokens.length) throw new Error('ImplicitRewardScorer: the DPO model is the policy; pass the sampled log-probs');
      lpd = policyLogps;
    }
    const lpr = (await this.refSession.extend(n.ref, tokens)).logprob;
    n.sum += weightedImplicitReward(lpd, lpr, n.k);
    n.k += tokens.length;
    this.tokens += tokens.length;
    return n.sum;
  }
  reward(h: number): number { return this.node(h).sum; }
  fork(h: number, count: number): number[] {
    const n = this.node(h);
    const d = this.dpoSession ? this.dpoSession.fork(n.dpo, Array.from({ length: count }, () => 0)) : null;
    const r = this.refSession.fork(n.ref, Array.from({ length: count }, () => 0));
    return r.map((slot, i) => this.add({ dpo: d ? d[i] : -1, ref: slot, k: n.k, sum: n.sum }));
  }
  release(hs: number[]): void {
    const ns = hs.map((h) => this.node(h));
    this.dpoSession?.release(ns.map((n) => n.dpo));
    this.refSession.release(ns.map((n) => n.ref));
    hs.forEach((h) => this.nodes.delete(h));
  }
  dispose(): void { this.dpoSession?.dispose(); this.refSession.dispose(); }
}

/** One chosen output (alpaca_eval's model_outputs fields) and how it was found. */
export interface TreeBoNOutput {
  instruction: string;
  input: string;
  output: string;
  generator: string;
  /** Final reward of the chosen leaf. */
  reward: number;
  /** Its token ids (EOS included when it stopped). */
  tokens: number[];
  finishReason: string;
  /** Layer (1-based) where the chosen leaf ended. */
  layer: number;
  /** Leaves the final reward chose among. */
  leaves: number;
  /** Tokens generated for this instruction (every segment of every candidate). */
  generatedTokens: number;
}

export interface TreeBoNMetrics {
  'treebon/n': number;
  'treebon/branching_factor': number;
  'treebon/depth': number;
  /** Mean final reward of the chosen outputs. */
  'treebon/reward_best': number;
  /** Mean final reward over every leaf. */
  'treebon/reward_mean': number;
  /** Tokens generated in total (all candidates, all layers): the compute that best-of-n's `bon/generated_tokens` is compared with. */
  'treebon/generated_tokens': number;
  'treebon/generated_tokens_per_instruction': number;
  /** Tokens the partial reward read (per model for the implicit DPO reward; prefix tokens for a reward model). */
  'treebon/partial_reward_tokens': number;
  'treebon/leaves_per_instruction': number;
  /** Fraction of leaves that ended (EOS) before the last layer. */
  'treebon/early_leaf_fraction': number;
  'treebon/response_length': number;
  'treebon/eos_fraction': number;
  'treebon/instructions': number;
  'time/generate_ms': number;
  'time/partial_ms': number;
  'time/score_ms': number;
}

export interface TreeBoNResult {
  outputs: TreeBoNOutput[];
  /**
   * Every leaf and its final reward, per instruction (only with keepCandidates); `sample` is the RNG stream of its
   * last segment as a sample index: j < n is root j continued on its own stream (best-of-n's sample j).
   */
  candidates?: { output: string; tokens: number[]; reward: number; layer: number; sample: number }[][];
  metrics: TreeBoNMetrics;
}

export interface TreeBoNArgs {
  /** The sampling policy (the paper: the SFT model). */
  policy: Model;
  /** The final scorer: a reward model, a reward function or a pair scorer. */
  reward: RewardSource;
  /** partialReward 'implicit-dpo': the DPO-trained model and its reference (the model DPO started from). */
  dpo?: Model;
  ref?: Model;
  /** partialReward 'reward-model': the source read on prefixes (default: `reward`). */
  partialReward?: RewardSource;
  tokenizer: MethodTokenizer;
  records: AlpacaExample[];
  config?: Partial<TreeBoNConfig>;
}

interface TreeNode {
  id: number;        // order for ties: roots 0..n-1, children in creation order
  row: number;       // index in the batch
  slot: number;      // policy session slot
  handle: number;    // ImplicitRewardScorer handle (-1 without)
  stream: number;
  tokens: number[];
  segStart: number;  // where the last segment starts in tokens
  logps: number[];   // sampler log-probs (temperature 1) of the last segment, for a DPO model that is the policy
  finish: 'none' | 'stop' | 'length' | 'context';
  layer: number;     // layer where it ended (leaves)
  partial: number;
}

/** TreeBoN decoding of `records` (see the file comment for every choice the paper leaves open). */
export async function treeBoN(engine: Engine, args: TreeBoNArgs): Promise<TreeBoNResult> {
  const c = resolveTreeBoNConfig(args.config);
  const { policy, tokenizer: tok, records } = args;
  if (records.length === 0) throw new Error('treeBoN: no records');
  if (!policy.config.lm_head) throw new Error('treeBoN: the policy has no LM head');
  const implicit = c.partialReward === 'implicit-dpo';
  if (implicit && (!args.dpo || !args.ref))
    throw new ConfigError('TreeBoN partialReward implicit-dpo needs the DPO model and its reference (dpo, ref); or use partialReward reward-model');
  const segs = segmentLengths(c);
  const generator = c.generator ?? `treebon-${c.n}x${c.branchingFactor}x${c.depth}`;
  const score = toRewardFn(engine, args.reward, tok, { batchSize: c.scoreBatchSize });
  const partialScore = !implicit && c.depth > 1 ? toRewardFn(engine, args.partialReward ?? args.reward, tok, { batchSize: c.scoreBatchSize }) : null;
  const keep = c.n / c.branchingFactor;
  const stop = tok.eosId !== null && tok.eosId !== undefined ? [tok.eosId] : [];
  const P = policy.config.max_position_embeddings;
  const outputs: TreeBoNOutput[] = [];
  const candidates: TreeBoNResult['candidates'] = c.keepCandidates ? [] : undefined;
  let genMs = 0, partialMs = 0, scoreMs = 0, genTokens = 0, partialTokens = 0, leafCount = 0, earlyLeaves = 0, rewardSum = 0;

  for (const rows of batches(records.map((_, i) => i), c.promptBatchSize)) {
    const prompts = rows.map((i) => encodePrompt(tok, records[i]));
    const maxLength = Math.min(P, Math.max(...prompts.map((p) => p.length)) + c.maxNewTokens);
    // n live candidates per instruction, plus its prompt's first copy, whose cache the others read after it is pruned
    const maxSequences = rows.length * (c.n + 1);
    const session = engine.session(policy, { maxSequences, maxLength });
    const scorer = implicit ? new ImplicitRewardScorer(engine, args.dpo === policy ? null : args.dpo!, args.ref!, { maxSequences, maxLength }) : null;
    try {
      let t = performance.now();
      const streams = rows.flatMap((i) => Array.from({ length: c.n }, (_, j) => sampleStream(i, j)));
      const slots = await session.addPrompts(prompts, { copies: c.n, streams });
      const handles = scorer ? await scorer.start(prompts, c.n) : null;
      genMs += since(t);
      let live: TreeNode[] = slots.map((slot, k) => ({ id: k % c.n, row: Math.floor(k / c.n), slot, handle: handles ? handles[k] : -1, stream: streams[k],
        tokens: [], segStart: 0, logps: [], finish: 'none', layer: 0, partial: 0 }));
      const nextId = rows.map(() => c.n);
      const fresh = rows.map(() => c.n);  // next unused sample index of each instruction's streams
      const leaves: TreeNode[][] = rows.map(() => []);
      const genByRow = rows.map(() => 0);
      for (let layer = 0; layer < c.depth; layer++) {
        if (layer > 0 && c.branchingFactor > 1) {
          // `live` holds the kept parents (the pruned ones were released): each gets N_children - 1 forks
          const next: TreeNode[] = [];
          for (const parent of live) {
            next.push(parent);  // child 0: the parent itself, continued on its own stream
            const kidStreams = Array.from({ length: c.branchingFactor - 1 }, () => sampleStream(rows[parent.row], fresh[parent.row]++));
            const kidSlots = session.fork(parent.slot, kidStreams);
            const kidHandles = scorer ? scorer.fork(parent.handle, kidStreams.length) : null;
            kidSlots.forEach((slot, k) => next.push({ ...parent, id: nextId[parent.row]++, slot, handle: kidHandles ? kidHandles[k] : -1,
              stream: kidStreams[k], tokens: [...parent.tokens] }));
          }
          live = next;
        }
        t = performance.now();
        const r = await session.sample(live.map((x) => x.slot), {
          steps: segs[layer], maxNewTokens: c.maxNewTokens, temperature: c.temperature, topP: c.topP, topK: c.topK, seed: c.seed, stopTokens: stop,
        });
        genMs += since(t);
        const bySlot = new Map(live.map((x) => [x.slot, x]));
        for (const x of live) { x.segStart = x.tokens.length; x.logps = []; }
        for (let i = 0; i < r.token.length; i++) {
          const x = bySlot.get(r.slot[i])!;
          x.tokens.push(r.token[i]);
          x.logps.push(r.logprob[i]);
          genByRow[x.row]++;
        }
        genTokens += r.token.length;
        live.forEach((x, i) => { x.finish = r.finish[i] === 'none' && layer === c.depth - 1 ? 'length' : r.finish[i]; });
        // candidates that ended are leaves: out of the beam, into the final choice
        const ended = live.filter((x) => x.finish !== 'none');
        for (const x of ended) {
          x.layer = layer + 1;
          leaves[x.row].push(x);
          if (layer < c.depth - 1) earlyLeaves++;
        }
        session.release(ended.map((x) => x.slot));
        scorer?.release(ended.map((x) => x.handle));
        live = live.filter((x) => x.finish === 'none');
        if (layer === c.depth - 1 || live.length === 0) break;
        // partial rewards of the prefixes that go on, then pruning to the best `keep` of each instruction
        t = performance.now();
        if (scorer) {
          for (const x of live) x.partial = await scorer.extend(x.handle, x.tokens.slice(x.segStart), x.logps);
        } else {
          const cands = live.map((x) => candidateOf(tok, records, rows, prompts, x));
          const s = await withStep('TreeBoN partial reward', layer + 1, () => partialScore!(cands));
          live.forEach((x, i) => { x.partial = s[i]; });
          partialTokens += cands.reduce((a, x) => a + x.response.length, 0);
        }
        partialMs += since(t);
        const byRow = rows.map(() => [] as TreeNode[]);
        for (const x of live) byRow[x.row].push(x);
        const kept = byRow.flatMap((g) => g.sort((a, b) => b.partial - a.partial || a.id - b.id).slice(0, keep));
        const keptSet = new Set(kept);
        const pruned = live.filter((x) => !keptSet.has(x));
        session.release(pruned.map((x) => x.slot));
        scorer?.release(pruned.map((x) => x.handle));
        live = kept;
      }
      if (scorer) partialTokens += scorer.tokens;
      // final choice among the leaves
      t = performance.now();
      const flat = leaves.flat();
      const rewards = await withStep('TreeBoN', outputs.length, () => score(flat.map((x) => candidateOf(tok, records, rows, prompts, x))));
      scoreMs += since(t);
      let at = 0;
      rows.forEach((i, k) => {
        const group = leaves[k].map((x) => ({ x, reward: rewards[at++] }));
        group.sort((a, b) => a.x.id - b.x.id);
        let best = group[0];
        for (const g of group) if (g.reward > best.reward) best = g;
        leafCount += group.length;
        rewardSum += group.reduce((a, g) => a + g.reward, 0);
        outputs.push({ instruction: records[i].instruction, input: records[i].input ?? '', output: decodeResponse(tok, best.x.tokens), generator, reward: best.reward,
          tokens: best.x.tokens, finishReason: best.x.finish, layer: best.x.layer, leaves: group.length, generatedTokens: genByRow[k] });
        candidates?.push(group.map((g) => ({ output: decodeResponse(tok, g.x.tokens), tokens: g.x.tokens, reward: g.reward, layer: g.x.layer,
          sample: g.x.stream - sampleStream(i, 0) })));
      });
    } finally {
      session.dispose();
      scorer?.dispose();
    }
    c.onProgress?.({ done: outputs.length, total: records.length });
  }
  const N = records.length;
  return {
    outputs,
    ...(candidates ? { candidates } : {}),
    metrics: {
      'treebon/n': c.n, 'treebon/branching_factor': c.branchingFactor, 'treebon/depth': c.depth,
      'treebon/reward_best': mean(outputs.map((o) => o.reward)),
      'treebon/reward_mean': rewardSum / leafCount,
      'treebon/generated_tokens': genTokens,
      'treebon/generated_tokens_per_instruction': genTokens / N,
      'treebon/partial_reward_tokens': partialTokens,
      'treebon/leaves_per_instruction': leafCount / N,
      'treebon/early_leaf_fraction': earlyLeaves / leafCount,
      'treebon/response_length': mean(outputs.map((o) => o.tokens.length)),
      'treebon/eos_fraction': outputs.filter((o) => o.finishReason === 'stop').length / N,
      'treebon/instructions': N,
      'time/generate_ms': genMs, 'time/partial_ms': partialMs, 'time/score_ms': scoreMs,
    },
  };
}

function candidateOf(tok: MethodTokenizer, records: AlpacaExample[], rows: number[], prompts: number[][], x: TreeNode): Candidate {
  const i = rows[x.row];
  return { instruction: records[i].instruction, input: records[i].input ?? '', prompt: prompts[x.row], response: x.tokens, output: decodeResponse(tok, x.tokens), record: i };
}
