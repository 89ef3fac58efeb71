// Length-delimited protobuf files (proto/farm.proto, loaded at run time with protobufjs): a header frame,
// one frame per record, and a footer with the record count and a CRC-32, so that a file cut short by a
// crash is refused instead of being half-read.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { writeFileAtomic } from './json.ts';
import { DataError, validateRecord, type RecordKind, type RecordOf, type RunManifest } from './records.ts';

export const PROTO_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto', 'farm.proto');
const MAGIC = 'farm-records';
const VERSION = 1;

let root: protobuf.Root | null = null;
/** The parsed farm.proto (field names kept as written: output_1, not output1). */
export function protoRoot(): protobuf.Root {
  if (!root) root = protobuf.parse(readFileSync(PROTO_PATH, 'utf8'), { keepCase: true }).root;
  return root;
}
const frameType = () => protoRoot().lookupType('farm.Frame');

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

/** Only the fields farm.proto knows travel in protobuf form (extra JSON fields are dropped). */
function toMessage(kind: RecordKind, r: Record<string, unknown>): Record<string, unknown> {
  const fields = frameType().fields[kind].resolve().resolvedType as protobuf.Type;
  const m: Record<string, unknown> = {};
  for (const name of Object.keys(fields.fields)) if (r[name] !== undefined && r[name] !== null) m[name] = r[name];
  return m;
}

export function encodeRecords<K extends RecordKind>(kind: K, records: readonly RecordOf[K][]): Uint8Array {
  const Frame = frameType();
  const chunks: Uint8Array[] = [Frame.encodeDelimited(Frame.create({ header: { magic: MAGIC, version: VERSION, kind } })).finish()];
  for (const r of records) chunks.push(Frame.encodeDelimited(Frame.create({ [kind]: toMessage(kind, r as Record<string, unknown>) })).finish());
  const body = concat(chunks);
  const footer = Frame.encodeDelimited(Frame.create({ footer: { count: records.length, crc32: crc32(body) } })).finish();
  return concat([body, footer]);
}

export function writeProtoRecords<K extends RecordKind>(file: string, kind: K, records: readonly RecordOf[K][]): void {
  writeFileAtomic(file, encodeRecords(kind, records));
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, oneofs: true };

export function decodeRecords<K extends RecordKind>(bytes: Uint8Array, kind: K, file = '<protobuf>'): RecordOf[K][] {
  const Frame = frameType();
  const reader = protobuf.Reader.create(bytes);
  const out: RecordOf[K][] = [];
  let sawHeader = false;
  while (reader.pos < reader.len) {
    const start = reader.pos;
    let obj: Record<string, any>;
    try {
      obj = Frame.toObject(Frame.decodeDelimited(reader), TO_OBJECT) as Record<string, any>;
    } catch (err) {
      const what = sawHeader ? `record ${out.length + 1}` : 'the header';
      throw new DataError(`truncated or corrupt protobuf in ${what} at byte ${start} of ${bytes.length} (was the file cut short while writing?): ${(err as Error).message}`, file, sawHeader ? out.length + 1 : undefined);
    }
    const body = obj.body as string | undefined;
    if (!sawHeader) {
      if (body !== 'header' || obj.header.magic !== MAGIC) throw new DataError(`not a farm records file (no "${MAGIC}" header frame)`, file);
      if (obj.header.version !== VERSION) throw new DataError(`unsupported version ${obj.header.version} (this reader knows ${VERSION})`, file);
      if (obj.header.kind !== kind) throw new DataError(`holds ${obj.header.kind} records, expected ${kind} records`, file);
      sawHeader = true;
      continue;
    }
    if (body === 'footer') {
      const { count, crc32: want } = obj.footer as { count: number; crc32: number };
      if (count !== out.length) throw new DataError(`footer says ${count} records, the file holds ${out.length}`, file);
      const got = crc32(bytes.subarray(0, start));
      if (got !== want) throw new DataError(`CRC-32 mismatch (footer ${want}, computed ${got}): the file is corrupt`, file);
      if (reader.pos !== reader.len) throw new DataError(`${reader.len - reader.pos} bytes after the footer`, file);
      return out;
    }
    if (body !== kind) throw new DataError(`expected a ${kind} record, found ${body ?? 'an empty frame'}`, file, out.length + 1);
    const rec = obj[kind] as Record<string, unknown>;
    // proto3 optional fields come back as null when absent
    for (const k of Object.keys(rec)) if (rec[k] === null) delete rec[k];
    out.push(validateRecord(kind, rec, file, out.length + 1));
  }
  if (!sawHeader) throw new DataError('empty file (no header frame)', file);
  throw new DataError(`truncated: no footer after ${out.length} records (was the file cut short while writing?)`, file);
}

export function readProtoRecords<K extends RecordKind>(file: string, kind: K): RecordOf[K][] {
  return decodeRecords(readFileSync(file), kind, file);
}

/** A manifest as a single framed protobuf message (config travels as JSON text). */
export function encodeManifest(m: RunManifest): Uint8Array {
  const Frame = frameType();
  const msg = { ...m, config_json: m.config ? JSON.stringify(m.config) : '', config: undefined };
  const body = concat([
    Frame.encodeDelimited(Frame.create({ header: { magic: MAGIC, version: VERSION, kind: 'manifest' } })).finish(),
    Frame.encodeDelimited(Frame.create({ manifest: msg })).finish(),
  ]);
  return concat([body, Frame.encodeDelimited(Frame.create({ footer: { count: 1, crc32: crc32(body) } })).finish()]);
}

export function decodeManifest(bytes: Uint8Array, file = '<manifest>'): RunManifest {
  const Frame = frameType();
  const reader = protobuf.Reader.create(bytes);
  try {
    const head = Frame.toObject(Frame.decodeDelimited(reader), TO_OBJECT) as Record<string, any>;
    if (head.body !== 'header' || head.header.kind !== 'manifest') throw new Error('no manifest header frame');
    const start = reader.pos;
    const m = Frame.toObject(Frame.decodeDelimited(reader), TO_OBJECT) as Record<string, any>;
    const footPos = reader.pos;
    const foot = Frame.toObject(Frame.decodeDelimited(reader), TO_OBJECT) as Record<string, any>;
    if (m.body !== 'manifest' || foot.body !== 'footer') throw new Error('expected a manifest frame then a footer');
    if (foot.footer.crc32 !== crc32(bytes.subarray(0, footPos))) throw new Error('CRC-32 mismatch');
    void start;
    const { config_json, ...rest } = m.manifest as Record<string, any>;
    for (const k of Object.keys(rest)) if (rest[k] === null) delete rest[k];
    return { ...rest, config: config_json ? JSON.parse(config_json) : undefined } as RunManifest;
  } catch (err) {
    throw new DataError(`bad protobuf manifest: ${(err as Error).message}`, file);
  }
}
