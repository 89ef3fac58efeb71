// One entry point for record files: the format follows the extension (.jsonl, .json, .pb), every record
// is validated, and manifests list each file's record count and SHA-256 so a set can be checked whole.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { readJsonRecords, writeFileAtomic, writeJsonArray, writeJsonl } from './json.ts';
import { decodeManifest, encodeManifest, readProtoRecords, writeProtoRecords } from './proto.ts';
import { DataError, validateManifest, type FileEntry, type RecordKind, type RecordOf, type RunManifest } from './records.ts';

export type FileFormat = 'jsonl' | 'json' | 'pb';

export function formatOf(file: string): FileFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.json') return 'json';
  if (ext === '.pb' || ext === '.binpb') return 'pb';
  throw new DataError(`unknown record file extension "${ext}" (use .jsonl, .json or .pb)`, file);
}

export function readRecords<K extends RecordKind>(file: string, kind: K): RecordOf[K][] {
  if (!existsSync(file)) throw new DataError('no such file', file);
  return formatOf(file) === 'pb' ? readProtoRecords(file, kind) : readJsonRecords(file, kind);
}

/** Writes atomically (temporary file + rename). .json gives an alpaca_eval-style array. */
export function writeRecords<K extends RecordKind>(file: string, kind: K, records: readonly RecordOf[K][]): FileEntry {
  const format = formatOf(file);
  if (format === 'pb') writeProtoRecords(file, kind, records);
  else if (format === 'json') writeJsonArray(file, records);
  else writeJsonl(file, records);
  return { path: file, kind, format, records: records.length, sha256: sha256File(file) };
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** manifest.json (or manifest.pb). File paths inside are relative to the manifest's folder. */
export function writeManifest(file: string, manifest: RunManifest): void {
  validateManifest(manifest, file);
  if (formatOf(file) === 'pb') writeFileAtomic(file, encodeManifest(manifest));
  else writeFileAtomic(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

export function readManifest(file: string): RunManifest {
  if (!existsSync(file)) throw new DataError('no such file', file);
  if (formatOf(file) === 'pb') return validateManifest(decodeManifest(readFileSync(file), file), file);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`invalid JSON: ${(err as Error).message}`, file);
  }
  return validateManifest(value, file);
}

/**
 * Checks that every file a manifest lists exists with its SHA-256 and record count (reads and validates
 * every record). Throws a DataError naming the first bad file.
 */
export function verifyManifest(file: string): RunManifest {
  const m = readManifest(file);
  const dir = dirname(file);
  for (const e of m.files) {
    const path = join(dir, e.path);
    if (!existsSync(path)) throw new DataError(`listed in ${file} but missing`, path);
    const sha = sha256File(path);
    if (sha !== e.sha256) throw new DataError(`SHA-256 ${sha} differs from the manifest's ${e.sha256} (changed or cut short)`, path);
    const n = readRecords(path, e.kind).length;
    if (n !== e.records) throw new DataError(`${n} records, the manifest says ${e.records}`, path);
  }
  return m;
}
