// Each CPU kernel: forward against a plain float64 reference, backward against finite differences.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';
import { dot64, fdRelativeError, randomArray, sampleIndices } from '../helpers/numeric.ts';

const K = native.kernels;
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  assert.ok(worst < tol, `${what}: max relative error ${worst} >= ${tol}`);
};
const TOL_FD = 2e-3;

test('embedding: gathers rows; backward scatters into the used rows (repeated tokens accumulate)', () => {
  const BT = 6, C = 5, V = 4;
  const tokens = Int32Array.from([0, 3, 3, 1, 0, 3]);
  const wte = randomArray(V * C, 1), out = new Float32Array(BT * C);
  K.embedding({ BT, C, V, tokens, wte, out });
  for (let i = 0; i < BT; i++) for (let c = 0; c < C; c++) assert.is(out[i * C + c], wte[tokens[i] * C + c]);
  const w = randomArray(BT * C, 2), dwte = new Float32Array(V * C);
  K.embedding({ BT, C, V, tokens, dout: w, dwte, backward: true });
  const loss = () => { K.embedding({ BT, C, V, tokens, wte, out }); return dot64(out, w); };
  const r = fdRelativeError(wte, sampleIndices(V * C, 20, 3), dwte, loss);
  assert.ok(r.rel < TOL_FD, `rel ${r.rel}`);
  assert.throws(() => K.embedding({ BT, C, V, tokens: Int32Array.from([0, 4, 0, 0, 0, 0]), wte, out }), /tokens\[1\] out of range/);
});

test('rmsnorm: matches x * rsqrt(mean(x^2) + eps) * w; gradients of x and weight', () => {
  const BT = 7, C = 24, eps = 1e-5;
  const x = randomArray(BT * C, 4, 2), weight = randomArray(C, 5, 1.5);
  const out = new Float32Array(BT * C), rstd = new Float32Array(BT);
  K.rmsnorm({ BT, C, x, weight, out, rstd, eps });
  const ref = new Float64Array(BT * C);
  for (let i = 0; i < BT; i++) {
    let ms = 0;
    for (let c = 0; c < C; c++) ms += x[i * C + c] ** 2;
    const r = 1 / Math.sqrt(ms / C + eps);
    for (let c = 0; c < C; c++) ref[i * C + c] = x[i * C + c] * r * weight[c];
  }
  close(out, ref, 1e-5, 'rmsnorm forward');
  const w = randomArray(BT * C, 6), dx = new Float32Array(BT * C), dweight = new Float32Array(C);
  K.rmsnorm({ BT, C, x, weight, rstd, dout: w, dx, dweight, backward: true });
  const loss = () => { K.rmsnorm({ BT, C, x, weight, out, rstd, eps }); return dot64(out, w); };
  for (const [arr, grad, name] of [[x, dx, 'x'], [weight, dweight, 'weight']] as const) {
    const r = fdRelativeError(arr, sampleIndices(arr.length, 30, 7), grad, loss);
    assert.ok(r.rel < TOL_FD, `d${name} rel ${r.rel}`);
  }
  // accumulate adds into dx instead of overwriting
  const dx2 = dx.slice();
  K.rmsnorm({ BT, C, x, weight, rstd, dout: w, dx: dx2, dweight: new Float32Array(C), backward: true, accumulate: true });
  close(dx2, Array.from(dx, (v) => 2 * v), 1e-6, 'accumulate');
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

test('rope: rotate-half convention; inverse is the transpose (the backward)', () => {
  const B = 2, T = 5, H = 3, HD = 8, half = HD / 2;
  const { cos, sin } = ropeTables(T, HD);
  const x0 = randomArray(B * T * H * HD, 8), x = x0.slice();
  K.rope({ B, T, H, HD, x, cos, sin });
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
    const o = ((b * T + t) * H + h) * HD;
    for (let i = 0; i < half; i++) {
      const c = cos[t * half + i], s = sin[t * half + i];
      const x1 = x0[o + i], x2 = x0[o + i + half];
      assert.ok(Math.abs(x[o + i] - (x1 * c - x2 * s)) < 1e-6);
      assert.ok(Math.abs(x[o + i + half] - (x2 * c + x1 * s)) < 1e-6);
    }
  }
  // L = <w, rope(x)>  =>  dL/dx = rope^T(w)
  const w = randomArray(x.length, 9), g = w.slice();
  K.rope({ B, T, H, HD, x: g, cos, sin, inverse: true });
  const xv = x0.slice();
  const loss = () => { const y = xv.slice(); K.rope({ B, T, H, HD, x: y, cos, sin }); return dot64(y, w); };
  const r = fdRelativeError(xv, sampleIndices(xv.length, 30, 10), g, loss);
  assert.ok(r.rel < TOL_FD, `rel ${r.rel}`);
});

function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, B: number, T: number, NH: number, NKV: number, HD: number) {
  const out = new Float64Array(B * T * NH * HD), rep = NH / NKV;
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let t = 0; t < T; t++) {
    const kh = Math.floor(h / rep), sc: number[] = [];
    for (let s = 0; s <= t; s++) {
      let d = 0;
      for (let i = 0; i < HD; i++) d += q[((b * T + t) * NH + h) * HD + i] * k[((b * T + s) * NKV + kh) * HD + i];
      sc.push(d / Math.sqrt(HD));
    }
    const m = Math.max(...sc), e = sc.map((z) => Math.exp(z - m)), z = e.reduce((a, c) => a + c, 0);
    for (let s = 0; s <= t; s++)
      for (let i = 0; i < HD; i++) out[((b * T + t) * NH + h) * HD + i] += (e[s] / z) * v[((b * T + s) * NKV + kh) * HD + i];
  }
  return out;
}

