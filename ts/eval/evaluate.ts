// One path for every number: annotations (from a file or from an annotator) -> metrics. The model under
// evaluation is always output_2 and the reference output_1, as in alpaca_eval.
import { checkOptionKeys } from '../engine/options.ts';
import type { Annotation, Annotator, AnnotateOptions, AnnotatorStats } from '../feedback/types.ts';
import { alignOutputs, shorten, type AlignmentReport, type AlignOptions, type EvalPair } from './align.ts';
import { instructionKey, type AnnotationRecord, type OutputRecord } from './io.ts';
import {
  alpacaEval2, gamedWithDifficulty, instructionFingerprint, lookupDifficulty, type DifficultyLookup, type DifficultyTable,
  type ModelAnnotations,
} from './difficulty.ts';
import {
  isExtremeChange, lengthControlledWinRate, type GamedRows, type LcVariant, type LengthControlOptions, type LengthControlResult,
} from './length-control.ts';
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

/** The length-control fit and what went into it. */
export interface LengthControlReport extends LengthControlResult {
  /** Why this variant: the instruction set, the baseline, the tables used. */
  description: string;
  difficulty_source?: string;
  difficulty_lookup?: DifficultyLookup;
  gamed_source?: string;
}

export interface EvalMetrics extends WinRateMetrics {
  /** Present unless length control was turned off. */
  length_controlled_winrate?: number;
  lc_standard_error?: number;
  /** Fit details of the length-controlled win-rate. */
  length_control?: LengthControlReport;
  /** Rows read (before dropping missing / invalid preferences). */
  n_rows: number;
  /** Rows whose model output (output_2) is empty or whitespace only. */
  n_empty_model_outputs: number;
  n_empty_reference_outputs: number;
}

export interface LengthControlSettings extends LengthControlOptions {
  /**
   * 'auto' (default): length_controlled_v1 on AlpacaEval's 805 instructions (as alpaca_eval computes every
   * board's LC), length_controlled_noreg where a difficulty table covers the instructions, else
   * length_controlled_minimal.
   */
  variant?: LcVariant | 'auto';
  /** Difficulty table replacing the bundled AlpacaEval one (e.g. alpaca_eval's official CSV, or an estimate). */
  difficulty?: DifficultyTable;
  /**
   * Gamed baseline rows: alpaca_eval's df_gamed.csv read in, or 'surrogate' for the bundled surrogate as
   * documented (uncalibrated); default: the bundled surrogate with its calibration.
   */
  gamed?: GamedRows | 'surrogate';
  /** How rows find their difficulty (default: by position for length_controlled_v1 with a positional table, as alpaca_eval; else by instruction). */
  lookup?: DifficultyLookup;
}

export interface MetricsOptions {
  /** Preferences that are not valid: throw (default) or drop and count. */
  invalid?: InvalidPolicy;
  /** Compute the length-controlled win-rate (default true); an object sets how. */
  lengthControl?: boolean | LengthControlSettings;
  /** Keep the first row of each repeated instruction instead of failing. */
  allowDuplicates?: boolean;
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
const METRICS_KEYS = ['invalid', 'lengthControl', 'allowDuplicates'];
const LC_KEYS = ['variant', 'difficulty', 'gamed', 'lookup', 'gamedWeight', 'Cs', 'nFolds', 'tol'];

function checkMetricsOptions(what: string, opts: MetricsOptions, extra: readonly string[] = []): void {
  checkOptionKeys(what, opts, [...METRICS_KEYS, ...extra]);
  if (opts.lengthControl && typeof opts.lengthControl === 'object') checkOptionKeys(`${what}: lengthControl`, opts.lengthControl, LC_KEYS);
}

export function metricsFromAnnotations(allRows: readonly AnnotationLike[], opts: MetricsOptions = {}): MetricsResult {
  checkMetricsOptions('metricsFromAnnotations options', opts);
  let rows = allRows;
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

  // a repeated instruction would count twice and shrink the standard error: an error unless asked
  const firstRow = new Map<string, number>();
  let nDup = 0, nDupDiffer = 0;
  let firstDup: string | undefined;
  const unique: AnnotationLike[] = [];
  for (const r of rows) {
    const key = instructionKey(r.instruction, r.input);
    const first = firstRow.get(key);
    if (first !== undefined) {
      nDup++;
      firstDup ??= key;
      if (unique[first].output_2 !== r.output_2 || unique[first].output_1 !== r.output_1) nDupDiffer++;
      continue;
    }
    firstRow.set(key, unique.length);
    unique.push(r);
  }
  if (nDup > 0) {
    const what = `${nDup} rows repeat an instruction already annotated (first: ${shorten(firstDup!)}; ${nDupDiffer} of them with other outputs)`;
    if (!opts.allowDuplicates) throw new Error(`${what}; each instruction must be judged once (--allow-duplicates keeps the first of each)`);
    warnings.push(`${what}; kept the first of each`);
    rows = unique;
  }

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
    const settings = typeof opts.lengthControl === 'object' ? opts.lengthControl : {};
    const plan = planLengthControl(rows, references[0], models[0], settings);
    warnings.push(...plan.warnings);
    const nFolds = settings.nFolds ?? 5;
    const nTrain = keep.length + (plan.gamed ? plan.gamed.preference.filter((x) => !Number.isNaN(x)).length : 0);
    if (nTrain < nFolds && !plan.isBaseline) {
      warnings.push(`length control skipped: ${nTrain} annotated rows are too few for its ${nFolds}-fold cross-validation`);
    } else {
      addLengthControl(metrics, warnings, plan, settings, { scores: parsed.scores, referenceLengths, modelLengths }, base.win_rate);
    }
  }
  const out: MetricsResult = { metrics, warnings };
  if (models.length === 1) out.model = models[0];
  if (references.length === 1) out.reference = references[0];
  if (annotators.length === 1) out.annotator = annotators[0];
  return out;
}

