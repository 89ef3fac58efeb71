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
