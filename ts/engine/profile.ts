// Kernel profiling: the native profiler's table (per kernel, op and shape: calls, time, share, achieved
// GFLOP/s and GB/s against this machine's measured peaks), JS-side phases, and Chrome trace-event files
// (Perfetto, chrome://tracing) with native kernels, JS phases and async native jobs on their own tracks.
//
// The profiler is process-wide: Engine.create({ profile: true }), FARM_PROFILE=1 or FARM_TRACE=file turn it
// on. When off, a native probe costs one relaxed atomic load and JS phases cost one branch.
import { writeFileSync } from 'node:fs';
import { native } from './native.ts';

export type ProfileMode = 'off' | 'aggregate' | 'trace';

export interface MachinePeaks {
  /** fp32 FMA throughput of `threads` cores (measured per core on the GEMM's vector width, times threads). */
  fmaGflops: number;
  /** Read bandwidth of a 512 MiB buffer (main memory) and of an 8 MiB one (caches), `threads` threads. */
  memGbps: number;
  cacheGbps: number;
  threads: number;
  isa: string;
}

export interface ProfileRow {
  /** Native kernel ("gemm", "attention_forward", "decode.linear", "adamw", ...). */
  kernel: string;
  /** Call site's label ("up_proj.dw"), or '' when the call has none. */
  op: string;
  /** Shape: GEMM "MxNxK" with transposes (N/T for A, B) and "+=" when accumulating; other kernels their sizes. */
  shape: string;
  threads: number;
  calls: number;
  totalMs: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** Share of all kernel time in the profile. */
  share: number;
  /** Modelled FLOPs and compulsory bytes over time. */
  gflops: number;
  gbps: number;
  /** Achieved over the peak of the row's thread count: FMA peak, and main-memory read bandwidth. */
  flopsOfPeak: number;
  bwOfPeak: number;
  /** Which roof bounds it: arithmetic intensity (FLOP/byte) above the machine's ridge point is 'compute'. */
  bound: 'compute' | 'memory' | '-';
}

export interface SpanRow { name: string; calls: number; totalMs: number; meanMs: number }

export interface ProfileTable {
  rows: ProfileRow[];
  /** Sum of the kernel rows: the time native work took, as the profiler saw it. */
  kernelMs: number;
  /** Wall time since profiling started or was reset. */
  wallMs: number;
  /** Native jobs (time on the native worker thread, kernels included) and JS phases. */
  jobs: SpanRow[];
  phases: SpanRow[];
  peaks: MachinePeaks;
  droppedEvents: number;
}

interface Phase { name: string; t0: number; t1: number }

const state = {
  mode: 'off' as ProfileMode,
  phases: [] as Phase[],
  exitHooks: new Set<string>(),
  peaks: new Map<number, MachinePeaks>(),
};
const MAX_PHASES = 1 << 20;

/** Nanoseconds on the monotonic clock the native profiler uses (process.hrtime and CLOCK_MONOTONIC agree). */
export function nowNs(): number { return Number(process.hrtime.bigint()); }

export function profilingMode(): ProfileMode { return state.mode; }

/** Turns the profiler on ('aggregate': the table; 'trace': the table and events for a trace file) or off. */
export function setProfiling(mode: ProfileMode): void {
  if (!['off', 'aggregate', 'trace'].includes(mode)) throw new Error(`profiling mode must be off, aggregate or trace, got ${mode}`);
  native.profiler.setMode({ aggregate: mode !== 'off', trace: mode === 'trace' });
  state.mode = mode;
}

/** Clears the table, the trace events and the JS phases. */
export function resetProfile(): void {
  native.profiler.reset();
  state.phases = [];
}

/** Marks the start of a JS-side phase; call the returned function at its end. No-op when profiling is off. */
export function beginPhase(name: string): () => void {
  if (state.mode === 'off') return noop;
  const t0 = nowNs();
  return () => {
    if (state.phases.length < MAX_PHASES) state.phases.push({ name, t0, t1: nowNs() });
  };
}
const noop = () => {};