function addLengthControl(
  metrics: EvalMetrics, warnings: string[], plan: LengthControlPlan, settings: LengthControlSettings,
  rows: { scores: number[]; referenceLengths: number[]; modelLengths: number[] }, rawWinRate: number,
): void {
  const { scores, referenceLengths, modelLengths } = rows;
  const lc = lengthControlledWinRate(
    { scores, referenceLengths, modelLengths, difficulty: plan.difficulty, gamed: plan.gamed, isBaseline: plan.isBaseline },
    settings,
  );
  const report: LengthControlReport = { ...lc, description: plan.description };
  if (plan.difficultySource) report.difficulty_source = plan.difficultySource;
  if (plan.lookup) report.difficulty_lookup = plan.lookup;
  if (plan.gamedSource) report.gamed_source = plan.gamedSource;
  metrics.length_controlled_winrate = lc.length_controlled_winrate;
  metrics.lc_standard_error = lc.lc_standard_error;
  metrics.length_control = report;
  if (lc.extrapolation_note) warnings.push(`length-controlled win-rate is an extrapolation: ${lc.extrapolation_note}`);
  if (!lc.converged) warnings.push('length control: the L1 fit stopped before reaching its tolerance');
  if (isExtremeChange(rawWinRate, lc.length_controlled_winrate)) {
    warnings.push(
      `length-controlled win-rate ${lc.length_controlled_winrate.toFixed(1)} is far from the raw ${rawWinRate.toFixed(1)}; the fit may be unreliable`,
    );
  }
}

interface LengthControlPlan {
  variant: LcVariant;
  difficulty?: number[];
  gamed?: GamedRows;
  isBaseline: boolean;
  description: string;
  difficultySource?: string;
  gamedSource?: string;
  lookup?: DifficultyLookup;
  warnings: string[];
}

