// Glue shared by `farm evaluate` and `farm leaderboard`: loading the annotator registry lazily (the
// evaluation library itself only takes an Annotator object), naming models, reading difficulty tables,
// printing metrics the way alpaca_eval users read them.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Annotator } from '../feedback/types.ts';
import type { EvalMetrics } from './evaluate.ts';
import { instructionKey, type OutputRecord } from './io.ts';

const DEFAULT_REGISTRY = fileURLToPath(new URL('../feedback/index.ts', import.meta.url));

/**
 * Builds an annotator from a spec through ts/feedback's registry, imported only when needed.
 * $FARM_ANNOTATOR_REGISTRY may name another module exporting createAnnotator(spec, opts) (own judges, tests).
 */
export async function loadAnnotator(spec: string, options: Record<string, unknown> = {}): Promise<Annotator> {
  const REGISTRY = process.env.FARM_ANNOTATOR_REGISTRY ? resolve(process.env.FARM_ANNOTATOR_REGISTRY) : DEFAULT_REGISTRY;
  if (process.env.FARM_ANNOTATOR_REGISTRY && !existsSync(REGISTRY)) {
    throw new Error(`FARM_ANNOTATOR_REGISTRY=${process.env.FARM_ANNOTATOR_REGISTRY}: no such file`);
  }
  if (!existsSync(REGISTRY)) {
    throw new Error(
      `cannot build annotator "${spec}": the annotator registry (ts/feedback/index.ts, issue #6) is not present; ` +
        'use `farm evaluate --annotations FILE` to recompute metrics from existing annotations',
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(REGISTRY).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot load the annotator registry (${REGISTRY}): ${(err as Error).message}`);
  }
  const create = mod.createAnnotator;
  if (typeof create !== 'function') throw new Error(`${REGISTRY} exports no createAnnotator(spec, opts)`);
  const annotator = (await (create as (s: string, o?: unknown) => unknown)(spec, options)) as Annotator;
  if (!annotator || typeof annotator.annotate !== 'function' || typeof annotator.name !== 'string') {
    throw new Error(`createAnnotator("${spec}") did not return an Annotator (name + annotate(pairs))`);
  }
  return annotator;
}

/** Parses --annotator-options: a JSON object. */
export function parseJsonObject(text: string | undefined, flag: string): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${flag}: not valid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${flag}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * A model's name: the explicit one, else the generator its outputs carry, else the folder of an
 * alpaca_eval-style `results/NAME/model_outputs.json`, else the file's stem.
 */
export function modelNameFor(path: string, records: readonly OutputRecord[], explicit?: string): string {
  if (explicit) return explicit;
  const generators = new Set(records.map((r) => r.generator).filter((g): g is string => !!g));
  if (generators.size === 1) return [...generators][0];
  const file = basename(path);
  if (/^model_outputs\.jsonl?$/.test(file)) return basename(dirname(resolve(path)));
  return file.replace(/\.(jsonl?|json)$/i, '');
}

/** The default reference outputs: $FARM_REFERENCE_OUTPUTS, else the shared text-davinci-003 outputs. */
export function defaultReferencePath(): string | undefined {
  const env = process.env.FARM_REFERENCE_OUTPUTS;
  if (env) return env;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const shared = join(root, '..', 'shared', 'data', 'alpaca_eval', 'text_davinci_003', 'model_outputs.json');
  return existsSync(shared) ? shared : undefined;
}

/**
 * Reads a difficulty table: a JSON object {merged instruction: number}, or a JSON array of
 * {instruction, input?, difficulty} rows.
 */
export function readDifficulty(path: string): Map<string, number> {
  const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  const out = new Map<string, number>();
  const put = (key: string, d: unknown, where: string) => {
    if (typeof d !== 'number' || !Number.isFinite(d)) throw new Error(`${path}: ${where}: difficulty ${JSON.stringify(d)} is not a number`);
    out.set(key, d);
  };
  if (Array.isArray(v)) {
    v.forEach((row, i) => {
      const r = row as Record<string, unknown>;
      if (typeof r?.instruction !== 'string') throw new Error(`${path}: row ${i} has no instruction`);
      put(instructionKey(r.instruction, typeof r.input === 'string' ? r.input : ''), r.difficulty, `row ${i}`);
    });
  } else if (v && typeof v === 'object') {
    for (const [k, d] of Object.entries(v as Record<string, unknown>)) put(k, d, JSON.stringify(k.slice(0, 40)));
  } else {
    throw new Error(`${path}: expected a JSON object or array`);
  }
  return out;
}

const fix = (v: number | undefined, d = 2) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));

/** A short human-readable block of metrics, in alpaca_eval's column names. */
export function formatMetrics(name: string, m: EvalMetrics): string {
  const cols: Array<[string, string]> = [
    ['win_rate', fix(m.win_rate)],
    ['standard_error', fix(m.standard_error)],
  ];
  if (m.length_controlled_winrate !== undefined) cols.push(['length_controlled_winrate', fix(m.length_controlled_winrate)]);
  if (m.is_soft) cols.push(['discrete_win_rate', fix(m.discrete_win_rate)]);
  cols.push(
    ['n_wins', String(m.n_wins)],
    ['n_wins_base', String(m.n_wins_base)],
    ['n_draws', String(m.n_draws)],
    ['n_total', String(m.n_total)],
    ['avg_length', Number.isFinite(m.avg_length) ? String(Math.trunc(m.avg_length)) : 'n/a'],
  );
  const widths = cols.map(([k, v]) => Math.max(k.length, v.length));
  const nameWidth = Math.max(name.length, 4);
  const head = ' '.repeat(nameWidth) + cols.map(([k], i) => `  ${k.padStart(widths[i])}`).join('');
  const row = name.padEnd(nameWidth) + cols.map(([, v], i) => `  ${v.padStart(widths[i])}`).join('');
  const dropped = m.n_missing + m.n_invalid;
  const tail = dropped > 0 ? `\n(${dropped} of ${m.n_rows} annotations dropped: ${m.n_missing} missing, ${m.n_invalid} invalid)` : '';
  return `${head}\n${row}${tail}`;
}

/** JSON with NaN written as null and large annotation arrays left to the caller. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}
