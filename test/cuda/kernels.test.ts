// Every CUDA kernel of the table against the CPU kernel (or a float64 reference) on random inputs, odd sizes
// included: the same argument objects go to native.kernels (CPU) and native.cudaKernels (device).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';
import { close, copy, cudaTest, equal, rand, randInt, size } from './helpers.ts';

const CPU = native.kernels, GPU = native.cudaKernels;

// ---- GEMM: both precisions against float64, with an error bound from sum_k |a b| ----
function gemmCase(ta: boolean, tb: boolean, M: number, N: number, K: number, beta: number, precision: 'tf32' | 'fp32', tile?: number) {
  const A = rand(M * K, M * 7 + K), B = rand(K * N, N * 13 + K + 1);
  const C0 = beta ? rand(M * N, 99) : new Float32Array(M * N).fill(NaN);  // beta 0 must ignore garbage
  const C = copy(C0);
  GPU.gemm({ transA: ta, transB: tb, M, N, K, A, B, C, beta, precision, tile });
  const a = (i: number, k: number) => (ta ? A[k * M + i] : A[i * K + k]);
  const b = (k: number, j: number) => (tb ? B[j * K + k] : B[k * N + j]);
  // TF32 rounds both inputs to 10 explicit mantissa bits (relative error 2^-11 each); fp32 accumulates K terms.
  const unit = precision === 'tf32' ? 2 ** -10 + K * 2 ** -24 : (K + 2) * 2 ** -24;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = beta ? C0[i * N + j] : 0, mag = beta ? Math.abs(C0[i * N + j]) : 0;
      for (let k = 0; k < K; k++) { const p = a(i, k) * b(k, j); s += p; mag += Math.abs(p); }
      const got = C[i * N + j];
      if (!(Math.abs(got - s) <= 1.5 * unit * mag + 1e-30))
        assert.unreachable(`gemm ${precision} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}x${N}x${K} beta ${beta}${tile ? ` tile ${tile}` : ''}: ` +
          `C[${i},${j}] = ${got}, reference ${s} (bound ${1.5 * unit * mag})`);
    }
}

cudaTest('gemm: TF32 (tensor cores) and exact fp32 against float64, every transpose, odd sizes, beta 0 and 1', () => {
  for (const precision of ['fp32', 'tf32'] as const)
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      gemmCase(ta, tb, 37, 45, 29, 0, precision);
      gemmCase(ta, tb, 19, 70, 33, 1, precision);
    }
});

cudaTest('gemm: both TF32 tile shapes, several k-tiles, and the few-rows path (M <= 8, B transposed)', () => {
  const big = size(300, 130);
  for (const tile of [64, 128]) {
    gemmCase(false, true, big, big - 21, 75, 0, 'tf32', tile);
    gemmCase(true, false, 133, 61, 47, 1, 'tf32', tile);
  }
  for (const M of [1, 3, 8]) {
    for (const precision of ['fp32', 'tf32'] as const) {
      gemmCase(false, true, M, 77, 301, 0, precision);
      gemmCase(false, true, M, 40, 64, 1, precision);
    }
  }
  gemmCase(false, false, 5, 33, 17, 0, 'fp32');  // few rows, B not transposed: the tiled kernel
});

cudaTest('gemm: K = 0 overwrites with zeros (beta 0) and leaves C (beta 1); argument errors are Errors', () => {
  const C = new Float32Array(6).fill(3);
  assert.throws(() => GPU.gemm({ M: 2, N: 3, K: 0, A: new Float32Array(0), B: new Float32Array(0), C, beta: 0 }), /K must be in/);
  assert.throws(() => GPU.gemm({ M: 2, N: 3, K: 1, A: new Float32Array(2), B: new Float32Array(3), C, beta: 0.5 }), /beta must be 0 or 1/);
  assert.throws(() => GPU.gemm({ M: 2, N: 3, K: 1, A: new Float32Array(1), B: new Float32Array(3), C }), /A must have 2 elements/);
  assert.throws(() => GPU.gemm({ M: 2, N: 3, K: 1, A: new Float32Array(2), B: new Float32Array(3), C, precision: 'fp16' }), /precision/);
});

// ---- the rest of the table against the CPU kernels ----

