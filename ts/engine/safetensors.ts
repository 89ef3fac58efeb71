// safetensors files: an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
// Reading validates the header against the file and streams each tensor straight into its destination.
import { open, writeFile } from 'node:fs/promises';

export type Dtype = 'F32' | 'F16' | 'BF16';
export interface TensorEntry { dtype: string; shape: number[]; data_offsets: [number, number] }
export interface SafetensorsHeader { tensors: Map<string, TensorEntry>; metadata: Record<string, string>; dataStart: number; fileSize: number }

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100 << 20;

export async function readHeader(path: string): Promise<SafetensorsHeader> {
  let fh;
  try { fh = await open(path, 'r'); } catch (err) { throw new Error(`cannot open safetensors file ${path}: ${(err as Error).message}`); }
  try {
    const { size } = await fh.stat();
    if (size < 8) throw new Error(`${path}: truncated safetensors file (${size} bytes; no header length)`);
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n < 2 || n > MAX_HEADER) throw new Error(`${path}: corrupted safetensors header length ${n}`);
    if (8 + n > size) throw new Error(`${path}: truncated safetensors file (header of ${n} bytes, file of ${size})`);
    const hb = Buffer.alloc(n);
    await fh.read(hb, 0, n, 8);
    let json: Record<string, any>;
    try { json = JSON.parse(hb.toString('utf8')); } catch (err) { throw new Error(`${path}: corrupted safetensors header (not JSON: ${(err as Error).message})`); }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${path}: corrupted safetensors header (not an object)`);
    const tensors = new Map<string, TensorEntry>();
    const dataSize = size - 8 - n;
    const spans: [number, number, string][] = [];
    for (const [name, e] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      const ok = e && typeof e === 'object' && typeof e.dtype === 'string' && Array.isArray(e.shape) &&
        e.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0) && Array.isArray(e.data_offsets) &&
        e.data_offsets.length === 2 && e.data_offsets.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0);
      if (!ok) throw new Error(`${path}: corrupted safetensors header entry for tensor "${name}"`);
      const [b, en] = e.data_offsets as [number, number];
      const width = BYTES[e.dtype];
      if (width === undefined) throw new Error(`${path}: tensor "${name}" has unknown dtype ${e.dtype}`);
      const numel = (e.shape as number[]).reduce((a, d) => a * d, 1);
      if (en - b !== numel * width) throw new Error(`${path}: tensor "${name}" spans ${en - b} bytes, but ${e.dtype}${JSON.stringify(e.shape)} needs ${numel * width}`);
      if (en > dataSize) throw new Error(`${path}: truncated safetensors file (tensor "${name}" ends at byte ${en} of ${dataSize} data bytes)`);
      spans.push([b, en, name]);
      tensors.set(name, { dtype: e.dtype, shape: e.shape, data_offsets: [b, en] });
    }
    spans.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++)
      if (spans[i][0] < spans[i - 1][1]) throw new Error(`${path}: corrupted safetensors header (tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap)`);
    const metadata = (json.__metadata__ ?? {}) as Record<string, string>;
    return { tensors, metadata, dataStart: 8 + n, fileSize: size };
  } finally {
    await fh.close();
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Reads tensors into destinations (converting F16/BF16 to F32). `want` maps tensor name to its destination. */
export async function readTensors(path: string, header: SafetensorsHeader, want: Map<string, Float32Array>): Promise<void> {
  const fh = await open(path, 'r');
  try {
    for (const [name, dst] of want) {
      const e = header.tensors.get(name);
      if (!e) throw new Error(`${path}: missing tensor "${name}"`);
      const [b, en] = e.data_offsets;
      const pos = header.dataStart + b;
      if (e.dtype === 'F32') {
        if (dst.length * 4 !== en - b) throw new Error(`${path}: tensor "${name}" has ${(en - b) / 4} elements, expected ${dst.length}`);
        const bytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
        const { bytesRead } = await fh.read(bytes, 0, bytes.length, pos);
        if (bytesRead !== bytes.length) throw new Error(`${path}: truncated while reading tensor "${name}"`);
      } else if (e.dtype === 'F16' || e.dtype === 'BF16') {
        if (dst.length * 2 !== en - b) throw new Error(`${path}: tensor "${name}" has ${(en - b) / 2} elements, expected ${dst.length}`);
        const raw = Buffer.alloc(en - b);
        const { bytesRead } = await fh.read(raw, 0, raw.length, pos);
        if (bytesRead !== raw.length) throw new Error(`${path}: truncated while reading tensor "${name}"`);
        if (e.dtype === 'BF16') {
          const u32 = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
          for (let i = 0; i < dst.length; i++) u32[i] = raw.readUInt16LE(2 * i) << 16;
        } else {
          for (let i = 0; i < dst.length; i++) dst[i] = halfToFloat(raw.readUInt16LE(2 * i));
        }
      } else {
        throw new Error(`${path}: tensor "${name}" has dtype ${e.dtype}; only F32, F16 and BF16 weights are supported`);
      }
    }
  } finally {
    await fh.close();
  }
}

/** Writes F32 tensors (in the given order) with string metadata. */
export async function writeSafetensors(path: string, tensors: { name: string; shape: number[]; data: Float32Array }[],
  metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length) throw new Error(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} does not match ${t.data.length} elements`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);  // data starts 8-byte aligned
  const hb = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hb.length + off);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let pos = 8 + hb.length;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  await writeFile(path, out);
}
