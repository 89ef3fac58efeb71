// RL kernels against independent straightforward TypeScript versions and hand-computed cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bradleyTerryLoss, dpoLoss, gae, klPenalizedRewards, moments, ppoLoss, sequenceLogRatio, whiten,
} from '../../ts/engine/rl.ts';
import { close, randomBatch, rng } from './helpers.ts';

// ---- independent references (index lists instead of a running state)
function refGae(r: ArrayLike<number>, v: ArrayLike<number>, m: ArrayLike<number>, B: number, T: number, g: number, l: number) {
  const adv = new Float64Array(B * T), ret = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    const idx: number[] = [];
    for (let t = 0; t < T; t++) if (m[b * T + t]) idx.push(b * T + t);
    // Â_k = Σ_{j>=k} (γλ)^{j-k} δ_j
    const delta = idx.map((i, k) => r[i] + (k + 1 < idx.length ? g * v[idx[k + 1]] : 0) - v[i]);
    for (let k = 0; k < idx.length; k++) {
      let a = 0;
      for (let j = k; j < idx.length; j++) a += (g * l) ** (j - k) * delta[j];
      adv[idx[k]] = a;
      ret[idx[k]] = a + v[idx[k]];
    }
  }
  return { adv, ret };
}
function refWhiten(x: ArrayLike<number>, m: ArrayLike<number>, shift: boolean, unbiased = false) {
  const sel: number[] = [];
  for (let i = 0; i < x.length; i++) if (m[i]) sel.push(x[i]);
  const mean = sel.reduce((a, b) => a + b, 0) / sel.length;
  const v = sel.reduce((a, b) => a + (b - mean) ** 2, 0) / (unbiased ? sel.length - 1 : sel.length);
  return Array.from(x, (xi, i) => (m[i] ? (xi - mean) / Math.sqrt(v + 1e-8) + (shift ? 0 : mean) : 0));
}

test('GAE, gamma = lambda = 1, by hand', () => {
  const mask = new Uint8Array([0, 1, 1, 1, 0]);
  const rewards = new Float32Array([0, 1, 0, 2, 0]), values = new Float32Array([9, 0.5, 1.0, 1.5, 9]);
  const { advantages, returns } = gae({ rewards, values, mask, batch: 1, seqLen: 5, gamma: 1, lambda: 1 });
  close(advantages, [0, 2.5, 1.0, 0.5, 0], 1e-6);
  close(returns, [0, 3, 2, 2, 0], 1e-6);  // = sums of future rewards
});

test('GAE, gamma = 0.9, lambda = 0.5, by hand', () => {
  const mask = new Float32Array([0, 1, 1, 1, 0]);
  const rewards = new Float32Array([0, 1, 0, 2, 0]), values = new Float32Array([9, 0.5, 1.0, 1.5, 9]);
  const { advantages, returns } = gae({ rewards, values, mask, batch: 1, seqLen: 5, gamma: 0.9, lambda: 0.5 });
  // δ3 = 0.5, A3 = 0.5; δ2 = 0.9*1.5 - 1 = 0.35, A2 = 0.35 + 0.45*0.5; δ1 = 1 + 0.9 - 0.5, A1 = 1.4 + 0.45*A2
  close(advantages, [0, 1.65875, 0.575, 0.5, 0], 1e-6);
  close(returns, [0, 2.15875, 1.575, 2.0, 0], 1e-6);
});

test('GAE matches the reference on random padded batches (holes, gamma/lambda grid)', () => {
  const rand = rng(7);
  for (const [g, l] of [[1, 1], [0.99, 0.95], [0.5, 0.0], [0, 1]]) {
    for (let trial = 0; trial < 5; trial++) {
      const { B, T, mask } = randomBatch(rand, { holes: trial % 2 === 1 });
      const rewards = Float32Array.from({ length: B * T }, () => rand() * 2 - 1);
      const values = Float32Array.from({ length: B * T }, () => rand() * 2 - 1);
      const out = gae({ rewards, values, mask, batch: B, seqLen: T, gamma: g, lambda: l });
      const ref = refGae(rewards, values, mask, B, T, g, l);
      close(out.advantages, ref.adv, 2e-5);
      close(out.returns, ref.ret, 2e-5);
    }
  }
});