cudaTest('embedding: forward gathers exactly; both backward kernels sum repeated tokens in the CPU order (same bits)', () => {
  for (const [BT, C, V] of [[1, 1, 1], [13, 37, 5], [size(300, 90), 130, 17]]) {
    const tokens = randInt(BT, BT + C, V), wte = rand(V * C, 3);
    const o1 = new Float32Array(BT * C), o2 = new Float32Array(BT * C).fill(NaN);
    CPU.embedding({ BT, C, V, tokens, wte, out: o1 });
    GPU.embedding({ BT, C, V, tokens, wte, out: o2 });
    equal(o2, o1, `embedding forward ${BT}x${C}`);
    const dout = rand(BT * C, 5), base = rand(V * C, 6);
    const d1 = copy(base), d2 = copy(base), d3 = copy(base);
    CPU.embedding({ BT, C, V, tokens, dout, dwte: d1, backward: true });
    GPU.embedding({ BT, C, V, tokens, dout, dwte: d2, backward: true });
    GPU.embedding({ BT, C, V, tokens, dout, dwte: d3, backward: true, sorted: true });
    equal(d2, d1, `embedding backward ${BT}x${C}`);
    equal(d3, d1, `embedding backward (sorted) ${BT}x${C}`);
  }
});

cudaTest('rmsnorm: forward and backward (overwrite and accumulate) match the CPU kernel', () => {
  for (const [BT, C] of [[1, 1], [5, 37], [size(130, 70), 300], [3, 1000]]) {
    const x = rand(BT * C, BT + C, 2), weight = rand(C, 7, 1.5), eps = 1e-5;
    const o1 = new Float32Array(BT * C), r1 = new Float32Array(BT), o2 = new Float32Array(BT * C), r2 = new Float32Array(BT);
    CPU.rmsnorm({ BT, C, x, weight, out: o1, rstd: r1, eps });
    GPU.rmsnorm({ BT, C, x, weight, out: o2, rstd: r2, eps });
    close(o2, o1, 1e-6, 1e-5, `rmsnorm out ${BT}x${C}`);
    close(r2, r1, 0, 1e-5, `rmsnorm rstd ${BT}x${C}`);
    const dout = rand(BT * C, 11);
    for (const accumulate of [false, true]) {
      const dx0 = rand(BT * C, 12), dw0 = rand(C, 13);
      const dx1 = copy(dx0), dw1 = copy(dw0), dx2 = copy(dx0), dw2 = copy(dw0);
      CPU.rmsnorm({ BT, C, x, weight, rstd: r1, dout, dx: dx1, dweight: dw1, backward: true, accumulate });
      GPU.rmsnorm({ BT, C, x, weight, rstd: r1, dout, dx: dx2, dweight: dw2, backward: true, accumulate });
      close(dx2, dx1, 1e-5, 1e-4, `rmsnorm dx ${BT}x${C} accumulate ${accumulate}`);
      close(dw2, dw1, 1e-5, 1e-4, `rmsnorm dweight ${BT}x${C}`);
    }
  }
});

function ropeTables(T: number, HD: number, theta = 10000) {
  const half = HD / 2, cos = new Float32Array(T * half), sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < half; i++) {
      const a = t * Math.fround(1 / Math.pow(theta, (2 * i) / HD));
      cos[t * half + i] = Math.cos(a); sin[t * half + i] = Math.sin(a);
    }
  return { cos, sin };
}

cudaTest('rope: rotation and its inverse match the CPU kernel', () => {
  for (const [B, T, H, HD] of [[1, 1, 1, 2], [2, 9, 3, 6], [1, 33, 5, 66]]) {
    const { cos, sin } = ropeTables(T, HD);
    for (const inverse of [false, true]) {
      const x = rand(B * T * H * HD, T + HD), x1 = copy(x), x2 = copy(x);
      CPU.rope({ B, T, H, HD, x: x1, cos, sin, inverse });
      GPU.rope({ B, T, H, HD, x: x2, cos, sin, inverse });
      close(x2, x1, 1e-6, 1e-5, `rope ${B}x${T}x${H}x${HD} inverse ${inverse}`);
    }
  }
});

