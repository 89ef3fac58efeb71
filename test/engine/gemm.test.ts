import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Reference in float64 on the same inputs.
function refGemm(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array) {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
      C[i * N + j] = s;
    }
  return C;
}
function rand(n: number, seed: number) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2 ** 32 - 0.5; }
  return a;
}
const bitsEqual = (a: Float32Array, b: Float32Array) =>
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
const firstDiff = (a: Float32Array, b: Float32Array) => a.findIndex((x, i) => !Object.is(x, b[i]));

const impls = native.buildInfo().gemmImpls as string[];
const ownImpls = impls.filter((i) => i !== 'blas');
const TRANS = [[false, false], [false, true], [true, false], [true, true]] as const;

test('build info lists the GEMM implementations and the default is one of them', () => {
  assert.ok(impls.includes('portable'), 'portable is always built');
  const info = native.buildInfo();
  assert.ok(impls.includes(info.gemm), `default ${info.gemm} not in ${impls}`);
});

// Shapes: 1s, sizes off every tile (4x8, 6x16, 14x32), K over one cache block (256), N over several panels,
// the attention blocks (64 x 256 x 64) and a decode-like skinny M.
const shapes = [[1, 1, 1], [1, 37, 5], [29, 1, 3], [3, 5, 7], [6, 16, 1], [14, 32, 9], [15, 33, 17], [17, 33, 65],
  [64, 48, 256], [64, 256, 64], [130, 67, 31], [23, 71, 513], [256, 683, 256], [9, 4096, 256], [2, 700, 600]];
const refCache = new Map<string, Float64Array>();
for (const impl of impls) {
  for (const [ta, tb] of TRANS) {
    test(`sgemm ${impl} transA=${ta} transB=${tb} matches a float64 reference`, () => {
      native.setGemmImpl(impl);
      try {
        for (const [M, N, K] of shapes) {
          const A = rand(M * K, M + 3 * K), B = rand(K * N, N + 7 * K);
          const key = `${ta} ${tb} ${M} ${N} ${K}`;
          if (!refCache.has(key)) refCache.set(key, refGemm(ta, tb, M, N, K, A, B));
          const ref = refCache.get(key)!;
          for (const beta of [0, 1]) {
            for (const threads of [1, 2]) {
              const C = beta ? rand(M * N, 99) : new Float32Array(M * N).fill(NaN);
              const C0 = Float32Array.from(C);
              native.sgemm({ transA: ta, transB: tb, M, N, K, A, B, C, beta, threads });
              for (let i = 0; i < M * N; i++) {
                const want = ref[i] + (beta ? C0[i] : 0);
                if (!(Math.abs(C[i] - want) <= 1e-4 * Math.sqrt(K) + 1e-5))
                  assert.unreachable(`${impl} M=${M} N=${N} K=${K} beta=${beta} threads=${threads} at ${i}: ${C[i]} vs ${want}`);
              }
            }
          }
        }
      } finally {
        native.setGemmImpl('auto');
      }
    });
  }
}

// Shapes big enough to run on several threads: row chunks (tall M), column groups (short M), several k blocks.
// (The GEMM gives each thread at least 2M multiply-adds, so these are sized to use 2 or 3.)
const parallelShapes = [[300, 257, 90], [7, 2000, 600], [2, 3000, 800], [650, 40, 513], [1031, 129, 50]];
for (const impl of ownImpls) {
  test(`sgemm ${impl}: bit-identical for 1, 2 and 3 threads and run to run`, () => {
    native.setGemmImpl(impl);
    try {
      for (const [ta, tb] of TRANS) {
        for (const [M, N, K] of parallelShapes) {
          const A = rand(M * K, 5 + M), B = rand(K * N, 11 + N), init = rand(M * N, 3);
          for (const beta of [0, 1]) {
            let first: Float32Array | undefined;
            for (const threads of [1, 2, 3, 2]) {
              const C = Float32Array.from(init);
              native.sgemm({ transA: ta, transB: tb, M, N, K, A, B, C, beta, threads });
              if (!first) first = C;
              else if (!bitsEqual(first, C))
                assert.unreachable(`${impl} ta=${ta} tb=${tb} ${M}x${N}x${K} beta=${beta}: threads=${threads} differs at ${firstDiff(first, C)}`);
            }
          }
        }
      }
    } finally {
      native.setGemmImpl('auto');
    }
  });
}

