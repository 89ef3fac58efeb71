import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';

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

const shapes = [[1, 1, 1], [3, 5, 7], [17, 33, 65], [64, 48, 256], [130, 67, 31], [256, 683, 256], [9, 4096, 256]];
for (const impl of native.buildInfo().gemmImpls as string[]) {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    test(`sgemm ${impl} transA=${ta} transB=${tb} matches a float64 reference`, () => {
      native.setGemmImpl(impl);
      for (const [M, N, K] of shapes) {
        const A = rand(M * K, M + 3 * K), B = rand(K * N, N + 7 * K);
        const ref = refGemm(ta, tb, M, N, K, A, B);
        for (const beta of [0, 1]) {
          const C = beta ? rand(M * N, 99) : new Float32Array(M * N).fill(NaN);
          const C0 = Float32Array.from(C);
          native.sgemm({ transA: ta, transB: tb, M, N, K, A, B, C, beta, threads: 2 });
          for (let i = 0; i < M * N; i++) {
            const want = ref[i] + (beta ? C0[i] : 0);
            if (Math.abs(C[i] - want) > 1e-4 * Math.sqrt(K) + 1e-5)
              assert.unreachable(`${impl} M=${M} N=${N} K=${K} beta=${beta} at ${i}: ${C[i]} vs ${want}`);
          }
        }
      }
      native.setGemmImpl('auto');
    });
  }
}

test('sgemm rejects wrong sizes and types with clear errors', () => {
  assert.throws(() => native.sgemm({ M: 2, N: 2, K: 2, A: new Float32Array(3), B: new Float32Array(4), C: new Float32Array(4) }), /A must have 4 elements/);
  assert.throws(() => native.sgemm({ M: 2, N: 2, K: 2, A: new Float64Array(4), B: new Float32Array(4), C: new Float32Array(4) }), /A must be a Float32Array/);
  assert.throws(() => native.sgemm({ M: 0, N: 2, K: 2 }), /M must be in/);
  assert.throws(() => native.setGemmImpl('cuda-magic'), /unknown GEMM implementation/);
});

test.run();
