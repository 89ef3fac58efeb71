// One path for every number: annotations (from a file or from an annotator) -> metrics. The model under
// evaluation is always output_2 and the reference output_1, as in alpaca_eval.
import type { Annotation, Annotator, AnnotateOptions, AnnotatorStats } from '../feedback/types.ts';
import { alignOutputs, shorten, type AlignmentReport, type AlignOptions, type EvalPair } from './align.ts';
import { instructionKey, type AnnotationRecord, type OutputRecord } from './io.ts';
import { isExtremeChange, lengthControlledWinRate, type LengthControlOptions, type LengthControlResult } from './length-control.ts';
import { parsePreferences, type InvalidPolicy } from './preferences.ts';
import { mean } from './stats.ts';
import { winRateFromScores, type WinRateMetrics } from './winrate.ts';

/** Length in Unicode code points, as Python's len(), so avg_length and length deltas match alpaca_eval. */
export function charLength(s: string): number {
  let pairs = 0;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        pairs++;
        i++;
      }
    }
  }
  return s.length - pairs;
}

export interface EvalMetrics extends WinRateMetrics {
  /** Present unless length control was turned off. */
  length_controlled_winrate?: number;
  lc_standard_error?: number;
  /** Fit details of the length-controlled win-rate. */
  length_control?: LengthControlResult;
  /** Rows read (before dropping missing / invalid preferences). */
  n_rows: number;
  /** Rows whose model output (output_2) is empty or whitespace only. */
  n_empty_model_outputs: number;
  n_empty_reference_outputs: number;
}

export interface MetricsOptions {
  /** Preferences that are not valid: throw (default) or drop and count. */
  invalid?: InvalidPolicy;
  /** Compute the length-controlled win-rate (default true); an object sets its options. */
  lengthControl?: boolean | LengthControlOptions;
  /** Optional instruction difficulty per merged instruction (alpaca_eval's table), used by length control. */
  difficulty?: ReadonlyMap<string, number>;
}

export interface MetricsResult {
  metrics: EvalMetrics;
  warnings: string[];
  /** The generator names and annotator found in the rows (when unique). */
  model?: string;
  reference?: string;
  annotator?: string;
}

type AnnotationLike = Pick<AnnotationRecord, 'instruction' | 'input' | 'output_1' | 'output_2' | 'preference'> & {
  generator_1?: unknown;
  generator_2?: unknown;
  annotator?: unknown;
};

function uniqueValues(rows: readonly AnnotationLike[], field: 'generator_1' | 'generator_2' | 'annotator'): string[] {
  const set = new Set<string>();
  for (const r of rows) if (typeof r[field] === 'string') set.add(r[field] as string);
  return [...set];
}

/** Every metric from annotation rows: win-rate, standard error, counts, discrete and length-controlled win-rates. */
export function metricsFromAnnotations(rows: readonly AnnotationLike[], opts: MetricsOptions = {}): MetricsResult {
  if (rows.length === 0) throw new Error('no annotations');
  const warnings: string[] = [];
  const models = uniqueValues(rows, 'generator_2');
  const references = uniqueValues(rows, 'generator_1');
  if (models.length > 1) {
    throw new Error(`annotations mix ${models.length} models as output_2 (${models.slice(0, 5).join(', ')}); a win-rate needs one model: split the file by generator_2`);
  }
  if (references.length > 1) {
    throw new Error(`annotations mix ${references.length} references as output_1 (${references.slice(0, 5).join(', ')}); split the file by generator_1`);
  }
  const annotators = uniqueValues(rows, 'annotator');
  if (annotators.length > 1) warnings.push(`annotations come from ${annotators.length} annotators (${annotators.slice(0, 5).join(', ')})`);

  const seen = new Map<string, number>();
  let nDup = 0;
  let firstDup: string | undefined;
  for (const r of rows) {
    const key = instructionKey(r.instruction, r.input);
    const c = seen.get(key) ?? 0;
    if (c > 0) {
      nDup++;
      firstDup ??= key;
    }
    seen.set(key, c + 1);
  }
  if (nDup > 0) warnings.push(`${nDup} rows repeat an instruction already annotated (first: ${shorten(firstDup!)}); each row counts once`);

  const parsed = parsePreferences(rows.map((r) => r.preference), opts.invalid ?? 'error');
  warnings.push(...parsed.warnings);
  const modelLengths = rows.map((r) => charLength(r.output_2));
  const referenceLengths = rows.map((r) => charLength(r.output_1));
  const keep: number[] = [];
  for (let i = 0; i < rows.length; i++) if (!Number.isNaN(parsed.scores[i])) keep.push(i);
  if (keep.length === 0) throw new Error(`no usable preferences among ${rows.length} rows (${parsed.n_missing} missing, ${parsed.n_invalid} invalid)`);

  let emptyModel = 0, emptyRef = 0;
  for (const r of rows) {
    if (r.output_2.trim() === '') emptyModel++;
    if (r.output_1.trim() === '') emptyRef++;
  }
  if (emptyModel > 0) warnings.push(`${emptyModel} model outputs (output_2) are empty`);
  if (emptyRef > 0) warnings.push(`${emptyRef} reference outputs (output_1) are empty`);

  const scores = keep.map((i) => parsed.scores[i]);
  // avg_length over every row, as alpaca_eval (it measures the outputs, not the judged pairs)
  const base = winRateFromScores(scores, { avgLength: mean(modelLengths), n_missing: parsed.n_missing, n_invalid: parsed.n_invalid });
  const metrics: EvalMetrics = { ...base, n_rows: rows.length, n_empty_model_outputs: emptyModel, n_empty_reference_outputs: emptyRef };

  if (opts.lengthControl !== false) {
    let difficulty: number[] | undefined;
    if (opts.difficulty) {
      const d = opts.difficulty;
      const absent = keep.filter((i) => !d.has(instructionKey(rows[i].instruction, rows[i].input)));
      if (absent.length > 0) {
        throw new Error(`difficulty table has no entry for ${absent.length} instructions (first: ${shorten(instructionKey(rows[absent[0]].instruction, rows[absent[0]].input))})`);
      }
      difficulty = keep.map((i) => d.get(instructionKey(rows[i].instruction, rows[i].input))!);
    }
    const lc = lengthControlledWinRate(
      {
        scores,
        referenceLengths: keep.map((i) => referenceLengths[i]),
        modelLengths: keep.map((i) => modelLengths[i]),
        difficulty,
      },
      typeof opts.lengthControl === 'object' ? opts.lengthControl : {},
    );
    metrics.length_controlled_winrate = lc.length_controlled_winrate;
    metrics.lc_standard_error = lc.lc_standard_error;
    metrics.length_control = lc;
    if (lc.note) warnings.push(`length control: ${lc.note}`);
    if (isExtremeChange(base.win_rate, lc.length_controlled_winrate)) {
      warnings.push(
        `length-controlled win-rate ${lc.length_controlled_winrate.toFixed(1)} is far from the raw ${base.win_rate.toFixed(1)}; the fit may be unreliable`,
      );
    }
  }
  const out: MetricsResult = { metrics, warnings };
  if (models.length === 1) out.model = models[0];
  if (references.length === 1) out.reference = references[0];
  if (annotators.length === 1) out.annotator = annotators[0];
  return out;
}

