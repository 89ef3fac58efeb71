// Glue shared by `farm evaluate` and `farm leaderboard`: loading the annotator registry lazily (the
// evaluation library itself only takes an Annotator object), naming models, reading difficulty tables,
// printing metrics the way alpaca_eval users read them.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import type { Annotator } from '../feedback/types.ts';
import { readDifficultyTable, readGamedRows, type DifficultyLookup } from './difficulty.ts';
import type { EvalMetrics, LengthControlSettings } from './evaluate.ts';
import type { OutputRecord } from './io.ts';
import { LC_VARIANTS, type LcVariant } from './length-control.ts';

// ts/ under tsx, dist/ when compiled: the registry has this module's extension
const DEFAULT_REGISTRY = fileURLToPath(new URL(`../feedback/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

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
  if (generators.size === 1) return nameFromPath([...generators][0]);
  const file = basename(path);
  if (/^model_outputs\.jsonl?$/.test(file)) return nameFromPath(dirname(resolve(path)));
  return file.replace(/\.(jsonl?|json)$/i, '');
}

/**
 * A model's name from a path-like generator (`farm generate` once wrote the checkpoint's path there): the
 * folder's name, or the run's name for a run folder's model/ (runs/sft/model -> sft). Other names are kept.
 */
export function nameFromPath(name: string): string {
  if (!/[\\/]/.test(name)) return name;
  const parts = name.split(/[\\/]+/).filter((p) => p && p !== '.' && p !== '..');
  let last = parts.pop() ?? 'model';
  if ((last === 'model' || /^checkpoint-\d+$/.test(last)) && parts.length) last = parts.pop()!;
  return last;
}

/**
 * `name` as one path segment inside an output folder: letters, digits and . _ + - kept, anything else
 * (slashes, '..', control characters) replaced by '_', no leading dot, at most 120 characters.
 */
export function safePathSegment(name: string, fallback = 'model'): string {
  const s = name.replace(/[^\w.+-]+/g, '_').replace(/^[._-]+/, '').slice(0, 120);
  return s === '' ? fallback : s;
}

/** join(dir, ...segments) after making each segment safe; the result is always inside dir. */
export function pathInside(dir: string, ...segments: string[]): string {
  const p = join(dir, ...segments.map((s) => safePathSegment(s)));
  const root = resolve(dir);
  if (resolve(p) !== root && !resolve(p).startsWith(`${root}/`)) throw new Error(`refusing to write ${p}: outside ${dir}`);
  return p;
}

/** An input file named by a flag: it must exist and be a file (checked before any work). */
export function checkInputFile(flag: string, path: string | undefined): void {
  if (path === undefined) return;
  if (!existsSync(path)) throw new Error(`${flag} ${path}: no such file`);
  if (statSync(path).isDirectory()) throw new Error(`${flag} ${path}: is a folder, expected a file`);
}

/** The default reference outputs: $FARM_REFERENCE_OUTPUTS, else the shared text-davinci-003 outputs. */
export function defaultReferencePath(): string | undefined {
  const env = process.env.FARM_REFERENCE_OUTPUTS;
  if (env) return env;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const shared = join(root, '..', 'shared', 'data', 'alpaca_eval', 'text_davinci_003', 'model_outputs.json');
  return existsSync(shared) ? shared : undefined;
}

/** Flags of the length-control fit, shared by `farm evaluate` and `farm leaderboard add/build`. */
export interface LengthControlFlags {
  lengthControl: boolean;
  lcVariant?: string;
  difficulty?: string;
  difficultyLookup?: string;
  gamed?: string;
}

/** Adds the length-control options to a command. */
export function addLengthControlOptions(cmd: Command): Command {
  return cmd
    .option('--no-length-control', 'skip the length-controlled win-rate')
    .option(
      '--lc-variant <name>',
      `auto (default: length_controlled_v1 on AlpacaEval's instructions, as alpaca_eval; length_controlled_noreg with a difficulty table; else length_controlled_minimal), or one of ${LC_VARIANTS.join(', ')}`,
      'auto',
    )
    .option('--difficulty <file>', 'instruction difficulty table replacing the bundled AlpacaEval one: alpaca_eval\'s instruction_difficulty.csv, or JSON ({instruction: d} or [{instruction, input?, difficulty}], e.g. from `farm leaderboard difficulty`)')
    .option('--difficulty-lookup <mode>', 'position (alpaca_eval: row i gets entry i; default for length_controlled_v1) or instruction (each row its own instruction)')
    .option('--gamed <file>', 'gamed baseline rows (length_controlled_v1) replacing the bundled calibrated surrogate: alpaca_eval\'s df_gamed.csv, or "surrogate" for the bundled surrogate uncalibrated');
}

/** Library settings from the flags (files read here, so that errors name them). */
export function lengthControlSettings(f: LengthControlFlags): false | LengthControlSettings {
  if (!f.lengthControl) {
    for (const flag of ['lcVariant', 'difficulty', 'difficultyLookup', 'gamed'] as const) {
      if (f[flag] !== undefined && !(flag === 'lcVariant' && f.lcVariant === 'auto')) throw new Error(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is a setting of the length-controlled win-rate; drop --no-length-control or the setting`);
    }
    return false;
  }
  checkInputFile('--difficulty', f.difficulty);
  if (f.gamed !== 'surrogate') checkInputFile('--gamed', f.gamed);
  const variant = f.lcVariant ?? 'auto';
  if (variant !== 'auto' && !(LC_VARIANTS as readonly string[]).includes(variant)) {
    throw new Error(`--lc-variant must be auto or one of ${LC_VARIANTS.join(', ')}, got ${JSON.stringify(variant)}`);
  }
  if (f.difficultyLookup !== undefined && f.difficultyLookup !== 'position' && f.difficultyLookup !== 'instruction') {
    throw new Error(`--difficulty-lookup must be position or instruction, got ${JSON.stringify(f.difficultyLookup)}`);
  }
  return {
    variant: variant as LcVariant | 'auto',
    ...(f.difficulty ? { difficulty: flagged('--difficulty', () => readDifficultyTable(f.difficulty!)) } : {}),
    ...(f.gamed ? { gamed: f.gamed === 'surrogate' ? 'surrogate' as const : flagged('--gamed', () => readGamedRows(f.gamed!)) } : {}),
    ...(f.difficultyLookup ? { lookup: f.difficultyLookup as DifficultyLookup } : {}),
  };
}

/** Runs `read`, naming the flag in its error. */
function flagged<T>(flag: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw new Error(`${flag}: ${(e as Error).message}`);
  }
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
  let tail = dropped > 0 ? `\n(${dropped} of ${m.n_rows} annotations dropped: ${m.n_missing} missing, ${m.n_invalid} invalid)` : '';
  const lc = m.length_control;
  if (lc) {
    const se = lc.variant === 'length_controlled_minimal' ? `fit s.e. ${fix(lc.fit_standard_error)}` : `lc_standard_error ${fix(lc.lc_standard_error)}, fit s.e. ${fix(lc.fit_standard_error)}`;
    tail += `\n(length control: ${lc.description}; C = ${Number.isFinite(lc.C) ? lc.C.toPrecision(3) : 'n/a'}; ${se})`;
  }
  return `${head}\n${row}${tail}`;
}

/** JSON with NaN written as null and large annotation arrays left to the caller. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}
