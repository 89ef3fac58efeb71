// Joining a model's outputs to the reference outputs by instruction (merged with input). Every mismatch
// is counted and named, because a silently shorter join gives a silently wrong win-rate.
import type { Pair } from '../feedback/types.ts';
import { instructionKey, type OutputRecord } from './io.ts';

export interface EvalPair extends Pair {
  generator_1: string;
  generator_2: string;
  dataset?: string;
}

export interface CountAndFirst {
  count: number;
  /** The first offending instruction (shortened), when count > 0. */
  first?: string;
}

export interface AlignmentReport {
  n_reference: number;
  n_model: number;
  n_matched: number;
  /** Reference instructions with no model output. */
  missing_in_model: CountAndFirst;
  /** Model instructions absent from the reference. */
  extra_in_model: CountAndFirst;
  /** Of the unmatched model instructions, how many would match after trimming whitespace. */
  whitespace_only_mismatches: number;
  duplicates_in_model: CountAndFirst;
  duplicates_in_reference: CountAndFirst;
  /** Matched pairs whose model / reference output is empty or whitespace only (kept, not dropped). */
  empty_model_outputs: CountAndFirst;
  empty_reference_outputs: CountAndFirst;
}

export interface AlignOptions {
  /** Evaluate on the instructions both files share instead of failing on a mismatch. */
  allowMissing?: boolean;
  /** Keep the first of duplicated instructions instead of failing. */
  allowDuplicates?: boolean;
  /** Names for generator_1 / generator_2; when absent, the files' generator fields, else 'reference' / 'model'. */
  referenceName?: string;
  modelName?: string;
}

export interface Alignment {
  pairs: EvalPair[];
  report: AlignmentReport;
  warnings: string[];
}

export function shorten(s: string, max = 80): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return JSON.stringify(one.length > max ? `${one.slice(0, max - 3)}...` : one);
}

function indexByKey(rows: readonly OutputRecord[]): { map: Map<string, OutputRecord>; dups: CountAndFirst } {
  const map = new Map<string, OutputRecord>();
  const dups: CountAndFirst = { count: 0 };
  for (const r of rows) {
    const key = instructionKey(r.instruction, r.input);
    if (map.has(key)) {
      dups.count++;
      dups.first ??= key;
    } else {
      map.set(key, r);
    }
  }
  return { map, dups };
}

const isEmpty = (s: string) => s.trim() === '';

/**
 * Pairs every reference instruction with the model's output for it: output_1 = reference,
 * output_2 = model, in the reference's order and with the reference's instruction/input split.
 */
export function alignOutputs(reference: readonly OutputRecord[], model: readonly OutputRecord[], opts: AlignOptions = {}): Alignment {
  const ref = indexByKey(reference);
  const mod = indexByKey(model);
  const warnings: string[] = [];
  const problems: string[] = [];

  const describe = (what: string, c: CountAndFirst) => `${c.count} ${what} (first: ${shorten(c.first ?? '')})`;
  if (ref.dups.count > 0) {
    const msg = describe('duplicated instructions in the reference outputs', ref.dups);
    (opts.allowDuplicates ? warnings : problems).push(opts.allowDuplicates ? `${msg}; kept the first` : msg);
  }
  if (mod.dups.count > 0) {
    const msg = describe('duplicated instructions in the model outputs', mod.dups);
    (opts.allowDuplicates ? warnings : problems).push(opts.allowDuplicates ? `${msg}; kept the first` : msg);
  }

  const missing: CountAndFirst = { count: 0 };
  const extra: CountAndFirst = { count: 0 };
  const refTrimmed = new Set<string>();
  for (const key of ref.map.keys()) {
    if (!mod.map.has(key)) {
      missing.count++;
      missing.first ??= key;
    }
    refTrimmed.add(key.trim().replace(/\s+/g, ' '));
  }
  let whitespaceOnly = 0;
  for (const key of mod.map.keys()) {
    if (!ref.map.has(key)) {
      extra.count++;
      extra.first ??= key;
      if (refTrimmed.has(key.trim().replace(/\s+/g, ' '))) whitespaceOnly++;
    }
  }
  const hint = whitespaceOnly > 0 ? ` (${whitespaceOnly} of them differ from a reference instruction only in whitespace)` : '';
  if (extra.count > 0) {
    const msg = `${describe('model instructions are not in the reference', extra)}${hint}`;
    (opts.allowMissing ? warnings : problems).push(msg);
  }
  if (missing.count > 0) {
    const msg = describe(`of ${ref.map.size} reference instructions have no model output`, missing);
    (opts.allowMissing ? warnings : problems).push(msg);
  }
  if (problems.length > 0) {
    const fixes = [
      missing.count + extra.count > 0 ? '--allow-missing evaluates on the shared instructions' : '',
      ref.dups.count + mod.dups.count > 0 ? '--allow-duplicates keeps the first of each duplicate' : '',
    ].filter(Boolean);
    throw new Error(`model outputs do not match the reference: ${problems.join('; ')}${fixes.length ? `. ${fixes.join('; ')}` : ''}`);
  }

  const pairs: EvalPair[] = [];
  const emptyModel: CountAndFirst = { count: 0 };
  const emptyRef: CountAndFirst = { count: 0 };
  for (const [key, r] of ref.map) {
    const m = mod.map.get(key);
    if (!m) continue;
    if (isEmpty(m.output)) {
      emptyModel.count++;
      emptyModel.first ??= key;
    }
    if (isEmpty(r.output)) {
      emptyRef.count++;
      emptyRef.first ??= key;
    }
    const pair: EvalPair = {
      instruction: r.instruction,
      input: r.input,
      output_1: r.output,
      output_2: m.output,
      generator_1: opts.referenceName ?? r.generator ?? 'reference',
      generator_2: opts.modelName ?? m.generator ?? 'model',
    };
    const dataset = r.dataset ?? m.dataset;
    if (dataset !== undefined) pair.dataset = dataset;
    pairs.push(pair);
  }
  if (emptyModel.count > 0) warnings.push(`${describe('model outputs are empty', emptyModel)}; kept (the judge sees an empty answer)`);
  if (emptyRef.count > 0) warnings.push(`${describe('reference outputs are empty', emptyRef)}; kept (the judge sees an empty answer)`);
  if (pairs.length === 0) throw new Error('model outputs and reference share no instruction');

  return {
    pairs,
    warnings,
    report: {
      n_reference: reference.length,
      n_model: model.length,
      n_matched: pairs.length,
      missing_in_model: missing,
      extra_in_model: extra,
      whitespace_only_mismatches: whitespaceOnly,
      duplicates_in_model: mod.dups,
      duplicates_in_reference: ref.dups,
      empty_model_outputs: emptyModel,
      empty_reference_outputs: emptyRef,
    },
  };
}