test('whitening over masked tokens only, with and without shifting the mean', () => {
  const x = new Float32Array([100, 1, 2, 3, 4, -50]), mask = new Uint8Array([0, 1, 1, 1, 1, 0]);
  const w = whiten(x, { mask });
  close(w.out, [0, -1.5 / Math.sqrt(1.25), -0.5 / Math.sqrt(1.25), 0.5 / Math.sqrt(1.25), 1.5 / Math.sqrt(1.25), 0], 1e-6);
  assert.ok(Math.abs(w.mean - 2.5) < 1e-12 && Math.abs(w.var - 1.25) < 1e-12 && w.count === 4);
  const ns = whiten(x, { mask, shiftMean: false });
  close(ns.out, [0, 2.5 - 1.5 / Math.sqrt(1.25), 2.5 - 0.5 / Math.sqrt(1.25), 2.5 + 0.5 / Math.sqrt(1.25), 2.5 + 1.5 / Math.sqrt(1.25), 0], 1e-6);
  const rand = rng(3);
  for (let trial = 0; trial < 6; trial++) {
    const { B, T, mask: m } = randomBatch(rand, { holes: true });
    const v = Float32Array.from({ length: B * T }, () => (rand() - 0.3) * 5);
    const count = m.reduce((a, b) => a + b, 0);
    for (const shift of [true, false]) for (const unbiased of count > 1 ? [false, true] : [false]) {
      close(whiten(v, { mask: m, shiftMean: shift, unbiased }).out, refWhiten(v, m, shift, unbiased), 1e-5);
    }
  }
  const mo = moments(new Float32Array([1, 5, 3]), { mask: new Uint8Array([1, 0, 1]) });
  assert.equal([mo.mean, mo.var, mo.min, mo.max, mo.count], [2, 1, 1, 3, 2]);
});

test('KL penalty: k1 (clamped or not), k2, k3; score on the last response token, not on padding', () => {
  const logp = new Float32Array([0, -1, -2, -0.5, 0, /**/ 0, 0, -1, -1, 0]);
  const ref = new Float32Array([0, -1.5, -1, -0.5, 0, /**/ 0, 0, -2, -0.5, 0]);
  const mask = new Uint8Array([0, 1, 1, 1, 0, /**/ 0, 0, 1, 1, 0]);
  const scores = new Float32Array([10, 20]);
  const d = [0, 0.5, -1, 0, 0, 0, 0, 1, -0.5, 0];
  const k1 = klPenalizedRewards({ logp, refLogp: ref, mask, batch: 2, seqLen: 5, scores, klCoef: 0.1 });
  close(k1.kl, d, 1e-7);
  close(k1.rewards, [0, -0.05, 0.1, 10, 0, 0, 0, -0.1, 20.05, 0], 1e-6);
  close(k1.klSum, [-0.5, 0.5], 1e-7);
  assert.ok(Math.abs(k1.klMean) < 1e-12 && Math.abs(k1.scoreMean - 15) < 1e-12);
  const cl = klPenalizedRewards({ logp, refLogp: ref, mask, batch: 2, seqLen: 5, scores, klCoef: 0.1, clamp: true });
  close(cl.kl, d.map((x) => Math.max(x, 0)), 1e-7);
  close(cl.klSum, [0.5, 1], 1e-7);
  assert.ok(Math.abs(cl.nonScoreReward - -0.075) < 1e-9, String(cl.nonScoreReward));
  const k2 = klPenalizedRewards({ logp, refLogp: ref, mask, batch: 2, seqLen: 5, klCoef: 1, estimator: 'k2' });
  close(k2.kl, d.map((x, i) => (mask[i] ? 0.5 * x * x : 0)), 1e-7);
  const k3 = klPenalizedRewards({ logp, refLogp: ref, mask, batch: 2, seqLen: 5, klCoef: 1, estimator: 'k3' });
  close(k3.kl, d.map((x, i) => (mask[i] ? Math.exp(-x) - 1 + x : 0)), 1e-6);
  close(k3.rewards, d.map((x, i) => (mask[i] ? -(Math.exp(-x) - 1 + x) : 0)), 1e-6);  // no scores given
  assert.ok(Array.from(k3.kl).every((x) => x >= 0));
});