/** Chooses the variant and gathers its inputs: see LengthControlSettings.variant. */
function planLengthControl(
  rows: readonly AnnotationLike[], reference: string | undefined, model: string | undefined, settings: LengthControlSettings,
): LengthControlPlan {
  const warnings: string[] = [];
  const keys = rows.map((r) => instructionKey(r.instruction, r.input));
  const ae = alpacaEval2();
  const aeSet = keys.every((k) => ae.positionOf.has(instructionFingerprint(k)));
  const table = settings.difficulty ?? (aeSet ? ae.difficulty : undefined);
  const requested = settings.variant ?? 'auto';
  let variant: LcVariant =
    requested !== 'auto' ? requested : aeSet ? 'length_controlled_v1' : table ? 'length_controlled_noreg' : 'length_controlled_minimal';
  // the bundled gamed rows need a difficulty for each of their instructions from a replacement table
  let gamedFromTable: GamedRows | undefined;
  if (variant === 'length_controlled_v1' && settings.difficulty && (!settings.gamed || settings.gamed === 'surrogate')) {
    try {
      gamedFromTable = gamedWithDifficulty(settings.gamed === 'surrogate' ? ae.surrogate : ae.gamed, settings.difficulty);
    } catch (err) {
      if (requested !== 'auto') throw new Error(`${(err as Error).message}: length_controlled_v1 needs it (or pass gamed rows of your own)`);
      warnings.push(`${(err as Error).message}: length_controlled_noreg (no gamed baseline rows) instead of length_controlled_v1`);
      variant = 'length_controlled_noreg';
    }
  }
  if (variant !== 'length_controlled_minimal' && !table) {
    throw new Error(`${variant} needs a difficulty table for these instructions (they are not AlpacaEval's 805): pass one, or estimate one from several models' annotations`);
  }
  const isBaseline = reference !== undefined && reference === model;
  const plan: LengthControlPlan = { variant, isBaseline, description: '', warnings };
  if (variant !== 'length_controlled_minimal') {
    const lookup: DifficultyLookup = settings.lookup ?? (variant === 'length_controlled_v1' && table!.byIndex ? 'position' : table!.byInstruction ? 'instruction' : 'position');
    const found = lookupDifficulty(table!, keys, lookup);
    plan.difficulty = found.values;
    plan.lookup = lookup;
    plan.difficultySource = table!.source;
    if (lookup === 'position' && found.misplaced > 0) {
      warnings.push(
        `${found.misplaced} of ${keys.length} rows are not at alpaca_eval's position for their instruction (first: row ${found.firstMisplaced}): ` +
          'their difficulty was looked up by row position, as alpaca_eval does (so the value matches what alpaca_eval reports for this file; ' +
          'the published board includes this quirk); --difficulty-lookup instruction uses each row\'s own instruction',
      );
    }
  }
  if (variant === 'length_controlled_v1') {
    if (settings.gamed && settings.gamed !== 'surrogate') {
      plan.gamed = settings.gamed;
      plan.gamedSource = 'given gamed rows';
    } else {
      // the gamed rows carry the bundled table's difficulty; a replacement table replaces it there too
      plan.gamed = gamedFromTable ?? (settings.gamed === 'surrogate' ? ae.surrogate : ae.gamed);
      plan.gamedSource = settings.gamed === 'surrogate' ? 'bundled surrogate gamed rows, uncalibrated (ts/eval/data/alpaca_eval_2/df_gamed.csv)' : ae.gamedSource;
    }
  }
  const ref = reference ?? 'the reference';
  plan.description =
    variant === 'length_controlled_v1'
      ? `alpaca_eval's length_controlled_v1 (AlpacaEval instructions${reference === ae.baseline ? `, baseline ${ae.baseline}` : `; alpaca_eval applies it whatever the baseline, here ${ref}`}): length, difficulty and gamed baseline rows`
      : variant === 'length_controlled_noreg'
        ? `length_controlled_noreg: length and difficulty terms, no gamed baseline rows (reference ${ref})`
        : `length_controlled_minimal: length term only, no difficulty table for these instructions (reference ${ref})`;
  return plan;
}

/**
 * One model's annotations reduced to what a difficulty estimate needs (keys, scores, lengths), with the
 * same checks as the metrics: one model, one reference, no repeated instruction.
 */
export function modelAnnotations(rows: readonly AnnotationLike[], opts: Pick<MetricsOptions, 'invalid'> & { name?: string } = {}): ModelAnnotations & { reference?: string } {
  if (rows.length === 0) throw new Error('no annotations');
  const models = uniqueValues(rows, 'generator_2');
  const references = uniqueValues(rows, 'generator_1');
  if (models.length > 1 || references.length > 1) throw new Error(`annotations mix ${models.length} models and ${references.length} references; one of each per file`);
  const name = opts.name ?? models[0];
  if (!name) throw new Error('annotations carry no generator_2: name the model');
  const parsed = parsePreferences(rows.map((r) => r.preference), opts.invalid ?? 'error');
  return {
    name,
    ...(references.length ? { reference: references[0] } : {}),
    keys: rows.map((r) => instructionKey(r.instruction, r.input)),
    scores: parsed.scores,
    referenceLengths: rows.map((r) => charLength(r.output_1)),
    modelLengths: rows.map((r) => charLength(r.output_2)),
  };
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
  checkMetricsOptions('evaluateModel options', opts, ['annotator', 'maxInstances', 'allowMissing', 'referenceName', 'modelName', 'onProgress', 'noCache', 'signal']);
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
  const result = metricsFromAnnotations(annotations, { invalid: opts.invalid, lengthControl: opts.lengthControl, allowDuplicates: opts.allowDuplicates });
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
