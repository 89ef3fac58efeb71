// Shared helpers of the CUDA parity tests. They run wherever the addon's CUDA backend can run: on a GPU, or in
// the CPU emulation build (FARM_NATIVE=build-emu/Release/farm.node, `npm run test:cuda-emu`), where sizes are
// kept small because every CUDA thread is a fiber. Without either, each test prints one SKIP line and passes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';

export interface CudaInfo {
  compiled: boolean; emulated: boolean; available: boolean; reason?: string;
  device?: { name: string; computeCapability: string };
}
export const cuda: CudaInfo = typeof native.cudaInfo === 'function' ? native.cudaInfo()
  : { compiled: false, emulated: false, available: false, reason: 'this addon has no cudaInfo() (an older build)' };
export const emulated = cuda.available && cuda.emulated;
/** Pick a size: the first on a GPU, the second (smaller) under the emulation. */
export const size = (gpu: number, emu: number) => (emulated ? emu : gpu);

if (!cuda.available) console.log(`SKIP cuda: ${cuda.reason}`);
/** A uvu test that runs only when the CUDA backend is available (counted as skipped otherwise). */
export function cudaTest(name: string, fn: () => unknown | Promise<unknown>): void {
  if (cuda.available) test(name, async () => { await fn(); });
  else test.skip(name, () => {});
}
export function describeDevice(): string {
  if (!cuda.available) return 'no CUDA device';
  return cuda.emulated ? 'CPU emulation' : `${cuda.device?.name} (cc ${cuda.device?.computeCapability})`;
}

/** Deterministic values in [-scale, scale). */
export function rand(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return a;
}
export function randInt(n: number, seed: number, hi: number, lo = 0): Int32Array {
  const r = rand(n, seed, 1), out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.min(hi - lo - 1, Math.floor((r[i] + 1) / 2 * (hi - lo)));
  return out;
}

/** |a - b| <= atol + rtol * |b| elementwise; names the first bad index and the largest error. */
export function close(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  let worst = 0, worstAt = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    const ok = d <= atol + rtol * Math.abs(b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])) || a[i] === b[i];
    if (!ok && (worstAt < 0 || d > worst)) { worst = d; worstAt = i; }
  }
  if (worstAt >= 0)
    assert.unreachable(`${what}: [${worstAt}] ${a[worstAt]} vs ${b[worstAt]} (diff ${worst}; atol ${atol}, rtol ${rtol})`);
}
export function equal(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    if (!(a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) assert.unreachable(`${what}: [${i}] ${a[i]} vs ${b[i]}`);
}
export const copy = (a: Float32Array) => new Float32Array(a);

/** The promise rejects with an Error whose message matches. */
export async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error, `rejected with a non-Error: ${err}`);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}