cudaTest('attention: fused forward and backward (grouped KV, tile edges, T = 1) match the CPU kernel', () => {
  const shapes: [number, number, number, number, number][] = [
    [1, 1, 2, 1, 4], [2, 19, 4, 2, 10], [1, size(70, 40), 3, 1, 64], [1, size(65, 33), 2, 2, 128], [2, 33, 6, 3, 34],
  ];
  for (const [B, T, NH, NKV, HD] of shapes) {
    const q = rand(B * T * NH * HD, T + 1), k = rand(B * T * NKV * HD, T + 2), v = rand(B * T * NKV * HD, T + 3);
    const o1 = new Float32Array(B * T * NH * HD), a1 = new Float32Array(B * NH * T * T);
    const o2 = new Float32Array(B * T * NH * HD).fill(NaN), a2 = new Float32Array(GPU.attentionSavedFloats({ B, T, NH })).fill(NaN);
    CPU.attention({ B, T, NH, NKV, HD, q, k, v, att: a1, out: o1 });
    GPU.attention({ B, T, NH, NKV, HD, q, k, v, att: a2, out: o2 });
    const tag = `attention B${B} T${T} NH${NH} NKV${NKV} HD${HD}`;
    close(o2, o1, 2e-6, 1e-4, `${tag} out`);
    const dout = rand(B * T * NH * HD, T + 4);
    const dq1 = new Float32Array(q.length), dk1 = new Float32Array(k.length), dv1 = new Float32Array(v.length);
    const dq2 = new Float32Array(q.length).fill(NaN), dk2 = new Float32Array(k.length).fill(NaN), dv2 = new Float32Array(v.length).fill(NaN);
    CPU.attention({ B, T, NH, NKV, HD, q, k, v, att: a1, dout, dq: dq1, dk: dk1, dv: dv1, backward: true });
    GPU.attention({ B, T, NH, NKV, HD, q, k, v, att: a2, dout, dq: dq2, dk: dk2, dv: dv2, backward: true });
    close(dq2, dq1, 2e-5, 1e-3, `${tag} dq`);
    close(dk2, dk1, 2e-5, 1e-3, `${tag} dk`);
    close(dv2, dv1, 2e-5, 1e-3, `${tag} dv`);
  }
});

cudaTest('swiglu: forward and backward match the CPU kernel', () => {
  for (const n of [1, 31, size(10001, 1001)]) {
    const gate = rand(n, n, 6), up = rand(n, n + 1, 2);
    const h1 = new Float32Array(n), h2 = new Float32Array(n);
    CPU.swiglu({ n, gate, up, h: h1 });
    GPU.swiglu({ n, gate, up, h: h2 });
    close(h2, h1, 1e-6, 1e-5, `swiglu ${n}`);
    const dh = rand(n, n + 2);
    const g1 = new Float32Array(n), u1 = new Float32Array(n), g2 = new Float32Array(n), u2 = new Float32Array(n);
    CPU.swiglu({ n, gate, up, dh, dgate: g1, dup: u1, backward: true });
    GPU.swiglu({ n, gate, up, dh, dgate: g2, dup: u2, backward: true });
    close(g2, g1, 1e-6, 1e-5, `swiglu dgate ${n}`);
    close(u2, u1, 1e-6, 1e-5, `swiglu dup ${n}`);
  }
});

cudaTest('logsoftmax: log-probs, entropy and log-sum-exp; backward from dlogp, dentropy or both (ignored targets included)', () => {
  for (const [BT, V] of [[1, 1], [6, 7], [size(20, 9), 1001], [3, size(50000, 5000)]]) {
    const logits = rand(BT * V, BT + V, 8);
    const targets = randInt(BT, V + 1, V);
    targets[0] = -1;
    const l1 = { lp: new Float32Array(BT), ent: new Float32Array(BT), lse: new Float32Array(BT) };
    const l2 = { lp: new Float32Array(BT).fill(NaN), ent: new Float32Array(BT), lse: new Float32Array(BT) };
    CPU.logsoftmax({ BT, V, logits, targets, logp: l1.lp, entropy: l1.ent, lse: l1.lse });
    GPU.logsoftmax({ BT, V, logits, targets, logp: l2.lp, entropy: l2.ent, lse: l2.lse });
    const tag = `logsoftmax ${BT}x${V}`;
    close(l2.lp, l1.lp, 1e-5, 1e-5, `${tag} logp`);
    close(l2.ent, l1.ent, 1e-4, 1e-4, `${tag} entropy`);
    close(l2.lse, l1.lse, 1e-5, 1e-5, `${tag} lse`);
    const dl = rand(BT, 21), de = rand(BT, 22);
    for (const g of [{ dlogp: dl }, { dentropy: de }, { dlogp: dl, dentropy: de }]) {
      const z1 = copy(logits), z2 = copy(logits);
      CPU.logsoftmax({ BT, V, logits: z1, targets, lse: l1.lse, entropy: l1.ent, backward: true, ...g });
      GPU.logsoftmax({ BT, V, logits: z2, targets, lse: l1.lse, entropy: l1.ent, backward: true, ...g });
      close(z2, z1, 1e-6, 1e-4, `${tag} backward ${Object.keys(g).join('+')}`);
    }
  }
});

