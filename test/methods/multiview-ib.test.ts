// RLP-UML's multi-view information bottleneck: its loss against a direct computation, and its gradients
// (encoder, critic and the hidden states) against central finite differences in float64.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gaussian, MultiViewIB } from '../../ts/methods/multiview-ib.ts';

const B = 4, C = 6;
const h1 = gaussian(B * C, 1), h2 = gaussian(B * C, 2);

function setup(beta = 0.7) {
  const ib = new MultiViewIB(C, { latentDim: 3, hiddenDim: 5, beta, seed: 4 });
  // non-zero biases so every term is exercised
  for (const n of ib.names) if (n.endsWith('b1') || n.endsWith('b2')) ib.block(n).set(gaussian(ib.block(n).length, n.length, 9).map((x) => 0.3 * x));
  const D = ib.cfg.latentDim;
  return { ib, e1: gaussian(B * D, 5), e2: gaussian(B * D, 6) };
}

test('the symmetric KL is ½(KL(p1‖p2) + KL(p2‖p1)) of the two Gaussians; the MI estimate is the JSD bound (≤ 0)', () => {
  const { ib, e1, e2 } = setup(1);
  const s = ib.loss(h1, h2, e1, e2);
  assert.ok(s.mi <= 0 && s.mi > -10, `mi ${s.mi}`);
  assert.ok(s.skl >= 0);
  assert.ok(Math.abs(s.loss - (-s.mi + s.skl)) < 1e-12);
  // identical views: the posteriors coincide, the KL is 0
  const same = ib.loss(h1, h1, e1, e2);
  assert.ok(Math.abs(same.skl) < 1e-12, `skl of identical views ${same.skl}`);
  // KL of two 1-d Gaussians by quadrature vs the closed form used
  const kl = (m1: number, s1: number, m2: number, s2: number) => {
    let acc = 0;
    for (let x = -30; x <= 30; x += 1e-3) {
      const p = Math.exp(-((x - m1) ** 2) / (2 * s1 * s1)) / (s1 * Math.sqrt(2 * Math.PI)), q = Math.exp(-((x - m2) ** 2) / (2 * s2 * s2)) / (s2 * Math.sqrt(2 * Math.PI));
      if (p > 0 && q > 0) acc += p * Math.log(p / q) * 1e-3;
    }
    return acc;
  };
  const [m1, s1, m2, s2] = [0.3, 0.8, -0.4, 1.7];
  const closed = 0.5 * ((s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) + (s2 ** 2 + (m1 - m2) ** 2) / (2 * s1 ** 2) - 1);
  assert.ok(Math.abs(closed - 0.5 * (kl(m1, s1, m2, s2) + kl(m2, s2, m1, s1))) < 1e-4);
});

test('gradients of every parameter block and of both views\' hidden states match finite differences', () => {
  const { ib, e1, e2 } = setup();
  const scale = 0.5;
  ib.zeroGrad();
  const r = ib.forwardBackward(h1, h2, e1, e2, scale);
  const f = () => scale * ib.loss(h1, h2, e1, e2).loss;
  const check = (x: Float64Array, an: ArrayLike<number>, what: string) => {
    const idx = Array.from({ length: Math.min(x.length, 8) }, (_, k) => Math.floor((k * x.length) / Math.min(x.length, 8)));
    let num = 0, den = 0;
    for (const i of idx) {
      const o = x[i], h = 1e-6;
      x[i] = o + h; const lp = f();
      x[i] = o - h; const lm = f();
      x[i] = o;
      const fd = (lp - lm) / (2 * h);
      num += (fd - an[i]) ** 2; den += Math.max(fd ** 2, an[i] ** 2);
    }
    const rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-10);
    assert.ok(rel < 1e-5, `${what}: relative error ${rel.toExponential(2)}`);
  };
  for (const n of ib.names) check(ib.block(n), ib.block(n, ib.grads), n);
  check(h1, r.dh1, 'h1');
  check(h2, r.dh2, 'h2');
});

test('training the encoder and critic alone lowers L_M on fixed views', () => {
  const ib = new MultiViewIB(C, { latentDim: 3, hiddenDim: 8, lr: 1e-2, seed: 2 });
  const Bb = 8, views1 = gaussian(Bb * C, 11), views2 = views1.map((x, i) => x + 0.1 * gaussian(Bb * C, 12)[i]);
  const losses: number[] = [];
  for (let s = 0; s < 150; s++) {
    ib.zeroGrad();
    const r = ib.forwardBackward(views1, views2, gaussian(Bb * 3, 20, s), gaussian(Bb * 3, 21, s));
    losses.push(r.loss);
    ib.step();
  }
  const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10, last = losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < first - 0.3, `L_M ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  // state round trip
  const again = new MultiViewIB(C, { latentDim: 3, hiddenDim: 8, lr: 1e-2, seed: 99 });
  again.restore(JSON.parse(JSON.stringify(ib.state())));
  assert.equal(Array.from(again.params), Array.from(ib.params));
});

test('bad shapes are clear errors', () => {
  const { ib, e1, e2 } = setup();
  assert.throws(() => ib.loss(h1.subarray(0, C), h2.subarray(0, C), e1.subarray(0, 3), e2.subarray(0, 3)), /B >= 2/);
  assert.throws(() => ib.loss(h1, h2, e1.subarray(1), e2), /eps1 and eps2 must be \[4, 3\]/);
  assert.throws(() => new MultiViewIB(0), /input dimension/);
  assert.throws(() => new MultiViewIB(4, { latentDim: 0 }), /latentDim/);
});

test.run();