/** Runs fn as a named JS-side phase (rollout, scoring, optimizer, ...). */
export async function phase<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const end = beginPhase(name);
  try {
    return await fn();
  } finally {
    end();
  }
}

/** This machine's measured peaks for `threads` threads (measured once per process, ~1 s). */
export async function machinePeaks(threads: number): Promise<MachinePeaks> {
  const have = state.peaks.get(threads);
  if (have) return have;
  const p = await native.profiler.peaks({ threads }) as MachinePeaks;
  state.peaks.set(threads, p);
  return p;
}

interface NativeRow {
  name: string; op: string; shape: string; threads: number; calls: number; totalNs: number; minNs: number; maxNs: number;
  flops: number; bytes: number; category: 'kernel' | 'job' | 'async';
}

/** The profile so far: one row per (kernel, op, shape, threads), sorted by total time. */
export async function profileTable(opts: { threads?: number } = {}): Promise<ProfileTable> {
  const snap = native.profiler.snapshot();  // before the peaks are measured (the first time, ~1 s)
  return buildTable(snap, await machinePeaks(opts.threads ?? 2));
}

function buildTable(snap: { rows: NativeRow[]; wallNs: number; droppedEvents: number }, peaks: MachinePeaks): ProfileTable {
  const kernels = snap.rows.filter((r) => r.category === 'kernel');
  const kernelNs = kernels.reduce((s, r) => s + r.totalNs, 0);
  const perCore = peaks.fmaGflops / peaks.threads;
  const ridge = peaks.fmaGflops / peaks.memGbps;
  const rows = kernels.map((r): ProfileRow => {
    const gflops = r.totalNs > 0 ? r.flops / r.totalNs : 0, gbps = r.totalNs > 0 ? r.bytes / r.totalNs : 0;
    const intensity = r.bytes > 0 ? r.flops / r.bytes : r.flops > 0 ? Infinity : 0;
    return {
      kernel: r.name, op: r.op, shape: r.shape, threads: r.threads, calls: r.calls,
      totalMs: r.totalNs / 1e6, meanMs: r.totalNs / r.calls / 1e6, minMs: r.minNs / 1e6, maxMs: r.maxNs / 1e6,
      share: kernelNs > 0 ? r.totalNs / kernelNs : 0,
      gflops, gbps, flopsOfPeak: gflops / (perCore * Math.max(1, r.threads)), bwOfPeak: gbps / peaks.memGbps,
      bound: r.flops === 0 && r.bytes === 0 ? '-' : intensity > ridge ? 'compute' : 'memory',
    };
  });
  // the profiler's own peak measurements are not the user's work
  const jobs = spanRows(snap.rows.filter((r) => r.category === 'job' && !r.name.startsWith('profiler.')).map((r) => ({ name: r.name, calls: r.calls, ns: r.totalNs })));
  const phases = spanRows(state.phases.map((p) => ({ name: p.name, calls: 1, ns: p.t1 - p.t0 })));
  return { rows, kernelMs: kernelNs / 1e6, wallMs: snap.wallNs / 1e6, jobs, phases, peaks, droppedEvents: snap.droppedEvents };
}

function spanRows(items: { name: string; calls: number; ns: number }[]): SpanRow[] {
  const by = new Map<string, { calls: number; ns: number }>();
  for (const it of items) {
    const a = by.get(it.name) ?? { calls: 0, ns: 0 };
    a.calls += it.calls;
    a.ns += it.ns;
    by.set(it.name, a);
  }
  return [...by].map(([name, a]) => ({ name, calls: a.calls, totalMs: a.ns / 1e6, meanMs: a.ns / a.calls / 1e6 }))
    .sort((x, y) => y.totalMs - x.totalMs);
}

