// A judge run by a reward model: prefers the output with the higher reward. The scoring itself comes from the
// engine (issue #4) through the small PairScorer interface, so this layer needs no engine internals.
import { performance } from 'node:perf_hooks';
import { hashFields, HashRng } from './hash.ts';
import type { AnnotateOptions, Annotation, AnnotatorStats, AnnotatorWithStats, Pair, PairScorer } from './types.ts';
import { emptyStats, validatePairs } from './util.ts';

export interface RewardModelJudgeOptions {
  name?: string;
  /**
   * 0 (default): the higher reward wins. T > 0: a Bradley-Terry draw with P(output_2) = sigmoid((r2 - r1) / T),
   * seeded by the pair's content, as an LLM judge sampled at a temperature.
   */
  temperature?: number;
  /** Return the Bradley-Terry probability as a soft preference 1 + P(output_2 wins) instead of a hard label. */
  soft?: boolean;
  seed?: number;
  /** Pairs per scorer call (default 64). */
  batchSize?: number;
}

export class RewardModelJudge implements AnnotatorWithStats {
  readonly name: string;
  private readonly counters: AnnotatorStats = emptyStats();
  constructor(private readonly scorer: PairScorer, private readonly opts: RewardModelJudgeOptions = {}) {
    this.name = opts.name ?? 'reward-model';
    if ((opts.temperature ?? 0) < 0) throw new Error('reward-model judge: temperature must be >= 0');
  }

  stats(): AnnotatorStats {
    return { ...this.counters };
  }

  async annotate(pairs: Pair[], opts: AnnotateOptions = {}): Promise<Annotation[]> {
    validatePairs(pairs);
    const t0 = performance.now();
    const out: Annotation[] = [];
    const bs = this.opts.batchSize ?? 64;
    const T = this.opts.temperature ?? 0;
    for (let start = 0; start < pairs.length; start += bs) {
      if (opts.signal?.aborted) throw new Error('annotation aborted');
      const chunk = pairs.slice(start, start + bs);
      const started = performance.now();
      const rewards = await this.scorer.score(chunk);
      if (rewards.length !== chunk.length) throw new Error(`reward scorer returned ${rewards.length} scores for ${chunk.length} pairs`);
      const per = (performance.now() - started) / 1000 / chunk.length;
      chunk.forEach((p, j) => {
        const [r1, r2] = rewards[j];
        let pref: number | null;
        if (p.output_1 === p.output_2) pref = 0;
        else if (!Number.isFinite(r1) || !Number.isFinite(r2)) pref = null;
        else {
          const gap = r2 - r1;
          const prob2 = T > 0 ? 1 / (1 + Math.exp(-gap / T)) : gap > 0 ? 1 : gap < 0 ? 0 : 0.5;
          if (this.opts.soft) pref = 1 + prob2;
          else if (prob2 === 0.5 && T === 0) pref = 1.5; // exactly equal rewards: an honest half
          else {
            const u = new HashRng(hashFields(this.opts.seed ?? 0, p.instruction, p.input, p.output_1, p.output_2)).next();
            pref = u < prob2 ? 2 : 1;
          }
        }
        const a: Annotation = { ...p, preference: pref, annotator: this.name, price_per_example: 0, time_per_example: per };
        if (pref === null) a.error = 'reward scorer returned a non-finite reward';
        out.push(a);
      });
      opts.onProgress?.(Math.min(pairs.length, start + bs), pairs.length);
    }
    this.counters.pairs += pairs.length;
    for (const a of out) a.preference === null ? (this.counters.failed += 1) : (this.counters.labelled += 1);
    this.counters.seconds += (performance.now() - t0) / 1000;
    return out;
  }
}
