// JSON Lines and JSON-array files (alpaca_eval writes arrays, AlpacaFarm's splits are JSON; we write JSONL).
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { DataError, validateRecord, type RecordKind, type RecordOf } from './records.ts';

/** Writes via a temporary file and a rename, so a crash never leaves a half-written file in place. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** One record per line, keys in the schema's order first, newline-terminated. */
export function toJsonl(records: readonly object[]): string {
  let out = '';
  for (const r of records) out += `${JSON.stringify(r)}\n`;
  return out;
}

export function parseJsonl<K extends RecordKind>(text: string, kind: K, file = '<jsonl>'): RecordOf[K][] {
  const out: RecordOf[K][] = [];
  const lines = text.split('\n');
  const complete = text.length === 0 || text.endsWith('\n');
  const last = complete ? lines.length - 1 : lines.length; // the element after the final '\n' is ''
  for (let i = 0; i < last; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (i === lines.length - 1 && !complete) {
        throw new DataError(`truncated: the last line has no newline and is not complete JSON (was the file cut short while writing?)`, file, i + 1);
      }
      throw new DataError(`invalid JSON: ${(err as Error).message}`, file, i + 1);
    }
    out.push(validateRecord(kind, value, file, i + 1));
  }
  return out;
}

/** Line numbers (1-based) where each top-level element of a JSON array starts. */
function arrayElementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (depth === 1 && expectValue && c !== ']') { lines.push(line); expectValue = false; }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') { depth++; if (depth === 1) expectValue = true; }
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectValue = true;
  }
  return lines;
}

export function parseJsonArray<K extends RecordKind>(text: string, kind: K, file = '<json>'): RecordOf[K][] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const hint = text.trimEnd().endsWith(']') ? '' : ' (the array is not closed: was the file cut short while writing?)';
    throw new DataError(`invalid JSON${hint}: ${(err as Error).message}`, file);
  }
  if (!Array.isArray(value)) throw new DataError(`expected a JSON array of ${kind} records (or JSON Lines), got ${value === null ? 'null' : typeof value}`, file);
  const lines = arrayElementLines(text);
  return value.map((v, i) => validateRecord(kind, v, file, lines[i] ?? undefined));
}

/** A .json file may hold an array (alpaca_eval) or JSON Lines; a .jsonl file holds JSON Lines. */
export function parseJsonRecords<K extends RecordKind>(text: string, kind: K, file: string): RecordOf[K][] {
  const first = text.trimStart()[0];
  return first === '[' ? parseJsonArray(text, kind, file) : parseJsonl(text, kind, file);
}

export function readJsonRecords<K extends RecordKind>(file: string, kind: K): RecordOf[K][] {
  return parseJsonRecords(readFileSync(file, 'utf8'), kind, file);
}

export function writeJsonl(file: string, records: readonly object[]): void {
  writeFileAtomic(file, toJsonl(records));
}

/** A JSON array in alpaca_eval's layout (two-space indent). */
export function writeJsonArray(file: string, records: readonly object[]): void {
  writeFileAtomic(file, `${JSON.stringify(records, null, 2)}\n`);
}
