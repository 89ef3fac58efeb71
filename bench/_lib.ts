// Shared bench plumbing: one JSON line per figure (DESIGN.md section 8), medians, flags, and side-by-side
// PyTorch references run interleaved with ours.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { availableParallelism, loadavg } from 'node:os';
export interface Reference { name: string; value: number; source: string }
export interface Figure {
  bench: string; figure: string; value: number | null; unit: string;
  config?: Record<string, unknown>; reference?: Reference | null;
  /** Why value is null (a reference that could not run). */
  note?: string;
}
export function emit(f: Figure): void {
  console.log(JSON.stringify({ ...f, value: f.value === null ? null : round(f.value) }));
}
export function round(x: number): number { return Number.isFinite(x) ? Number(x.toPrecision(6)) : x; }
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
export const quick = process.argv.includes('--quick');
export function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
export async function timeit(fn: () => Promise<unknown> | unknown, reps: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return out;
}

// ---- side-by-side references: a PyTorch process that runs one repetition per command ----

export interface TorchInfo { torch: string; threads: number; blas: string; openblasCore?: string | null; openblasDetected?: string | null }

/** A reference process speaking bench/reference/llama_torch.py's line protocol. */
export class TorchReference {
  private lines: AsyncIterator<string>;
  private constructor(private proc: ChildProcessWithoutNullStreams, readonly info: TorchInfo) {
    this.lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  }
  /** Starts the reference, or says why it cannot run (no PyTorch, --no-torch). */
  static async start(cfg: Record<string, unknown>, threads: number): Promise<TorchReference | { reason: string }> {
    if (process.argv.includes('--no-torch')) return { reason: '--no-torch given' };
    // Debian's python3-torch lives under the system Python, which a pyenv `python3` on PATH may shadow.
    const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
    if (!python) return { reason: 'PyTorch is not importable by /usr/bin/python3 or python3 (apt-get install python3-torch libopenblas0-openmp)' };
    // OpenBLAS's OpenMP build with our thread count: the default pthreads build oversubscribes small machines.
    const omp = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
    const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), ...(existsSync(omp) ? { LD_LIBRARY_PATH: omp } : {}) };
    const script = new URL('./reference/llama_torch.py', import.meta.url).pathname;
    const proc = spawn(python, [script, JSON.stringify({ ...cfg, threads })], { env });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    const ref = new TorchReference(proc, { torch: '?', threads, blas: '?' });
    const first = await ref.lines.next();
    if (first.done) return { reason: `the PyTorch reference exited: ${stderr.trim().slice(-400)}` };
    const ready = JSON.parse(first.value);
    Object.assign(ref.info, { torch: ready.torch, threads: ready.threads, blas: ready.blas, openblasCore: ready.openblas_core, openblasDetected: ready.openblas_detected });
    return ref;
  }
  /** One repetition of `what` (train, forward, sample), timed inside the reference: seconds. */
  async run(what: 'train' | 'forward' | 'sample'): Promise<number> {
    this.proc.stdin.write(`${what}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error('the PyTorch reference exited');
    const msg = JSON.parse(r.value);
    if (msg.error) throw new Error(`PyTorch reference: ${msg.error}`);
    return msg.seconds;
  }
  close(): void {
    this.proc.stdin.end('quit\n');
  }
  /** "pytorch-1.13 (2 threads, OpenBLAS SkylakeX kernels; the library detected Prescott)". */
  describe(): string {
    const i = this.info;
    const blas = i.openblasCore ? `, OpenBLAS ${i.openblasCore} kernels${i.openblasDetected ? `, forced: the library detected ${i.openblasDetected}` : ''}` : `, BLAS ${i.blas}`;
    return `pytorch-${i.torch} (${i.threads} threads${blas})`;
  }
}

/** The 1-minute load average over the cores: above ~0.5, other work shares the cores and ratios drift (PyTorch's
 * static OpenMP split stalls when a thread loses its core; ours hands work out dynamically). */
export function machineLoad(): number { return +(loadavg()[0] / Math.max(1, availableParallelism())).toFixed(2); }

/**
 * Repetitions of ours and the reference's, alternated (ours, theirs, ours, ...) after `warmup` of each, so
 * that a neighbour's load on a shared machine lands on both alike. Returns seconds per repetition.
 */
export async function interleaved(ours: () => Promise<unknown>, theirs: (() => Promise<number>) | null, reps: number, warmup = 1) {
  for (let i = 0; i < warmup; i++) { await ours(); if (theirs) await theirs(); }
  const a: number[] = [], b: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    await ours();
    a.push(Number(process.hrtime.bigint() - t) / 1e9);
    if (theirs) b.push(await theirs());
  }
  return { ours: a, theirs: b };
}
