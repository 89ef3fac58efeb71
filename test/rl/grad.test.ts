// Finite-difference checks of the PPO (policy + value + entropy), Bradley-Terry and DPO losses through a tiny
// model: the analytic parameter gradients (loss kernel -> per-position gradients -> model backward) against
// central differences of the loss in single parameters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Model } from '../../ts/engine/model.ts';
import { bradleyTerryLoss, dpoLoss, packSequences, ppoLoss, sequenceLogRatio } from '../../ts/engine/rl.ts';
import { rng, tinyModel } from './helpers.ts';

type LossFn = (train: boolean) => Promise<number>;  // train: also run backward from the loss

const TENSORS = [/embed_tokens/, /q_proj/, /v_proj/, /down_proj/, /input_layernorm/, /lm_head/, /score\.weight/, /score\.bias/];

async function gradCheck(model: Model, loss: LossFn, label: string): Promise<number> {
  model.zeroGrad();
  await loss(true);
  const grads = model.gradients().map((g) => ({ name: g.name, data: Float32Array.from(g.data) }));
  const params = model.parameters();
  let checked = 0;
  for (let k = 0; k < params.length; k++) {
    if (!TENSORS.some((re) => re.test(params[k].name))) continue;
    const g = grads[k].data;
    const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 2);
    for (const i of order) {
      if (Math.abs(g[i]) < 1e-4) continue;  // too small to measure in float32
      const p = params[k].data, orig = p[i], eps = 4e-3 * Math.max(1, Math.abs(orig));
      p[i] = orig + eps; const hi = p[i]; const lp = await loss(false);
      p[i] = orig - eps; const lo = p[i]; const lm = await loss(false);
      p[i] = orig;
      const fd = (lp - lm) / (hi - lo);
      const err = Math.abs(fd - g[i]);
      assert.ok(err <= 0.03 * Math.abs(g[i]) + 2e-4, `${label}: ${params[k].name}[${i}] analytic ${g[i]} vs finite difference ${fd}`);
      checked++;
    }
  }
  assert.ok(checked >= 6, `${label}: only ${checked} parameters had a measurable gradient`);
  return checked;
}

/** The scalar head starts at zero (a fresh head); give it weights so the trunk gets gradients. */
function randomizeHead(model: Model, rand: () => number): void {
  for (const p of model.parameters()) if (p.name.startsWith('score.')) p.data.set(Float32Array.from(p.data, () => rand() - 0.5));
}

function rows(rand: () => number, B: number, V: number) {
  return Array.from({ length: B }, (_, b) => ({
    prompt: Array.from({ length: 2 + (b % 2) }, () => Math.floor(rand() * V)),
    response: Array.from({ length: 3 + b }, () => Math.floor(rand() * V)),
  }));
}

test('PPO policy + value + entropy loss through one model with both heads', async () => {
  const model = tinyModel({}, 5, 0.3);
  const rand = rng(1);
  randomizeHead(model, rand);
  const b = packSequences(rows(rand, 3, 8));
  const n = b.batch * b.seqLen;
  const base = await model.raw.forward({ tokens: b.tokens, targets: b.targets, batch: b.batch, seqLen: b.seqLen, threads: 1 });
  // Ratios and value moves far from the clip boundaries, on both sides: some tokens clipped, some not.
  const offs = [-0.5, -0.05, 0.05, 0.5];
  const oldLogp = Float32Array.from(base.logp as Float32Array, (x, i) => x + offs[i % 4]);
  const oldValues = Float32Array.from(base.values as Float32Array, (x, i) => x + offs[(i + 1) % 4]);
  const advantages = Float32Array.from({ length: n }, () => rand() * 2 - 1);
  const returns = Float32Array.from({ length: n }, () => rand() * 2 - 1);
  let clipfrac = 0;
  const loss: LossFn = async (train) => {
    const o = await model.raw.forward({ tokens: b.tokens, targets: b.targets, batch: b.batch, seqLen: b.seqLen, train, entropy: true, threads: 1 });
    const r = ppoLoss({ mask: b.mask, logp: o.logp, oldLogp, advantages, values: o.values, oldValues, returns, entropy: o.entropy, cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.5, entCoef: 0.05 });
    if (train) {
      clipfrac = r.pgClipfrac! + r.vfClipfrac!;
      await model.raw.backward({ dlogp: r.dlogp, dvalues: r.dvalues, dentropy: r.dentropy, threads: 1 });
    }
    return r.loss;
  };
  await gradCheck(model, loss, 'ppo');
  assert.ok(clipfrac > 0, 'some tokens are clipped');
});