for (const [NH, NKV] of [[2, 2], [4, 2], [4, 1]]) {
  test(`attention (causal, NH=${NH}, NKV=${NKV}): matches a naive reference; gradients of q, k, v`, () => {
    const B = 2, T = 6, HD = 4;
    const q = randomArray(B * T * NH * HD, 11), k = randomArray(B * T * NKV * HD, 12), v = randomArray(B * T * NKV * HD, 13);
    const out = new Float32Array(q.length), att = new Float32Array(B * NH * T * T).fill(NaN);
    const args = { B, T, NH, NKV, HD, q, k, v, att };
    K.attention({ ...args, out });
    close(out, attentionRef(q, k, v, B, T, NH, NKV, HD), 1e-5, 'attention forward');
    for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let t = 0; t < T; t++)
      for (let s = t + 1; s < T; s++) assert.is(att[((b * NH + h) * T + t) * T + s], 0, 'no attention to the future');
    const w = randomArray(out.length, 14);
    const dq = new Float32Array(q.length).fill(NaN), dk = new Float32Array(k.length).fill(NaN), dv = new Float32Array(v.length).fill(NaN);
    K.attention({ ...args, dout: w, dq, dk, dv, backward: true });
    const loss = () => { K.attention({ ...args, out }); return dot64(out, w); };
    for (const [arr, grad, name] of [[q, dq, 'q'], [k, dk, 'k'], [v, dv, 'v']] as const) {
      const r = fdRelativeError(arr, sampleIndices(arr.length, 40, 15), grad, loss);
      assert.ok(r.rel < TOL_FD, `d${name} rel ${r.rel}`);
    }
  });
}

test('swiglu: silu(gate) * up and its gradients', () => {
  const n = 50;
  const gate = randomArray(n, 16, 4), up = randomArray(n, 17, 2), h = new Float32Array(n);
  K.swiglu({ n, gate, up, h });
  for (let i = 0; i < n; i++) assert.ok(Math.abs(h[i] - (gate[i] / (1 + Math.exp(-gate[i]))) * up[i]) < 1e-5);
  const w = randomArray(n, 18), dgate = new Float32Array(n), dup = new Float32Array(n);
  K.swiglu({ n, gate, up, dh: w, dgate, dup, backward: true });
  const loss = () => { K.swiglu({ n, gate, up, h }); return dot64(h, w); };
  for (const [arr, grad, name] of [[gate, dgate, 'gate'], [up, dup, 'up']] as const) {
    const r = fdRelativeError(arr, sampleIndices(n, n, 19), grad, loss);
    assert.ok(r.rel < TOL_FD, `d${name} rel ${r.rel}`);
  }
});

test('log-softmax: target log-probs, entropy, and the gradient of a·logp + b·entropy (masked rows)', () => {
  const BT = 5, V = 9;
  const logits = randomArray(BT * V, 20, 3), targets = Int32Array.from([3, -1, 0, 8, 5]);
  const logp = new Float32Array(BT), entropy = new Float32Array(BT), lse = new Float32Array(BT);
  const fwd = (lg: Float32Array) => K.logsoftmax({ BT, V, logits: lg, targets, logp, entropy, lse });
  fwd(logits);
  for (let i = 0; i < BT; i++) {
    const row = Array.from(logits.subarray(i * V, (i + 1) * V));
    const m = Math.max(...row), l = m + Math.log(row.reduce((s, z) => s + Math.exp(z - m), 0));
    const H = -row.reduce((s, z) => s + Math.exp(z - l) * (z - l), 0);
    assert.ok(Math.abs(logp[i] - (targets[i] < 0 ? 0 : row[targets[i]] - l)) < 1e-5, `logp[${i}]`);
    assert.ok(Math.abs(entropy[i] - H) < 1e-5, `entropy[${i}]`);
  }
  const a = randomArray(BT, 21), b = randomArray(BT, 22);
  const d = logits.slice();
  fwd(d);
  K.logsoftmax({ BT, V, logits: d, targets, logp, entropy, lse, dlogp: a, dentropy: b, backward: true });
  const loss = () => { fwd(logits); return dot64(logp, a) + dot64(entropy, b); };
  const r = fdRelativeError(logits, sampleIndices(BT * V, BT * V, 23), d, loss);
  assert.ok(r.rel < TOL_FD, `rel ${r.rel}`);
});

test('kernel bindings reject wrong lengths and types with clear errors', () => {
  assert.throws(() => K.swiglu({ n: 4, gate: new Float32Array(3), up: new Float32Array(4), h: new Float32Array(4) }),
    /gate must have 4 elements, got 3/);
  assert.throws(() => K.swiglu({ n: 4, gate: new Float64Array(4), up: new Float32Array(4), h: new Float32Array(4) }),
    /gate must be a Float32Array/);
  assert.throws(() => K.rope({ B: 1, T: 1, H: 1, HD: 3, x: new Float32Array(3), cos: new Float32Array(1), sin: new Float32Array(1) }),
    /HD must be even/);
  assert.throws(() => K.attention({ B: 1, T: 1, NH: 3, NKV: 2, HD: 2 }), /multiple of NKV/);
});

test.run();