function refPPO(o: { logp: number[]; old: number[]; adv: number[]; v: number[]; vold: number[]; ret: number[]; mask: number[]; eps: number; epsv: number; vf: number }) {
  let pg = 0, vf = 0, n = 0, clip = 0;
  o.mask.forEach((m, i) => {
    if (!m) return;
    n++;
    const r = Math.exp(o.logp[i] - o.old[i]);
    const l1 = -o.adv[i] * r, l2 = -o.adv[i] * Math.min(Math.max(r, 1 - o.eps), 1 + o.eps);
    pg += Math.max(l1, l2);
    if (l2 > l1) clip++;
    const vc = o.vold[i] + Math.min(Math.max(o.v[i] - o.vold[i], -o.epsv), o.epsv);
    vf += 0.5 * Math.max((o.v[i] - o.ret[i]) ** 2, (vc - o.ret[i]) ** 2);
  });
  return { pg: pg / n, vf: vf / n, loss: (pg + o.vf * vf) / n, clipfrac: clip / n };
}

test('PPO losses and statistics match the formulas; gradients match finite differences', () => {
  const rand = rng(11);
  const n = 40;
  const mask = Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : 1));
  const old = Array.from({ length: n }, () => -rand() * 3);
  const logp = old.map((x) => x + (rand() - 0.5) * 0.8);
  const adv = Array.from({ length: n }, () => rand() * 2 - 1);
  const vold = Array.from({ length: n }, () => rand() * 2 - 1);
  const v = vold.map((x) => x + (rand() - 0.5));
  const ret = Array.from({ length: n }, () => rand() * 2 - 1);
  const f = (a: number[]) => Float32Array.from(a);
  const args = { mask: f(mask), logp: f(logp), oldLogp: f(old), advantages: f(adv), values: f(v), oldValues: f(vold), returns: f(ret), cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1 };
  const out = ppoLoss(args);
  const ref = refPPO({ logp: Array.from(f(logp)), old: Array.from(f(old)), adv: Array.from(f(adv)), v: Array.from(f(v)), vold: Array.from(f(vold)), ret: Array.from(f(ret)), mask, eps: 0.2, epsv: 0.2, vf: 0.1 });
  assert.ok(Math.abs(out.pgLoss! - ref.pg) < 1e-6 && Math.abs(out.vfLoss! - ref.vf) < 1e-6 && Math.abs(out.loss - ref.loss) < 1e-6);
  assert.ok(Math.abs(out.pgClipfrac! - ref.clipfrac) < 1e-12);
  assert.ok(out.pgClipfrac! > 0 && out.vfClipfrac! > 0, 'the case exercises clipping');
  const ratios = mask.map((m, i) => (m ? Math.exp(Math.fround(logp[i]) - Math.fround(old[i])) : NaN)).filter((x) => !Number.isNaN(x));
  const rm = ratios.reduce((a, b) => a + b, 0) / ratios.length;
  assert.ok(Math.abs(out.ratioMean! - rm) < 1e-6);
  assert.ok(Math.abs(out.ratioVar! - ratios.reduce((a, b) => a + (b - rm) ** 2, 0) / ratios.length) < 1e-6);
  assert.ok(out.approxkl! > 0 && out.tokens === mask.filter((m) => m).length);
  // central differences of the loss (float32 inputs, double loss): smooth away from the clip boundaries
  const h = 1e-3;
  for (const [key, grad] of [['logp', out.dlogp!], ['values', out.dvalues!]] as const) {
    for (let i = 0; i < n; i++) {
      const base = Float32Array.from(args[key]);
      const plus = Float32Array.from(base), minus = Float32Array.from(base);
      plus[i] += h; minus[i] -= h;
      const fd = (ppoLoss({ ...args, [key]: plus }).loss - ppoLoss({ ...args, [key]: minus }).loss) / (plus[i] - minus[i]);
      assert.ok(Math.abs(fd - grad[i]) < 2e-4, `d loss / d ${key}[${i}]: fd ${fd} vs ${grad[i]}`);
    }
  }
});