test('sgemm beta=0 ignores NaN and Inf in C; beta=1 propagates them', () => {
  for (const impl of impls) {
    native.setGemmImpl(impl);
    const M = 7, N = 19, K = 5, A = rand(M * K, 1), B = rand(K * N, 2);
    const C = new Float32Array(M * N).fill(Infinity);
    C[3] = NaN;
    native.sgemm({ M, N, K, A, B, C, beta: 0 });
    assert.ok(C.every(Number.isFinite), `${impl}: beta=0 left non-finite values`);
    C[3] = NaN;
    native.sgemm({ M, N, K, A, B, C, beta: 1 });
    assert.ok(Number.isNaN(C[3]) && C.filter(Number.isNaN).length === 1, `${impl}: beta=1 must keep exactly the one NaN`);
  }
  native.setGemmImpl('auto');
});

// Attention runs its GEMMs (with row strides wider than a head) from inside an OpenMP parallel region over
// heads: those nested calls must run serially and still be right, for every implementation.
function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, B: number, T: number, NH: number, HD: number) {
  const out = new Float64Array(B * T * NH * HD);
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let t = 0; t < T; t++) {
    const sc: number[] = [];
    for (let s = 0; s <= t; s++) {
      let d = 0;
      for (let i = 0; i < HD; i++) d += q[((b * T + t) * NH + h) * HD + i] * k[((b * T + s) * NH + h) * HD + i];
      sc.push(d / Math.sqrt(HD));
    }
    const m = Math.max(...sc), e = sc.map((z) => Math.exp(z - m)), z = e.reduce((a, c) => a + c, 0);
    for (let s = 0; s <= t; s++)
      for (let i = 0; i < HD; i++) out[((b * T + t) * NH + h) * HD + i] += (e[s] / z) * v[((b * T + s) * NH + h) * HD + i];
  }
  return out;
}
test('sgemm nested in an OpenMP region (attention over heads) is correct and thread-count independent', () => {
  if (typeof native.kernels?.attention !== 'function') {
    console.log('SKIP nested GEMM test: this build has no kernels.attention binding');
    return;
  }
  const B = 2, T = 70, NH = 3, HD = 20, n = B * T * NH * HD;
  const q = rand(n, 1), k = rand(n, 2), v = rand(n, 3);
  const ref = attentionRef(q, k, v, B, T, NH, HD);
  for (const impl of impls) {
    native.setGemmImpl(impl);
    let first: Float32Array | undefined;
    for (const threads of [2, 1]) {
      // set the calling thread's OpenMP team size through a trivial GEMM
      native.sgemm({ M: 1, N: 1, K: 1, A: new Float32Array(1), B: new Float32Array(1), C: new Float32Array(1), threads });
      const out = new Float32Array(n), att = new Float32Array(B * NH * T * T);
      native.kernels.attention({ B, T, NH, NKV: NH, HD, q, k, v, att, out });
      for (let i = 0; i < n; i++)
        if (!(Math.abs(out[i] - ref[i]) <= 1e-5)) assert.unreachable(`${impl} threads=${threads} at ${i}: ${out[i]} vs ${ref[i]}`);
      if (impl === 'blas') continue;
      if (!first) first = out;
      else assert.ok(bitsEqual(first, out), `${impl}: attention output depends on the thread count`);
    }
  }
  native.setGemmImpl('auto');
});

test('FARM_GEMM picks the start-up implementation; an unknown name warns and falls back to auto', () => {
  const auto = (() => { native.setGemmImpl('auto'); return native.buildInfo().gemm as string; })();
  const probe = (value: string) => spawnSync(process.execPath, ['--import', 'tsx', '-e',
    "import { native } from './ts/engine/native.ts'; console.log(native.buildInfo().gemm)"],
  { cwd: root, env: { ...process.env, FARM_GEMM: value }, encoding: 'utf8' });
  const r = probe('portable');
  assert.is(r.stdout.trim(), 'portable', r.stderr);
  const bad = probe('no-such-gemm');
  assert.is(bad.stdout.trim(), auto, bad.stderr);
  assert.match(bad.stderr, /FARM_GEMM=no-such-gemm is not an available GEMM implementation/);
});

test('sgemm rejects wrong sizes and types with clear errors', () => {
  assert.throws(() => native.sgemm({ M: 2, N: 2, K: 2, A: new Float32Array(3), B: new Float32Array(4), C: new Float32Array(4) }), /A must have 4 elements/);
  assert.throws(() => native.sgemm({ M: 2, N: 2, K: 2, A: new Float64Array(4), B: new Float32Array(4), C: new Float32Array(4) }), /A must be a Float32Array/);
  assert.throws(() => native.sgemm({ M: 0, N: 2, K: 2 }), /M must be in/);
  assert.throws(() => native.sgemm({ M: 1, N: 1, K: 1, A: new Float32Array(1), B: new Float32Array(1), C: new Float32Array(1), beta: 0.5 }), /beta must be 0 or 1/);
  assert.throws(() => native.setGemmImpl('cuda-magic'), /unknown GEMM implementation/);
});

test.run();