// ---- the sampler: the device version against farm::sample_logits on the same logits and uniforms ----

function logitsWithTies(R: number, V: number, seed: number): Float32Array {
  const z = rand(R * V, seed, 4);
  for (let i = 0; i < z.length; i++) {
    if (i % 3 === 0) z[i] = Math.round(z[i] * 2) / 2;  // many exact ties
    if (i % 17 === 5) z[i] = -Infinity;                 // impossible tokens
  }
  return z;
}

cudaTest('sample: greedy, temperature, top-k, top-p and both, with ties and -inf logits, pick the CPU sampler\'s tokens', () => {
  const R = size(64, 12);
  const u = new Float64Array(R);
  const ur = rand(R, 5);
  for (let r = 0; r < R; r++) u[r] = (ur[r] + 1) / 2;
  const opts = [
    { temperature: 0 }, { temperature: 1 }, { temperature: 0.7 }, { temperature: 1, topK: 1 }, { temperature: 1.3, topK: 5 },
    { temperature: 1, topP: 0.9 }, { temperature: 0.5, topP: 0.3 }, { temperature: 1, topK: 8, topP: 0.6 }, { temperature: 2, topP: 0.999 },
  ];
  let mismatches = 0, total = 0;
  for (const V of [1, 7, size(1000, 300)]) {
    const logits = logitsWithTies(R, V, V);
    for (let r = 0; r < R; r++) logits[r * V] = 1;  // every row has a finite logit
    for (const o of opts) {
      if ((o as any).topK >= V) continue;
      const a = GPU.sample({ logits, V, u, ...o }), b = GPU.sample({ logits, V, u, ...o, cpu: true });
      for (let r = 0; r < R; r++) {
        total++;
        if (a.token[r] !== b.token[r]) { mismatches++; continue; }
        const tag = `sample V${V} ${JSON.stringify(o)} row ${r}`;
        close([a.logprob[r]], [b.logprob[r]], 1e-5, 1e-5, `${tag} logprob`);
        close([a.scaledLogprob[r]], [b.scaledLogprob[r]], 1e-5, 1e-5, `${tag} scaledLogprob`);
        close([a.sampleLogprob[r]], [b.sampleLogprob[r]], 1e-5, 1e-5, `${tag} sampleLogprob`);
      }
    }
  }
  // A different summation order may move a draw that lands within ~1e-7 of a boundary; no more than that.
  assert.ok(mismatches <= Math.ceil(total / 500), `${mismatches} of ${total} sampled tokens differ from the CPU sampler`);
  // non-finite logits give token -1 (the session turns it into an Error)
  const bad = GPU.sample({ logits: Float32Array.from([0, NaN, 1]), V: 3, u: Float64Array.from([0.5]) });
  assert.is(bad.token[0], -1);
});

cudaTest('sample: draws follow the sampled distribution (top-p 0.8 over 5 tokens, 400 uniforms)', () => {
  const V = 5, R = size(400, 100);
  const row = Float32Array.from([2, 1, 1, 0, -1]);
  const logits = new Float32Array(R * V);
  const u = new Float64Array(R);
  for (let r = 0; r < R; r++) { logits.set(row, r * V); u[r] = (r + 0.5) / R; }
  const a = GPU.sample({ logits, V, u, temperature: 1, topP: 0.8 });
  // softmax: .574 .211 .211 .078 .029; nucleus keeps 0, 1, 2 (ties by id) and renormalizes
  const p = [Math.exp(2), Math.exp(1), Math.exp(1)], s = p[0] + p[1] + p[2];
  const counts = [0, 0, 0, 0, 0];
  for (let r = 0; r < R; r++) counts[a.token[r]]++;
  assert.is(counts[3] + counts[4], 0, 'tokens outside the nucleus were drawn');
  for (let t = 0; t < 3; t++) assert.ok(Math.abs(counts[t] / R - p[t] / s) <= 1.5 / R, `token ${t}: ${counts[t]} of ${R}`);
});

test.run();