test('clipping: ratio outside [1-eps, 1+eps] with advantage of the matching sign gives exactly zero gradient, counted in clipfrac', () => {
  const old = new Float32Array([0, 0, 0, 0, 0, 0]).map(() => -1);
  const logp = new Float32Array([-1 + Math.log(1.5), -1 + Math.log(0.5), -1 + Math.log(1.5), -1 + Math.log(0.5), -1 + Math.log(1.1), -1]);
  const adv = new Float32Array([1, -1, -1, 1, 1, 2]);
  // token 0: ρ = 1.5 > 1.2, Â > 0 -> clipped; token 1: ρ = 0.5 < 0.8, Â < 0 -> clipped;
  // token 2: ρ = 1.5, Â < 0 -> unclipped (pessimistic branch); token 3: ρ = 0.5, Â > 0 -> unclipped; 4, 5 inside.
  const mask = new Uint8Array([1, 1, 1, 1, 1, 1]);
  const r = ppoLoss({ mask, logp, oldLogp: old, advantages: adv, cliprange: 0.2 });
  assert.is(r.dlogp![0], 0);
  assert.is(r.dlogp![1], 0);
  assert.ok(Object.is(r.dlogp![0], 0) || r.dlogp![0] === 0);
  close(Array.from(r.dlogp!).slice(2), [1.5 / 6, -0.5 / 6, -1.1 / 6, -2 / 6], 1e-6);
  assert.is(r.pgClipfrac, 2 / 6);
  // value clipping: V moved beyond V_old ± 0.2 away from the return -> zero gradient, counted
  const vr = ppoLoss({ mask: new Uint8Array([1, 1, 1]), values: new Float32Array([1.0, 0.1, -1]), oldValues: new Float32Array([0, 0, 0]), returns: new Float32Array([-1, 1, 0]), cliprangeValue: 0.2, vfCoef: 1 });
  // token 0: |V - R| = 2 > |Vc - R| = 1.2 -> unclipped (the larger loss wins); token 1 inside the clip; token 2: V = -1, Vc = -0.2, R = 0: unclipped
  close(vr.dvalues!, [2 / 3, -0.9 / 3, -1 / 3], 1e-6);
  const vc = ppoLoss({ mask: new Uint8Array([1, 1]), values: new Float32Array([0.9, -0.1]), oldValues: new Float32Array([0, 0]), returns: new Float32Array([1, 1]), cliprangeValue: 0.2, vfCoef: 1 });
  // token 0: V = 0.9 close to R = 1 but Vc = 0.2 is far: the clipped loss wins, gradient 0
  assert.is(vc.dvalues![0], 0);
  assert.ok(vc.dvalues![1] !== 0);
  assert.is(vc.vfClipfrac, 0.5);
  // masked-out positions have zero gradient and do not count
  const mm = ppoLoss({ mask: new Uint8Array([0, 1]), logp: new Float32Array([5, -1]), oldLogp: new Float32Array([-5, -1]), advantages: new Float32Array([3, 1]) });
  assert.is(mm.dlogp![0], 0);
  assert.is(mm.tokens, 1);
  assert.is(mm.pgClipfrac, 0);
});

test('entropy bonus: loss and gradient', () => {
  const r = ppoLoss({ mask: new Uint8Array([1, 0, 1]), logp: new Float32Array(3), oldLogp: new Float32Array(3), advantages: new Float32Array(3), entropy: new Float32Array([1, 7, 3]), entCoef: 0.5 });
  assert.ok(Math.abs(r.entropy! - 2) < 1e-12 && Math.abs(r.loss - -1) < 1e-12);
  close(r.dentropy!, [-0.25, 0, -0.25], 1e-9);
  const norm = ppoLoss({ mask: new Uint8Array([1, 0, 1]), logp: new Float32Array(3), oldLogp: new Float32Array(3), advantages: new Float32Array(3), entropy: new Float32Array([1, 7, 3]), entCoef: 0.5, normalizer: 8 });
  close(norm.dentropy!, [-0.0625, 0, -0.0625], 1e-9);
});

test('Bradley-Terry loss, accuracy, margin, gradients', () => {
  const r1 = new Float32Array([0.5, 2, -1, 0]), r2 = new Float32Array([1.5, 1, -1, 3]), label = new Float32Array([1, 0, 1, 0.5]);
  const bt = bradleyTerryLoss({ r1, r2, label });
  const z = [1, -1, 0, 3];
  const sp = (x: number) => Math.log1p(Math.exp(x));
  const loss = z.reduce((a, zi, i) => a + sp(zi) - label[i] * zi, 0) / 4;
  assert.ok(Math.abs(bt.loss - loss) < 1e-9);
  assert.is(bt.accuracy, (1 + 1 + 0 + 0.5) / 4);  // a zero margin predicts output 1
  assert.ok(Math.abs(bt.margin - (1 + 1 + 0 + 0) / 4) < 1e-9);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  close(bt.dr2, z.map((zi, i) => (sig(zi) - label[i]) / 4), 1e-7);
  close(bt.dr1, z.map((zi, i) => -(sig(zi) - label[i]) / 4), 1e-7);
  assert.ok(Math.abs(bt.chosenMean - (1.5 + 2 + -1 + 3) / 4) < 1e-9);
  const big = bradleyTerryLoss({ r1: new Float32Array([0]), r2: new Float32Array([200]), label: new Float32Array([0]) });
  assert.ok(Math.abs(big.loss - 200) < 1e-6 && Number.isFinite(big.dr1[0]));
});

