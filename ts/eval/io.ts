// Reading the files evaluation works on, in the formats alpaca_eval and AlpacaFarm write:
//   outputs:      [{instruction, output, generator?, dataset?}]           (alpaca_eval model_outputs.json)
//                 [{instruction, input, output, generator?, ...}]         (AlpacaFarm eval files)
//   pairs:        [{instruction, input?, output_1, output_2}]              (AlpacaFarm outputs_pairs.json)
//   annotations:  pairs + {preference, generator_1?, generator_2?, annotator?, ...}
// JSON arrays or JSONL. Instructions are joined on alpaca_eval's merged form:
// instruction + "\n\n" + input when input is non-empty.
import { readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';

export interface OutputRecord {
  instruction: string;
  /** '' for alpaca_eval files (their instruction already contains the input). */
  input: string;
  output: string;
  generator?: string;
  dataset?: string;
  /** The farm world that wrote the instruction (farm data only). */
  world_seed?: number;
}

export interface AnnotationRecord {
  instruction: string;
  input: string;
  output_1: string;
  output_2: string;
  /** As read: number, null, or whatever the file holds (validated by the metrics). */
  preference: unknown;
  generator_1?: string;
  generator_2?: string;
  annotator?: string;
  dataset?: string;
  [extra: string]: unknown;
}

/** The key two files are joined on: alpaca_eval's merged instruction. */
export function instructionKey(instruction: string, input = ''): string {
  return input ? `${instruction}\n\n${input}` : instruction;
}

/**
 * Python's json module writes NaN, Infinity and -Infinity as bare words, which JSON.parse refuses. Outside
 * strings, NaN becomes null (a missing value, as pandas reads it) and the infinities become the strings
 * "Infinity" / "-Infinity" (so that they are reported as invalid values, not silently dropped).
 */
export function replacePythonJsonConstants(text: string): { text: string; replaced: number } {
  let out = '';
  let replaced = 0;
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    let word: string | undefined;
    let by = '';
    if (c === 0x4e && text.startsWith('NaN', i)) [word, by] = ['NaN', 'null'];
    else if (c === 0x49 && text.startsWith('Infinity', i)) [word, by] = ['Infinity', '"Infinity"'];
    else if (c === 0x2d && text.startsWith('-Infinity', i)) [word, by] = ['-Infinity', '"-Infinity"'];
    if (word) {
      out += text.slice(last, i) + by;
      i += word.length - 1;
      last = i + 1;
      replaced++;
    }
  }
  return { text: replaced ? out + text.slice(last) : text, replaced };
}

/** JSON.parse that also reads Python's NaN / Infinity (see replacePythonJsonConstants). */
function parseJsonLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const fixed = replacePythonJsonConstants(text);
    if (fixed.replaced === 0) throw err;
    return JSON.parse(fixed.text);
  }
}

/** Parses a JSON array or JSON-lines text into rows, with the file name in every error. */
export function parseRows(text: string, source = 'input'): unknown[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let value: unknown;
    try {
      value = parseJsonLenient(text);
    } catch (err) {
      throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
    }
    if (!Array.isArray(value)) throw new Error(`${source}: expected a JSON array of records`);
    return value;
  }
  if (trimmed.startsWith('{')) {
    // a single JSON object is not a list of records; JSONL has one object per line
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    return lines.map((line, i) => {
      try {
        return parseJsonLenient(line);
      } catch (err) {
        throw new Error(`${source}: line ${i + 1} is not valid JSON (${(err as Error).message}); expected a JSON array or JSON lines`);
      }
    });
  }
  if (trimmed === '') throw new Error(`${source}: empty file`);
  throw new Error(`${source}: expected a JSON array of records or JSON lines`);
}

export function readRows(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseRows(text, path);
}

function asRecord(row: unknown, i: number, source: string): Record<string, unknown> {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new Error(`${source}: row ${i} is not an object`);
  return row as Record<string, unknown>;
}

function str(rec: Record<string, unknown>, field: string, i: number, source: string, optional = false): string {
  const v = rec[field];
  if (v === undefined || v === null) {
    if (optional) return '';
    throw new Error(`${source}: row ${i} has no "${field}" (fields: ${Object.keys(rec).join(', ') || 'none'})`);
  }
  if (typeof v !== 'string') throw new Error(`${source}: row ${i} field "${field}" is ${typeof v}, expected a string`);
  return v;
}

function optStr(rec: Record<string, unknown>, field: string): string | undefined {
  const v = rec[field];
  return typeof v === 'string' ? v : undefined;
}

export type RowsKind = 'outputs' | 'pairs' | 'annotations';

/** What kind of rows a file holds, judged from the first row's fields. */
export function detectKind(rows: readonly unknown[], source = 'input'): RowsKind {
  if (rows.length === 0) throw new Error(`${source}: no records`);
  const first = asRecord(rows[0], 0, source);
  if ('output_1' in first && 'output_2' in first) return 'preference' in first ? 'annotations' : 'pairs';
  if ('output' in first) return 'outputs';
  throw new Error(`${source}: records have neither "output" nor "output_1"/"output_2" (fields: ${Object.keys(first).join(', ')})`);
}

export function toOutputs(rows: readonly unknown[], source = 'input'): OutputRecord[] {
  return rows.map((row, i) => {
    const rec = asRecord(row, i, source);
    const out: OutputRecord = {
      instruction: str(rec, 'instruction', i, source),
      input: str(rec, 'input', i, source, true),
      output: str(rec, 'output', i, source),
    };
    const generator = optStr(rec, 'generator');
    const dataset = optStr(rec, 'dataset');
    if (generator !== undefined) out.generator = generator;
    if (dataset !== undefined) out.dataset = dataset;
    if (typeof rec.world_seed === 'number' && Number.isInteger(rec.world_seed)) out.world_seed = rec.world_seed;
    return out;
  });
}

export function toAnnotations(rows: readonly unknown[], source = 'input'): AnnotationRecord[] {
  return rows.map((row, i) => {
    const rec = asRecord(row, i, source);
    if (!('preference' in rec)) throw new Error(`${source}: row ${i} has no "preference"`);
    return {
      ...rec,
      instruction: str(rec, 'instruction', i, source),
      input: str(rec, 'input', i, source, true),
      output_1: str(rec, 'output_1', i, source),
      output_2: str(rec, 'output_2', i, source),
      preference: rec.preference,
    };
  });
}

export function readOutputs(path: string): OutputRecord[] {
  const rows = readRows(path);
  const kind = detectKind(rows, path);
  if (kind !== 'outputs') {
    throw new Error(`${path}: holds ${kind} (output_1/output_2), not model outputs; use --annotations for annotations files`);
  }
  return toOutputs(rows, path);
}

export function readAnnotations(path: string): AnnotationRecord[] {
  const rows = readRows(path);
  const kind = detectKind(rows, path);
  if (kind !== 'annotations') throw new Error(`${path}: holds ${kind}, not annotations (rows need output_1, output_2, preference)`);
  return toAnnotations(rows, path);
}

/** Writes JSON atomically (temp file + rename), creating the folder. */
export function writeJson(path: string, value: unknown): void {
  writeText(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
