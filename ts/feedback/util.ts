// Small shared helpers: pair validation, JSONL/JSON pair files, counters.
import { readFileSync } from 'node:fs';
import type { Annotation, AnnotatorStats, Pair } from './types.ts';

export function emptyStats(): AnnotatorStats {
  return { pairs: 0, labelled: 0, failed: 0, cacheHits: 0, requests: 0, retries: 0, promptTokens: 0, completionTokens: 0, cost: 0, seconds: 0 };
}

const FIELDS = ['instruction', 'output_1', 'output_2'] as const;

/** Checks the fields of one pair; returns a message naming the bad field, or null. */
export function pairProblem(p: unknown): string | null {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'not an object';
  const r = p as Record<string, unknown>;
  for (const f of FIELDS) {
    if (!(f in r)) return `missing field "${f}"`;
    if (typeof r[f] !== 'string') return `field "${f}" is ${r[f] === null ? 'null' : typeof r[f]}, expected a string`;
  }
  if ('input' in r && r.input !== null && r.input !== undefined && typeof r.input !== 'string') return `field "input" is ${typeof r.input}, expected a string`;
  return null;
}

/** Throws on the first malformed pair (with its position); fills a missing input with ''. */
export function validatePairs(pairs: Pair[]): void {
  if (!Array.isArray(pairs)) throw new Error('annotate: pairs must be an array');
  for (let i = 0; i < pairs.length; i++) {
    const problem = pairProblem(pairs[i]);
    if (problem) throw new Error(`annotate: pair ${i}: ${problem}`);
    if (pairs[i].input === undefined || pairs[i].input === null) (pairs[i] as { input: string }).input = '';
  }
}

function toPair(r: Record<string, unknown>): Pair & Record<string, unknown> {
  return { ...r, instruction: r.instruction as string, input: typeof r.input === 'string' ? r.input : '', output_1: r.output_1 as string, output_2: r.output_2 as string };
}

/**
 * Reads pairs from JSONL (one object per line) or a JSON array (alpaca_eval style), keeping extra fields.
 * Errors name the file, the line (JSONL) or index (JSON) and the field.
 */
export function readPairsFile(path: string): Array<Pair & Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read pairs file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (err) {
      throw new Error(`${path}: invalid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(arr)) throw new Error(`${path}: expected a JSON array of pairs`);
    return arr.map((r, i) => {
      const problem = pairProblem(r);
      if (problem) throw new Error(`${path}: record ${i}: ${problem}`);
      return toPair(r as Record<string, unknown>);
    });
  }
  const out: Array<Pair & Record<string, unknown>> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (err) {
      const last = i === lines.length - 1 && !text.endsWith('\n');
      throw new Error(`${path}:${i + 1}: invalid JSON${last ? ' (the file ends mid-record: truncated?)' : ''}: ${(err as Error).message}`);
    }
    const problem = pairProblem(r);
    if (problem) throw new Error(`${path}:${i + 1}: ${problem}`);
    out.push(toPair(r as Record<string, unknown>));
  }
  return out;
}

/** Counts labels, draws and failures of a list of annotations. */
export function summarize(annotations: Annotation[]): { total: number; prefer1: number; prefer2: number; draws: number; soft: number; failed: number; cost: number; seconds: number } {
  const s = { total: annotations.length, prefer1: 0, prefer2: 0, draws: 0, soft: 0, failed: 0, cost: 0, seconds: 0 };
  for (const a of annotations) {
    const p = a.preference;
    if (p === null || p === undefined) s.failed += 1;
    else if (p === 0) s.draws += 1;
    else if (p === 1) s.prefer1 += 1;
    else if (p === 2) s.prefer2 += 1;
    else s.soft += 1;
    s.cost += a.price_per_example ?? 0;
    s.seconds += a.time_per_example ?? 0;
  }
  return s;
}