/** The table as aligned text (what `farm profile` prints). limit: rows shown, the rest summed in one line. */
export function formatProfileTable(t: ProfileTable, opts: { limit?: number } = {}): string {
  const limit = opts.limit ?? 40;
  const pct = (x: number) => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;
  const num = (x: number, d = 1) => (x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d));
  const head = ['kernel', 'op', 'shape', 'thr', 'calls', 'total ms', 'mean ms', 'share', 'GFLOP/s', '%peak', 'GB/s', '%mem', 'bound'];
  const body = t.rows.slice(0, limit).map((r) => [
    r.kernel, r.op || '-', r.shape, String(r.threads), String(r.calls), num(r.totalMs, 2), num(r.meanMs, 3), pct(r.share),
    r.gflops > 0 ? num(r.gflops) : '-', r.gflops > 0 ? pct(r.flopsOfPeak) : '-', r.gbps > 0 ? num(r.gbps) : '-',
    r.gbps > 0 ? pct(r.bwOfPeak) : '-', r.bound,
  ]);
  const rest = t.rows.slice(limit);
  if (rest.length) {
    const ms = rest.reduce((s, r) => s + r.totalMs, 0);
    body.push([`(${rest.length} more rows)`, '', '', '', String(rest.reduce((s, r) => s + r.calls, 0)), num(ms, 2), '', pct(ms / Math.max(t.kernelMs, 1e-9)), '', '', '', '', '']);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const right = new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
  const p = t.peaks;
  out.push('', `kernels ${num(t.kernelMs, 1)} ms of ${num(t.wallMs, 1)} ms profiled wall time; peaks (${p.threads} threads, ${p.isa}): ` +
    `FMA ${num(p.fmaGflops)} GFLOP/s, memory ${num(p.memGbps)} GB/s, caches ${num(p.cacheGbps)} GB/s`);
  if (t.jobs.length) out.push(`native jobs: ${t.jobs.slice(0, 8).map((j) => `${j.name} ${j.calls}x ${num(j.totalMs, 1)} ms`).join(', ')}`);
  if (t.phases.length) out.push(`JS phases: ${t.phases.slice(0, 8).map((j) => `${j.name} ${j.calls}x ${num(j.totalMs, 1)} ms`).join(', ')}`);
  if (t.droppedEvents) out.push(`(${t.droppedEvents} trace events dropped: the event buffer is full)`);
  return out.join('\n');
}

// ---- Chrome trace-event format (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU)

export interface TraceEvent {
  name: string; ph: string; ts?: number; dur?: number; pid: number; tid?: number; cat?: string; id?: string;
  args?: Record<string, unknown>;
}
export interface TraceFile { traceEvents: TraceEvent[]; displayTimeUnit: 'ms'; otherData: Record<string, unknown> }

/** Track (thread) ids of the trace: JS phases first, async jobs, then one per native thread. */
export const TRACKS = { phases: 1, async: 2, nativeBase: 10 } as const;