test('value loss alone through a separate value model (no LM head)', async () => {
  const model = tinyModel({ lm_head: false }, 6, 0.3);
  const rand = rng(2);
  randomizeHead(model, rand);
  const b = packSequences(rows(rand, 3, 8));
  const n = b.batch * b.seqLen;
  const base = await model.raw.forward({ tokens: b.tokens, batch: b.batch, seqLen: b.seqLen, threads: 1 });
  const oldValues = Float32Array.from(base.values as Float32Array, (x, i) => x + [-0.5, 0.05, -0.05, 0.5][i % 4]);
  const returns = Float32Array.from({ length: n }, () => rand() * 4 - 2);
  const loss: LossFn = async (train) => {
    const o = await model.raw.forward({ tokens: b.tokens, batch: b.batch, seqLen: b.seqLen, train, threads: 1 });
    const r = ppoLoss({ mask: b.mask, values: o.values, oldValues, returns, cliprangeValue: 0.2, vfCoef: 1 });
    if (train) await model.raw.backward({ dvalues: r.dvalues, threads: 1 });
    return r.loss;
  };
  await gradCheck(model, loss, 'value');
});

test('Bradley-Terry loss through a reward model read at the last token', async () => {
  const model = tinyModel({ lm_head: false }, 7, 0.3);
  const rand = rng(3);
  randomizeHead(model, rand);
  const seqs = rows(rand, 6, 8);  // pairs (0,1), (2,3), (4,5)
  const b = packSequences(seqs);
  const label = new Float32Array([1, 0, 0.7]);
  const loss: LossFn = async (train) => {
    const o = await model.raw.forward({ tokens: b.tokens, batch: b.batch, seqLen: b.seqLen, train, threads: 1 });
    const at = (row: number) => o.values[row * b.seqLen + b.lastIndex[row]];
    const r1 = Float32Array.from([0, 2, 4], at), r2 = Float32Array.from([1, 3, 5], at);
    const r = bradleyTerryLoss({ r1, r2, label });
    if (train) {
      const dvalues = new Float32Array(b.batch * b.seqLen);
      for (let k = 0; k < 3; k++) {
        dvalues[2 * k * b.seqLen + b.lastIndex[2 * k]] = r.dr1[k];
        dvalues[(2 * k + 1) * b.seqLen + b.lastIndex[2 * k + 1]] = r.dr2[k];
      }
      await model.raw.backward({ dvalues, threads: 1 });
    }
    return r.loss;
  };
  await gradCheck(model, loss, 'bradley-terry');
});

for (const variant of [{ lossType: 'sigmoid' as const }, { lossType: 'sigmoid' as const, labelSmoothing: 0.2 }, { lossType: 'ipo' as const }]) {
  test(`DPO loss (${JSON.stringify(variant)}) through summed response log-probs`, async () => {
    const model = tinyModel({ scalar_head: false }, 8, 0.3);
    const rand = rng(4);
    const b = packSequences(rows(rand, 4, 8));  // chosen = even rows, rejected = odd rows
    const refC = new Float32Array([-6, -9]), refR = new Float32Array([-7, -8]);
    const loss: LossFn = async (train) => {
      const o = await model.raw.forward({ tokens: b.tokens, targets: b.targets, batch: b.batch, seqLen: b.seqLen, train, threads: 1 });
      const s = sequenceLogRatio({ logp: o.logp, mask: b.mask, batch: b.batch, seqLen: b.seqLen });
      const pc = Float32Array.from([s.logpSum[0], s.logpSum[2]]), pr = Float32Array.from([s.logpSum[1], s.logpSum[3]]);
      const r = dpoLoss({ policyChosen: pc, policyRejected: pr, refChosen: refC, refRejected: refR, beta: 0.5, ...variant });
      if (train) {
        const dlogp = new Float32Array(b.batch * b.seqLen);
        for (let row = 0; row < b.batch; row++) {
          const g = row % 2 ? r.dRejected[row >> 1] : r.dChosen[row >> 1];
          for (let t = 0; t < b.seqLen; t++) if (b.mask[row * b.seqLen + t]) dlogp[row * b.seqLen + t] = g;
        }
        await model.raw.backward({ dlogp, threads: 1 });
      }
      return r.loss;
    };
    await gradCheck(model, loss, `dpo ${variant.lossType}`);
  });
}

test.run();
