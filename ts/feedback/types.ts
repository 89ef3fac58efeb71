// The one annotator interface every judge implements (world judges, model judges, HTTP judges, pools).
// Field names follow AlpacaFarm / alpaca_eval: output_1 is shown first, preference 1 or 2 names the winner.

/** A pair to judge. */
export interface Pair {
  instruction: string;
  /** Alpaca's optional input field ('' when absent). */
  input: string;
  output_1: string;
  output_2: string;
}

/**
 * 1 or 2: that output wins; 0: a draw (identical outputs); null: the judge gave no usable answer.
 * Soft judges may return any value in [1, 2] (AlpacaEval 2 weighted style: 1 + P(output_2 wins)).
 */
export type Preference = number | null;

export interface Annotation extends Pair {
  preference: Preference;
  /** The judge (or pool member) that produced the label. */
  annotator: string;
  /** Dollars spent on this pair (0 for simulated judges). */
  price_per_example?: number;
  /** Seconds spent on this pair. */
  time_per_example?: number;
  /** Raw judge text when there is one (HTTP judges). */
  raw_completion?: string;
  /** Why the preference is null, when it is (parse failure, wrong answer count, exhausted retries). */
  error?: string;
  /** True when training-time flip noise replaced the judge's label with a random draw from {1, 2}. */
  label_noise?: boolean;
  /** True when the pair was shown to the judge with its outputs swapped (the label is already swapped back). */
  swapped?: boolean;
}

export interface AnnotateOptions {
  /** Called after each finished chunk of pairs. */
  onProgress?: (done: number, total: number) => void;
  /** Bypass the on-disk annotation cache. */
  noCache?: boolean;
  signal?: AbortSignal;
}

export interface Annotator {
  readonly name: string;
  /** Annotations in the order of `pairs` (one per pair, preference null where the judge failed). */
  annotate(pairs: Pair[], opts?: AnnotateOptions): Promise<Annotation[]>;
}

// ---- Additions (issue #6): fields and types added beside the original contract, none renamed or removed. ----

/** Counters an annotator keeps across calls (cache hits, requests, tokens, dollars, failures). */
export interface AnnotatorStats {
  pairs: number;
  labelled: number;
  failed: number;
  cacheHits: number;
  requests: number;
  retries: number;
  promptTokens: number;
  completionTokens: number;
  /** Dollars. */
  cost: number;
  /** Seconds of wall time spent inside annotate(). */
  seconds: number;
}

/** An annotator that can also report its counters. */
export interface AnnotatorWithStats extends Annotator {
  stats(): AnnotatorStats;
}

/**
 * What a reward-model judge needs from the engine (issue #4): a score for each output of each pair, higher is
 * better. Kept this small so that the engine's reward scoring plugs in without the feedback layer importing
 * engine internals.
 */
export interface PairScorer {
  score(pairs: Pair[]): Promise<Array<[number, number]>>;
}