test('DPO losses: sigmoid, cDPO, IPO and statistics', () => {
  const pc = new Float32Array([-5, -8]), pr = new Float32Array([-7, -6]), rc = new Float32Array([-6, -8]), rr = new Float32Array([-6, -7]);
  const beta = 0.5;
  const h = [(-5 + 6) - (-7 + 6), (-8 + 8) - (-6 + 7)];  // [2, -1]
  const sp = (x: number) => Math.log1p(Math.exp(x)), sig = (x: number) => 1 / (1 + Math.exp(-x));
  const s = dpoLoss({ policyChosen: pc, policyRejected: pr, refChosen: rc, refRejected: rr, beta });
  assert.ok(Math.abs(s.loss - (sp(-beta * h[0]) + sp(-beta * h[1])) / 2) < 1e-9);
  close(s.dChosen, h.map((x) => (-beta * sig(-beta * x)) / 2), 1e-7);
  close(s.dRejected, h.map((x) => (beta * sig(-beta * x)) / 2), 1e-7);
  assert.ok(Math.abs(s.rewardsChosen - beta * (1 + 0) / 2) < 1e-9 && Math.abs(s.rewardsRejected - beta * (-1 + 1) / 2) < 1e-9);
  assert.is(s.accuracy, 0.5);
  assert.ok(Math.abs(s.margin - beta * (2 + -1) / 2) < 1e-9);
  const ls = 0.1;
  const c = dpoLoss({ policyChosen: pc, policyRejected: pr, refChosen: rc, refRejected: rr, beta, labelSmoothing: ls });
  assert.ok(Math.abs(c.loss - h.reduce((a, x) => a + (1 - ls) * sp(-beta * x) + ls * sp(beta * x), 0) / 2) < 1e-9);
  const ipo = dpoLoss({ policyChosen: pc, policyRejected: pr, refChosen: rc, refRejected: rr, beta, lossType: 'ipo' });
  assert.ok(Math.abs(ipo.loss - h.reduce((a, x) => a + (x - 1) ** 2, 0) / 2) < 1e-9);
  close(ipo.dChosen, h.map((x) => (2 * (x - 1)) / 2), 1e-7);
  // finite differences of each loss in the policy log-probs
  for (const o of [{}, { labelSmoothing: 0.2 }, { lossType: 'ipo' as const }]) {
    const base = { policyChosen: pc, policyRejected: pr, refChosen: rc, refRejected: rr, beta, ...o };
    const g = dpoLoss(base);
    for (const key of ['policyChosen', 'policyRejected'] as const) for (let i = 0; i < 2; i++) {
      const p = Float32Array.from(base[key]), m = Float32Array.from(base[key]);
      p[i] += 1e-2; m[i] -= 1e-2;
      const fd = (dpoLoss({ ...base, [key]: p }).loss - dpoLoss({ ...base, [key]: m }).loss) / (p[i] - m[i]);
      const an = key === 'policyChosen' ? g.dChosen[i] : g.dRejected[i];
      assert.ok(Math.abs(fd - an) < 1e-4, `${JSON.stringify(o)} ${key}[${i}] fd ${fd} vs ${an}`);
    }
  }
});

test('sequence log-ratio: sums and TreeBoN 1/(k+1) weights over response tokens', () => {
  const logp = new Float32Array([0, -1, -2, -3, 0, -0.5, -0.5, 0]), ref = new Float32Array([0, -2, -2, -1, 0, -1, 0, 0]);
  const mask = new Uint8Array([0, 1, 1, 1, 0, 1, 1, 0]);
  const s = sequenceLogRatio({ logp, refLogp: ref, mask, batch: 2, seqLen: 4 });
  close(s.logpSum, [-6, -1], 1e-12);
  close(s.refLogpSum!, [-5, -1], 1e-12);
  close(s.logRatioSum!, [-1, 0], 1e-12);
  close(s.weightedLogRatioSum!, [1 + 0 / 2 + -2 / 3, 0.5 - 0.5 / 2], 1e-7);
  close(s.logRatio!, [0, 1, 0, -2, 0, 0.5, -0.5, 0], 1e-7);
  assert.equal(Array.from(s.tokens), [3, 2]);
  const only = sequenceLogRatio({ logp, mask, batch: 2, seqLen: 4 });
  assert.equal(only.refLogpSum, undefined);
  close(only.logpSum, [-6, -1], 1e-12);
});

