// GFLOP/s of each SGEMM implementation on the training-step shapes (hidden 256, intermediate 683, vocab 4096,
// B*T = 2048 rows) and two attention blocks, 1 and 2 threads, beside the system OpenBLAS ("blas", when the
// addon was built with one) measured in the same run, calls interleaved.
// value: median wall-clock GFLOP/s (best: the fastest sample). gflop_per_cpu_second: the same work over the
// process's CPU time, which stays meaningful when other processes share the cores (wall-clock 2-thread
// figures then mostly measure the scheduler); load_average says how busy the machine was.
// A second reference, numpy's own BLAS (bench/reference/gemm_numpy.py; a newer OpenBLAS in the pip wheel), runs
// in a child process when python3 has numpy (--no-numpy skips it); its lines have impl "numpy".
// Usage: npm run bench -- gemm [--quick] [--reps=N] [--impls=avx2,avx512,blas] [--shapes=name,...] [--no-numpy]
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { native } from '../ts/engine/native.ts';
import { cudaBench } from './_cuda.ts';

if (await cudaBench('gemm')) process.exit(0);  // --backend=cuda: the GPU variant (bench/_cuda.ts)

interface Shape { name: string; ta: boolean; tb: boolean; M: number; N: number; K: number }
// Forward linear layers use x · W^T (W stored [out, in]); backward: dX = dY · W, dW += dY^T · X.
const SHAPES: Shape[] = [
  { name: 'fwd qkv', ta: false, tb: true, M: 2048, N: 768, K: 256 },  // q, k, v fused
  { name: 'fwd o', ta: false, tb: true, M: 2048, N: 256, K: 256 },
  { name: 'fwd gate/up', ta: false, tb: true, M: 2048, N: 683, K: 256 },
  { name: 'fwd down', ta: false, tb: true, M: 2048, N: 256, K: 683 },
  { name: 'fwd lm head', ta: false, tb: true, M: 2048, N: 4096, K: 256 },
  { name: 'bwd lm dX', ta: false, tb: false, M: 2048, N: 256, K: 4096 },
  { name: 'bwd down dX', ta: false, tb: false, M: 2048, N: 683, K: 256 },
  { name: 'bwd gate dX', ta: false, tb: false, M: 2048, N: 256, K: 683 },
  { name: 'bwd lm dW', ta: true, tb: false, M: 4096, N: 256, K: 2048 },
  { name: 'bwd down dW', ta: true, tb: false, M: 256, N: 683, K: 2048 },
  { name: 'bwd gate dW', ta: true, tb: false, M: 683, N: 256, K: 2048 },
  { name: 'bwd qkv dW', ta: true, tb: false, M: 768, N: 256, K: 2048 },
  { name: 'attn scores', ta: false, tb: true, M: 64, N: 256, K: 64 },
  { name: 'attn PV', ta: false, tb: false, M: 64, N: 64, K: 256 },
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
// Options take "--name=value" (what `npm run bench -- gemm` passes through intact) or "--name value".
const opt = (name: string) => {
  const eq = args.find((a) => a.startsWith(`${name}=`));
  if (eq) return eq.slice(name.length + 1);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const reps = Number(opt('--reps') ?? (quick ? 3 : 7));
const info = native.buildInfo() as { gemmImpls: string[] };
const wanted = opt('--impls')?.split(',') ?? info.gemmImpls.filter((i) => i !== 'portable' || !quick);
const impls = wanted.filter((i) => info.gemmImpls.includes(i));
const shapeFilter = opt('--shapes')?.split(',');
const shapes = SHAPES.filter((s) => !shapeFilter || shapeFilter.some((f) => s.name.includes(f)))
  .filter((s) => !quick || ['fwd qkv', 'fwd lm head', 'bwd lm dX', 'bwd lm dW', 'attn scores'].includes(s.name));
const threadCounts = quick ? [2] : [1, 2];

function rand(n: number, seed: number) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2 ** 32 - 0.5; }
  return a;
}
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

