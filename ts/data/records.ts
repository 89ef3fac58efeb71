// Record kinds, their fields (AlpacaFarm / alpaca_eval names) and validation with errors that name the
// file, the line (or record number) and the field.

export interface InstructionRecord {
  instruction: string;
  input: string;
  output: string;
  generator?: string;
  dataset?: string;
  datasplit?: string;
  /** The farm world that wrote the instruction (farm judges and the panel must use the same world). */
  world_seed?: number;
  [extra: string]: unknown;
}

export interface PreferenceRecord {
  instruction: string;
  input: string;
  output_1: string;
  output_2: string;
  /** 1 or 2 names the better output, 0 a draw; soft preferences in [1, 2] */
  preference: number;
  annotator: string;
  generator_1?: string;
  generator_2?: string;
  [extra: string]: unknown;
}

export interface Completion {
  instruction: string;
  input: string;
  output: string;
  generator: string;
  dataset?: string;
  sample_index?: number;
  logprob?: number;
  reward?: number;
  [extra: string]: unknown;
}

export interface FileEntry {
  path: string;
  kind: RecordKind;
  format: 'jsonl' | 'json' | 'pb';
  records: number;
  sha256: string;
}

export interface RunManifest {
  name: string;
  kind: string;
  seed: number;
  preset?: string;
  command?: string;
  created?: string;
  config?: Record<string, unknown>;
  files: FileEntry[];
  metrics?: Record<string, number>;
  counts?: Record<string, number>;
  version?: string;
  /** Farm data: the seed of the world that wrote every record (records carry it too, as world_seed). */
  world_seed?: number;
}

/** An unlabelled pair (the simulator's input, e.g. AlpacaFarm's outputs_pairs.json). */
export interface PairRecord {
  instruction: string;
  input: string;
  output_1: string;
  output_2: string;
  [extra: string]: unknown;
}

export type RecordKind = 'instruction' | 'preference' | 'completion' | 'pair';
export interface RecordOf {
  instruction: InstructionRecord;
  preference: PreferenceRecord;
  completion: Completion;
  pair: PairRecord;
}
export const RECORD_KINDS: readonly RecordKind[] = ['instruction', 'preference', 'completion', 'pair'];

