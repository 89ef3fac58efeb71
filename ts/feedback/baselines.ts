// Reference judges that need no world and no model: the rows alpaca_eval lists beside real judges
// ("longest") and the trivial ones an analysis should be checked against.
import { hashFields } from './hash.ts';
import type { AnnotateOptions, Annotation, AnnotatorStats, AnnotatorWithStats, Pair } from './types.ts';
import { emptyStats, validatePairs } from './util.ts';

export type BaselineKind = 'longest' | 'shortest' | 'first' | 'second' | 'random';
export const BASELINES: readonly BaselineKind[] = ['longest', 'shortest', 'first', 'second', 'random'];

export class BaselineJudge implements AnnotatorWithStats {
  readonly name: string;
  private readonly counters: AnnotatorStats = emptyStats();
  constructor(readonly kind: BaselineKind, private readonly seed = 0) {
    this.name = kind;
  }
  stats(): AnnotatorStats {
    return { ...this.counters };
  }
  async annotate(pairs: Pair[], opts: AnnotateOptions = {}): Promise<Annotation[]> {
    validatePairs(pairs);
    const out = pairs.map((p): Annotation => {
      let pref: number;
      if (p.output_1 === p.output_2) pref = 0;
      else if (this.kind === 'longest') pref = p.output_1.length > p.output_2.length ? 1 : 2; // equal lengths go to output_2, as in alpaca_eval
      else if (this.kind === 'shortest') pref = p.output_1.length < p.output_2.length ? 1 : 2;
      else if (this.kind === 'first') pref = 1;
      else if (this.kind === 'second') pref = 2;
      else pref = (hashFields(this.seed, p.instruction, p.input, p.output_1, p.output_2) & 1) + 1;
      return { ...p, preference: pref, annotator: this.name, price_per_example: 0, time_per_example: 0 };
    });
    this.counters.pairs += pairs.length;
    this.counters.labelled += pairs.length;
    opts.onProgress?.(pairs.length, pairs.length);
    return out;
  }
}