interface NumpyFigure { shape: string; threads: number; gflops: number; best: number; gflop_per_cpu_second: number; blas: string }
// numpy's BLAS on every shape for one thread count (its thread pool is sized when the process starts).
function runNumpy(threads: number): Map<string, NumpyFigure> {
  const out = new Map<string, NumpyFigure>();
  if (args.includes('--no-numpy')) return out;
  const script = new URL('./reference/gemm_numpy.py', import.meta.url).pathname;
  const input = JSON.stringify({ threads, reps, shapes: shapes.map((s) => [s.name, s.ta, s.tb, s.M, s.N, s.K]) });
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const r = spawnSync('python3', [script, input], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`gemm: numpy reference skipped (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
    return out;
  }
  for (const line of r.stdout.trim().split('\n')) {
    const f = JSON.parse(line) as NumpyFigure;
    out.set(f.shape, f);
  }
  return out;
}
const numpy = new Map(threadCounts.map((t) => [t, runNumpy(t)]));

for (const sh of shapes) {
  const { M, N, K } = sh;
  const A = rand(M * K, 1), B = rand(K * N, 2), C = new Float32Array(M * N);
  const flop = 2 * M * N * K;
  // Small shapes are timed over a batch of calls so that one sample lasts about 20 ms.
  const inner = Math.max(1, Math.round(2e9 / flop / 50));
  for (const threads of threadCounts) {
    const call = (impl: string) => {
      native.setGemmImpl(impl);
      const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      for (let i = 0; i < inner; i++) native.sgemm({ transA: sh.ta, transB: sh.tb, M, N, K, A, B, C, beta: 0, threads });
      const wall = Number(process.hrtime.bigint() - t0) / 1e9 / inner, c = process.cpuUsage(c0);
      return { wall, cpu: (c.user + c.system) / 1e6 / inner };
    };
    const times = new Map<string, number[]>(impls.map((i) => [i, []]));
    const cpuTimes = new Map<string, number[]>(impls.map((i) => [i, []]));
    for (const impl of impls) call(impl);  // warm-up: buffers, thread pools, caches
    // Interleave the implementations so that load from other processes hits them alike.
    const load = loadavg()[0];
    for (let r = 0; r < reps; r++)
      for (const impl of impls) {
        const t = call(impl);
        times.get(impl)!.push(t.wall);
        cpuTimes.get(impl)!.push(t.cpu);
      }
    const gflops = new Map(impls.map((i) => [i, flop / median(times.get(i)!) / 1e9]));
    const blas = gflops.get('blas');
    for (const impl of impls) {
      const value = gflops.get(impl)!;
      const line: Record<string, unknown> = {
        bench: 'gemm',
        figure: `sgemm ${impl} ${sh.name} ${M}x${N}x${K}${sh.ta ? ' transA' : ''}${sh.tb ? ' transB' : ''} ${threads}t`,
        value: Number(value.toFixed(2)),
        unit: 'GFLOP/s',
        config: { impl, shape: sh.name, M, N, K, transA: sh.ta, transB: sh.tb, threads, reps, callsPerSample: inner,
          load_average: Number(load.toFixed(2)) },
        reference: blas !== undefined
          ? { name: 'OpenBLAS (system, OpenMP build)', value: Number(blas.toFixed(2)), source: 'measured in the same run, interleaved' }
          : { name: 'fp32 FMA peak', value: 117 * threads, source: 'DESIGN.md section 7 (234 GFLOP/s on 2 cores)' },
      };
      if (blas !== undefined) line.ratio_vs_openblas = Number((value / blas).toFixed(3));
      line.gflop_per_cpu_second = Number((flop / median(cpuTimes.get(impl)!) / 1e9).toFixed(2));
      line.best = Number((flop / Math.min(...times.get(impl)!) / 1e9).toFixed(2));
      console.log(JSON.stringify(line));
    }
    const np = numpy.get(threads)?.get(sh.name);
    if (np) {
      console.log(JSON.stringify({
        bench: 'gemm',
        figure: `sgemm numpy ${sh.name} ${M}x${N}x${K}${sh.ta ? ' transA' : ''}${sh.tb ? ' transB' : ''} ${threads}t`,
        value: Number(np.gflops.toFixed(2)),
        unit: 'GFLOP/s',
        config: { impl: 'numpy', blas: np.blas, shape: sh.name, M, N, K, transA: sh.ta, transB: sh.tb, threads, reps,
          load_average: Number(load.toFixed(2)) },
        reference: blas !== undefined
          ? { name: 'OpenBLAS (system, OpenMP build)', value: Number(blas.toFixed(2)), source: 'measured in the same run (other process, not interleaved)' }
          : { name: 'fp32 FMA peak', value: 117 * threads, source: 'DESIGN.md section 7 (234 GFLOP/s on 2 cores)' },
        ...(blas !== undefined ? { ratio_vs_openblas: Number((np.gflops / blas).toFixed(3)) } : {}),
        gflop_per_cpu_second: Number(np.gflop_per_cpu_second.toFixed(2)),
        best: Number(np.best.toFixed(2)),
      }));
    }
  }
}
native.setGemmImpl('auto');