/** A bad record or file: `file`, `line` (1-based; the record number for protobuf) and `field` say where. */
export class DataError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly field?: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${field ? `field "${field}": ` : ''}${message}`);
    this.name = 'DataError';
  }
}

type FieldType = 'string' | 'number' | 'integer';
interface FieldSpec {
  type: FieldType;
  /** absent fields get this value; without it the field is required */
  default?: string | number;
  optional?: boolean;
  check?: (v: number) => string | null;
}

const worldSeedSpec: FieldSpec = { type: 'integer', optional: true, check: (v) => (v >= 0 ? null : `expected a non-negative integer (a farm world seed), got ${v}`) };
const preferenceCheck = (v: number) => (v === 0 || (v >= 1 && v <= 2) ? null : `expected 1, 2, 0 (draw) or a soft value in [1, 2], got ${v}`);

export const SCHEMAS: Readonly<Record<RecordKind, Readonly<Record<string, FieldSpec>>>> = {
  instruction: {
    instruction: { type: 'string' },
    input: { type: 'string', default: '' },
    output: { type: 'string' },
    generator: { type: 'string', optional: true },
    dataset: { type: 'string', optional: true },
    datasplit: { type: 'string', optional: true },
    world_seed: worldSeedSpec,
  },
  preference: {
    instruction: { type: 'string' },
    input: { type: 'string', default: '' },
    output_1: { type: 'string' },
    output_2: { type: 'string' },
    preference: { type: 'number', check: preferenceCheck },
    annotator: { type: 'string', default: '' },
    generator_1: { type: 'string', optional: true },
    generator_2: { type: 'string', optional: true },
    world_seed: worldSeedSpec,
  },
  pair: {
    instruction: { type: 'string' },
    input: { type: 'string', default: '' },
    output_1: { type: 'string' },
    output_2: { type: 'string' },
    world_seed: worldSeedSpec,
  },
  completion: {
    instruction: { type: 'string' },
    input: { type: 'string', default: '' },
    output: { type: 'string' },
    generator: { type: 'string', default: '' },
    dataset: { type: 'string', optional: true },
    sample_index: { type: 'integer', optional: true, check: (v) => (v >= 0 ? null : `expected a non-negative integer, got ${v}`) },
    logprob: { type: 'number', optional: true },
    reward: { type: 'number', optional: true },
    world_seed: worldSeedSpec,
  },
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 30 ? `${v.slice(0, 27)}...` : v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Checks one record and returns it with defaults filled in (input '' when absent, as in alpaca_eval's
 * model_outputs.json). Unknown fields are kept. Throws DataError naming file, line and field.
 */
export function validateRecord<K extends RecordKind>(kind: K, value: unknown, file = '<record>', line?: number): RecordOf[K] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DataError(`expected a JSON object (a ${kind} record), got ${describe(value)}`, file, line);
  }
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [name, spec] of Object.entries(SCHEMAS[kind])) {
    const v = out[name];
    if (v === undefined || (v === null && spec.optional)) {
      if (spec.default !== undefined) out[name] = spec.default;
      else if (!spec.optional) throw new DataError(`missing (required in a ${kind} record)`, file, line, name);
      else delete out[name];
      continue;
    }
    if (spec.type === 'string') {
      if (typeof v !== 'string') throw new DataError(`expected a string, got ${describe(v)}`, file, line, name);
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`expected a finite number, got ${describe(v)}`, file, line, name);
      if (spec.type === 'integer' && !Number.isInteger(v)) throw new DataError(`expected an integer, got ${v}`, file, line, name);
      const problem = spec.check?.(v);
      if (problem) throw new DataError(problem, file, line, name);
    }
  }
  if (kind !== 'preference' && typeof out.instruction === 'string' && out.instruction.trim() === '') {
    throw new DataError('must not be empty', file, line, 'instruction');
  }
  return out as RecordOf[K];
}

export function validateManifest(value: unknown, file = '<manifest>'): RunManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DataError(`expected a JSON object, got ${describe(value)}`, file);
  const m = value as Record<string, unknown>;
  for (const f of ['name', 'kind'] as const) if (typeof m[f] !== 'string') throw new DataError(`expected a string, got ${describe(m[f])}`, file, undefined, f);
  if (typeof m.seed !== 'number' || !Number.isInteger(m.seed) || m.seed < 0) throw new DataError(`expected a non-negative integer, got ${describe(m.seed)}`, file, undefined, 'seed');
  if (m.world_seed === null) delete m.world_seed;
  if (m.world_seed !== undefined && (typeof m.world_seed !== 'number' || !Number.isInteger(m.world_seed) || m.world_seed < 0)) throw new DataError(`expected a non-negative integer, got ${describe(m.world_seed)}`, file, undefined, 'world_seed');
  if (!Array.isArray(m.files)) throw new DataError(`expected an array, got ${describe(m.files)}`, file, undefined, 'files');
  m.files.forEach((e: unknown, i: number) => {
    const where = `files[${i}]`;
    if (typeof e !== 'object' || e === null) throw new DataError(`expected an object, got ${describe(e)}`, file, undefined, where);
    const x = e as Record<string, unknown>;
    if (typeof x.path !== 'string' || !x.path) throw new DataError('expected a non-empty string', file, undefined, `${where}.path`);
    if (!RECORD_KINDS.includes(x.kind as RecordKind)) throw new DataError(`expected one of ${RECORD_KINDS.join(', ')}, got ${describe(x.kind)}`, file, undefined, `${where}.kind`);
    if (!['jsonl', 'json', 'pb'].includes(x.format as string)) throw new DataError(`expected jsonl, json or pb, got ${describe(x.format)}`, file, undefined, `${where}.format`);
    if (typeof x.records !== 'number' || !Number.isInteger(x.records) || x.records < 0) throw new DataError(`expected a non-negative integer, got ${describe(x.records)}`, file, undefined, `${where}.records`);
    if (typeof x.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(x.sha256)) throw new DataError(`expected 64 hex digits, got ${describe(x.sha256)}`, file, undefined, `${where}.sha256`);
  });
  for (const f of ['metrics', 'counts'] as const) {
    if (m[f] === undefined) continue;
    if (typeof m[f] !== 'object' || m[f] === null || Array.isArray(m[f])) throw new DataError(`expected an object of numbers`, file, undefined, f);
    for (const [k, v] of Object.entries(m[f] as object)) if (typeof v !== 'number') throw new DataError(`expected a number, got ${describe(v)}`, file, undefined, `${f}.${k}`);
  }
  return m as unknown as RunManifest;
}

/**
 * The farm world seed a set of records was written by: the `world_seed` they carry (undefined when none
 * does). Records that disagree, or a set where only some carry it, are refused: judging them in one world
 * would silently misjudge the others.
 */
export function worldSeedOf(records: readonly object[], source = 'records'): number | undefined {
  const seeds = new Map<number, number>();
  let without = 0;
  for (const r of records) {
    const s = (r as { world_seed?: unknown }).world_seed;
    if (s === undefined || s === null) { without++; continue; }
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0) throw new DataError(`world_seed must be a non-negative integer, got ${describe(s)}`, source);
    seeds.set(s, (seeds.get(s) ?? 0) + 1);
  }
  if (seeds.size === 0) return undefined;
  if (seeds.size > 1) throw new DataError(`records from several farm worlds (${[...seeds].map(([s, n]) => `world_seed ${s}: ${n}`).join(', ')}); judge each world's records apart`, source);
  const [seed, n] = [...seeds][0];
  if (without > 0) throw new DataError(`${n} records carry world_seed ${seed} and ${without} carry none: a mix of farm data and other data`, source);
  return seed;
}