test('deterministic: same inputs give bit-identical outputs', () => {
  const rand = rng(5);
  const { B, T, mask } = randomBatch(rand, {});
  const r = Float32Array.from({ length: B * T }, () => rand()), v = Float32Array.from({ length: B * T }, () => rand());
  const a = gae({ rewards: r, values: v, mask, batch: B, seqLen: T, gamma: 0.97, lambda: 0.9 });
  const b = gae({ rewards: r, values: v, mask, batch: B, seqLen: T, gamma: 0.97, lambda: 0.9 });
  assert.equal(Array.from(a.advantages), Array.from(b.advantages));
});

test('bad input: shapes, masks, non-finite values, empty batches, rows without a response', () => {
  const f = (n: number) => new Float32Array(n);
  const ok = { rewards: f(6), values: f(6), mask: new Uint8Array([0, 1, 0, 0, 1, 1]), batch: 2, seqLen: 3 };
  assert.throws(() => gae({ ...ok, values: f(5) }), /values must have 6 elements \(batch 2 x seqLen 3\), got 5/);
  assert.throws(() => gae({ ...ok, mask: new Uint8Array([0, 1, 2, 0, 1, 1]) }), /mask\[2\] = 2 is not 0 or 1/);
  assert.throws(() => gae({ ...ok, mask: new Float32Array([0, 1, 0.5, 0, 1, 1]) }), /mask\[2\] = 0.5 is not 0 or 1/);
  assert.throws(() => gae({ ...ok, rewards: new Float32Array([0, 0, 0, NaN, 0, 0]) }), /rewards\[3\] is NaN/);
  assert.throws(() => gae({ ...ok, values: new Float32Array([0, Infinity, 0, 0, 0, 0]) }), /values\[1\] is Infinity/);
  assert.throws(() => gae({ ...ok, batch: 0 }), /batch must be in \[1,/);
  assert.throws(() => gae({ ...ok, gamma: 1.5 }), /gamma must be in \[0, 1\]/);
  assert.throws(() => gae({ ...ok, rewards: [1, 2] as unknown as Float32Array }), /rewards must be a Float32Array/);
  const kl = { logp: f(6), refLogp: f(6), mask: ok.mask, batch: 2, seqLen: 3, klCoef: 0.1 };
  assert.throws(() => klPenalizedRewards({ ...kl, scores: new Float32Array([1, NaN]) }), /scores\[1\] is NaN/);
  assert.throws(() => klPenalizedRewards({ ...kl, scores: f(3) }), /scores must have 2 elements/);
  assert.throws(() => klPenalizedRewards({ ...kl, mask: new Uint8Array([0, 1, 0, 0, 0, 0]) }), /row 1 has no response position/);
  assert.throws(() => klPenalizedRewards({ ...kl, estimator: 'k4' as 'k1' }), /estimator must be/);
  assert.throws(() => whiten(f(0)), /no position is selected/);
  assert.throws(() => whiten(f(3), { mask: new Uint8Array(3) }), /no position is selected/);
  assert.throws(() => ppoLoss({ mask: new Uint8Array(3), logp: f(3), oldLogp: f(2), advantages: f(3) }), /oldLogp must have 3 elements/);
  assert.throws(() => ppoLoss({ mask: new Uint8Array(3), logp: f(3) }), /oldLogp is required/);
  assert.throws(() => ppoLoss({ mask: new Uint8Array(3), logp: f(3), oldLogp: f(3), advantages: f(3), cliprange: 1.5 }), /cliprange must be in \(0, 1\)/);
  assert.throws(() => bradleyTerryLoss({ r1: f(0), r2: f(0), label: f(0) }), /empty batch/);
  assert.throws(() => bradleyTerryLoss({ r1: f(2), r2: f(2), label: new Float32Array([1, 2]) }), /label\[1\] = 2 is outside \[0, 1\]/);
  assert.throws(() => dpoLoss({ policyChosen: f(2), policyRejected: f(2), refChosen: f(1), refRejected: f(2) }), /refChosen must have 2 elements/);
  assert.throws(() => dpoLoss({ policyChosen: f(1), policyRejected: f(1), refChosen: f(1), refRejected: f(1), beta: 0 }), /beta must be > 0/);
  assert.throws(() => sequenceLogRatio({ logp: f(4), mask: new Uint8Array(3), batch: 2, seqLen: 2 }), /mask must have 4 elements/);
});

test.run();
