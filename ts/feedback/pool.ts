// A pool of annotators behaving as one (AlpacaFarm's annotator pool): each instruction goes to one member chosen
// by a stable hash of (instruction, input, seed); the two outputs are swapped for a seeded half of the pairs and
// the label swapped back, which cancels a member's position bias on average; optional training-time noise
// replaces a label by a fair draw from {1, 2} with probability p. All of it is a function of content and seed,
// so two processes give the same labels. Noise is applied after the members answer, so members' caches only
// ever hold clean labels.
import { performance } from 'node:perf_hooks';
import { hashFields, unitFromHash } from './hash.ts';
import type { AnnotateOptions, Annotation, Annotator, AnnotatorStats, Pair, Preference } from './types.ts';
import { emptyStats, validatePairs } from './util.ts';

export interface PoolOptions {
  /** Pool name (default "pool"). */
  name?: string;
  /** Seed of routing, swaps and noise (default 0). */
  seed?: number;
  /** Probability that a label is replaced by a fair draw from {1, 2} (training-time noise; default 0). */
  flipP?: number;
  /** Randomly swap the outputs shown to members and swap labels back (default true). */
  swap?: boolean;
}

// Salts keep routing, swapping and noise independent of each other for the same seed.
const SALT_SWAP = 0x5bd1e995;
const SALT_NOISE = 0x68e31da4;
const SALT_DRAW = 0x1b56c4e9;

/** Member index for a pair: uniform over members by a hash of (instruction, input, seed). */
export function routeIndex(pair: Pair, seed: number, members: number): number {
  return hashFields(seed, pair.instruction, pair.input ?? '') % members;
}

/** One hash of a pair's content and the seed; swap and noise draws are derived from it by salted mixing. */
export function pairHash(pair: Pair, seed: number): number {
  return hashFields(seed, pair.instruction, pair.input ?? '', pair.output_1, pair.output_2);
}

function derive(h: number, salt: number): number {
  return hashFields(h ^ salt);
}

/** Whether the pool shows this pair swapped (seeded, about half of the pairs). */
export function isSwapped(pair: Pair, seed: number, h: number = pairHash(pair, seed)): boolean {
  return (derive(h, SALT_SWAP) & 1) === 1;
}

/** The noise draw for a pair: whether the label is replaced, and by what. */
export function noiseDraw(pair: Pair, seed: number, p: number, h: number = pairHash(pair, seed)): { replaced: boolean; label: 1 | 2 } {
  if (p <= 0) return { replaced: false, label: 1 };
  if (unitFromHash(derive(h, SALT_NOISE)) >= p) return { replaced: false, label: 1 };
  return { replaced: true, label: derive(h, SALT_DRAW) & 1 ? 2 : 1 };
}

/** 1 <-> 2, soft s -> 3 - s, draws and failures unchanged. */
export function swapBack(p: Preference): Preference {
  if (p === null || p === 0) return p;
  return 3 - p;
}

export class AnnotatorPool implements Annotator {
  readonly name: string;
  readonly seed: number;
  readonly flipP: number;
  readonly swap: boolean;
  private readonly own: AnnotatorStats = emptyStats();

  constructor(readonly members: Annotator[], opts: PoolOptions = {}) {
    if (members.length === 0) throw new Error('annotator pool: no members');
    const names = new Set<string>();
    for (const m of members) {
      if (names.has(m.name)) throw new Error(`annotator pool: two members named "${m.name}"`);
      names.add(m.name);
    }
    this.name = opts.name ?? 'pool';
    this.seed = opts.seed ?? 0;
    this.flipP = opts.flipP ?? 0;
    if (!(this.flipP >= 0 && this.flipP <= 1)) throw new Error(`annotator pool: flip probability must be in [0, 1], got ${opts.flipP}`);
    this.swap = opts.swap ?? true;
  }

  route(pair: Pair): Annotator {
    return this.members[routeIndex(pair, this.seed, this.members.length)];
  }

  async annotate(pairs: Pair[], opts: AnnotateOptions = {}): Promise<Annotation[]> {
    validatePairs(pairs);
    const t0 = performance.now();
    const n = this.members.length;
    const groups: Array<{ idx: number[]; shown: Pair[]; swapped: boolean[] }> = this.members.map(() => ({ idx: [], shown: [], swapped: [] }));
    const hashes = new Uint32Array(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      const p = pairs[i];
      const g = groups[routeIndex(p, this.seed, n)];
      const h = (hashes[i] = this.swap || this.flipP > 0 ? pairHash(p, this.seed) : 0);
      const sw = this.swap && isSwapped(p, this.seed, h);
      g.idx.push(i);
      g.swapped.push(sw);
      g.shown.push(sw ? { instruction: p.instruction, input: p.input ?? '', output_1: p.output_2, output_2: p.output_1 } : p);
    }
    const out: Annotation[] = new Array(pairs.length);
    const doneBy = new Array<number>(n).fill(0);
    const report = () => opts.onProgress?.(doneBy.reduce((a, b) => a + b, 0), pairs.length);
    await Promise.all(
      groups.map(async (g, m) => {
        if (g.idx.length === 0) return;
        const labels = await this.members[m].annotate(g.shown, {
          ...opts,
          onProgress: opts.onProgress ? (d) => ((doneBy[m] = d), report()) : undefined,
        });
        const reused = new Set<Annotation>();
        if (labels.length !== g.idx.length) throw new Error(`annotator ${this.members[m].name} returned ${labels.length} annotations for ${g.idx.length} pairs`);
        for (let j = 0; j < g.idx.length; j++) {
          const i = g.idx[j];
          let a = labels[j];
          const p = pairs[i];
          // Relabel in place rather than copy (this loop runs 20k+ times/s); copy only an object a member
          // returned twice, so that no label is swapped back twice.
          if (reused.has(a)) a = { ...a };
          reused.add(a);
          a.instruction = p.instruction;
          a.input = p.input ?? '';
          a.output_1 = p.output_1;
          a.output_2 = p.output_2;
          if (g.swapped[j]) {
            a.preference = swapBack(a.preference);
            a.swapped = true;
          }
          out[i] = a;
        }
      }),
    );
    if (this.flipP > 0) {
      for (let i = 0; i < out.length; i++) {
        const a = out[i];
        // Draws mark identical outputs and failures carry no label: neither is noised.
        if (a.preference === null || a.preference === 0) continue;
        const d = noiseDraw(pairs[i], this.seed, this.flipP, hashes[i]);
        if (d.replaced) {
          a.preference = d.label;
          a.label_noise = true;
        }
      }
    }
    this.own.pairs += pairs.length;
    for (const a of out) {
      if (a.preference === null) this.own.failed += 1;
      else this.own.labelled += 1;
    }
    this.own.seconds += (performance.now() - t0) / 1000;
    return out;
  }

  stats(): AnnotatorStats {
    const s = { ...this.own };
    for (const m of this.members) {
      const ms = (m as { stats?: () => AnnotatorStats }).stats?.();
      if (!ms) continue;
      s.cacheHits += ms.cacheHits;
      s.requests += ms.requests;
      s.retries += ms.retries;
      s.promptTokens += ms.promptTokens;
      s.completionTokens += ms.completionTokens;
      s.cost += ms.cost;
    }
    return s;
  }
}