export type EvalAnnotation = Annotation & { generator_1: string; generator_2: string; dataset?: string };

export interface EvaluateOptions extends AlignOptions, MetricsOptions, Pick<AnnotateOptions, 'onProgress' | 'noCache' | 'signal'> {
  annotator: Annotator;
  /** Evaluate only the first N instructions of the reference (alpaca_eval's max_instances). */
  maxInstances?: number;
}

export interface EvaluationResult extends MetricsResult {
  /** Sum of price_per_example over the annotations (dollars) and of time_per_example (seconds). */
  total_price: number;
  total_time: number;
  /** The annotator's own counters when it keeps them (cache hits, requests, tokens). */
  annotator_stats?: AnnotatorStats;
  /** The model's name (generator_2). */
  name: string;
  reference_name: string;
  annotator_name: string;
  annotations: EvalAnnotation[];
  alignment: AlignmentReport;
}

/** Annotates a model's outputs against reference outputs with the given annotator and computes the metrics. */
export async function evaluateModel(
  reference: readonly OutputRecord[],
  model: readonly OutputRecord[],
  opts: EvaluateOptions,
): Promise<EvaluationResult> {
  const alignment = alignOutputs(reference, model, opts);
  let pairs: EvalPair[] = alignment.pairs;
  const warnings = [...alignment.warnings];
  if (opts.maxInstances !== undefined) {
    if (!(Number.isInteger(opts.maxInstances) && opts.maxInstances > 0)) throw new Error(`maxInstances must be a positive integer, got ${opts.maxInstances}`);
    if (opts.maxInstances < pairs.length) {
      warnings.push(`evaluating the first ${opts.maxInstances} of ${pairs.length} instructions`);
      pairs = pairs.slice(0, opts.maxInstances);
    }
  }
  const annotated = await opts.annotator.annotate(
    pairs.map(({ instruction, input, output_1, output_2 }) => ({ instruction, input, output_1, output_2 })),
    { onProgress: opts.onProgress, noCache: opts.noCache, signal: opts.signal },
  );
  if (!Array.isArray(annotated) || annotated.length !== pairs.length) {
    throw new Error(`annotator ${opts.annotator.name} returned ${Array.isArray(annotated) ? annotated.length : typeof annotated} annotations for ${pairs.length} pairs`);
  }
  const annotations: EvalAnnotation[] = annotated.map((a, i) => {
    const p = pairs[i];
    if (a.output_1 !== p.output_1 || a.output_2 !== p.output_2 || a.instruction !== p.instruction) {
      const swapped = a.output_1 === p.output_2 && a.output_2 === p.output_1;
      throw new Error(
        `annotator ${opts.annotator.name} returned row ${i} for a different pair${swapped ? ' (outputs swapped: a pool must swap positions back before returning)' : ''}`,
      );
    }
    const row: EvalAnnotation = { ...a, generator_1: p.generator_1, generator_2: p.generator_2 };
    if (p.dataset !== undefined) row.dataset = p.dataset;
    return row;
  });
  const result = metricsFromAnnotations(annotations, opts);
  const withStats = opts.annotator as Annotator & { stats?: () => AnnotatorStats };
  const sum = (f: (a: EvalAnnotation) => number | undefined) => annotations.reduce((s, a) => s + (f(a) ?? 0), 0);
  // the alignment already reported empty outputs, with the first instruction
  const repeated = /^\d+ (model|reference) outputs \(output_[12]\) are empty$/;
  return {
    ...result,
    warnings: [...warnings, ...result.warnings.filter((w) => !repeated.test(w))],
    total_price: sum((a) => a.price_per_example),
    total_time: sum((a) => a.time_per_example),
    ...(typeof withStats.stats === 'function' ? { annotator_stats: withStats.stats() } : {}),
    name: pairs[0].generator_2,
    reference_name: pairs[0].generator_1,
    annotator_name: opts.annotator.name,
    annotations,
    alignment: alignment.report,
  };
}