/** The recorded events as a Chrome trace (needs profiling mode 'trace' for native events). */
export function traceEvents(): TraceFile {
  const t = native.profiler.trace();
  const pid = process.pid;
  const n = t.t0.length as number;
  let origin = Infinity;
  for (let i = 0; i < n; i++) origin = Math.min(origin, t.t0[i]);
  for (const p of state.phases) origin = Math.min(origin, p.t0);
  if (!Number.isFinite(origin)) origin = nowNs();
  const us = (ns: number) => (ns - origin) / 1e3;
  const ev: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid, args: { name: `alpacafarm-ts (pid ${pid})` } },
    { name: 'thread_name', ph: 'M', pid, tid: TRACKS.phases, args: { name: 'JS phases' } },
    { name: 'thread_sort_index', ph: 'M', pid, tid: TRACKS.phases, args: { sort_index: 0 } },
    { name: 'thread_name', ph: 'M', pid, tid: TRACKS.async, args: { name: 'async native jobs (queued -> settled)' } },
    { name: 'thread_sort_index', ph: 'M', pid, tid: TRACKS.async, args: { sort_index: 1 } },
  ];
  const named = new Set<number>();
  for (const tr of t.tracks as { tid: number; name: string }[]) {
    named.add(tr.tid);
    ev.push({ name: 'thread_name', ph: 'M', pid, tid: TRACKS.nativeBase + tr.tid, args: { name: tr.name } });
    ev.push({ name: 'thread_sort_index', ph: 'M', pid, tid: TRACKS.nativeBase + tr.tid, args: { sort_index: 2 + tr.tid } });
  }
  for (const p of state.phases)
    ev.push({ name: p.name, ph: 'X', cat: 'phase', ts: us(p.t0), dur: (p.t1 - p.t0) / 1e3, pid, tid: TRACKS.phases });
  const S: string[] = t.strings;
  let asyncId = 0;
  for (let i = 0; i < n; i++) {
    const name = S[t.name[i]], cat = t.category[i];
    const durNs = t.t1[i] - t.t0[i];
    if (cat === 2) {  // async: queued on the JS thread -> settled
      const id = `job${++asyncId}`;
      ev.push({ name, ph: 'b', cat: 'async', id, ts: us(t.t0[i]), pid, tid: TRACKS.async });
      ev.push({ name, ph: 'e', cat: 'async', id, ts: us(t.t1[i]), pid, tid: TRACKS.async });
      continue;
    }
    const tid = TRACKS.nativeBase + t.tid[i];
    if (!named.has(t.tid[i])) {
      named.add(t.tid[i]);
      ev.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name: `native thread ${t.tid[i]}` } });
    }
    const op = t.op[i] >= 0 ? S[t.op[i]] : '';
    const args: Record<string, unknown> = { shape: S[t.shape[i]], threads: t.threads[i] };
    if (op) args.op = op;
    if (t.layer[i] >= 0) args.layer = t.layer[i];
    if (t.flops[i] > 0) { args.gflop = t.flops[i] / 1e9; args['GFLOP/s'] = durNs > 0 ? t.flops[i] / durNs : 0; }
    if (t.bytes[i] > 0) { args.mb = t.bytes[i] / 1e6; args['GB/s'] = durNs > 0 ? t.bytes[i] / durNs : 0; }
    ev.push({ name: op ? `${name} ${op}` : name, ph: 'X', cat: cat === 1 ? 'job' : 'kernel', ts: us(t.t0[i]), dur: durNs / 1e3, pid, tid, args });
  }
  return { traceEvents: ev, displayTimeUnit: 'ms', otherData: { producer: 'alpacafarm-ts', droppedEvents: t.dropped, originNs: origin } };
}

/** Writes the trace to `path` (JSON trace-event format). */
export function writeTrace(path: string): void {
  writeFileSync(path, JSON.stringify(traceEvents()));
}

/** FARM_TRACE / FARM_PROFILE: write the trace, or print the table to stderr, when the process exits. */
export function atExit(what: 'trace' | 'table', arg: string): void {
  const key = `${what}:${arg}`;
  if (state.exitHooks.has(key)) return;
  state.exitHooks.add(key);
  process.once('exit', () => {
    try {
      if (what === 'trace') {
        writeTrace(arg);
        process.stderr.write(`farm: trace written to ${arg} (open it in https://ui.perfetto.dev or chrome://tracing)\n`);
      } else {
        const threads = Number(arg) || 2;
        const peaks = state.peaks.get(threads) ?? native.profiler.peaks({ threads, sync: true }) as MachinePeaks;
        process.stderr.write(`\nfarm profile (FARM_PROFILE=1)\n${formatProfileTable(buildTable(native.profiler.snapshot(), peaks))}\n`);
      }
    } catch (e) {
      process.stderr.write(`farm: could not write the ${what} at exit: ${(e as Error).message}\n`);
    }
  });
}
