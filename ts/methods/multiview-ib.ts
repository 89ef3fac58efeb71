// The multi-view information bottleneck of RLP-UML (Lang et al., 2024, after Federici et al., 2020) on a
// reward model's final hidden state: two views v1 = (x, y_i), v2 = (x, y_j) of one instruction, a Gaussian
// encoder p(z | v) = N(μ(h), diag σ(h)²) of each view's hidden state h, and
//   L_M = −I_JSD(z1; z2) + β · D_SKL(p(z | v1) ‖ p(z | v2)).
// Gradients come out for the encoder's and critic's parameters and for h (dL/dh), which the engine carries
// into the reward model (engine.backward({ dhidden })).
//
// Choices the papers leave open, as made here:
// - One encoder for both views (the views are exchangeable: two responses to the same instruction).
// - μ and σ are two one-hidden-layer MLPs (ReLU) of h; σ = softplus(·) + 1e-7, as the MIB code does.
// - z = μ + σ ⊙ ε, ε ~ N(0, I) (reparameterized, seeded by the caller).
// - I_JSD (Hjelm et al., 2019): E_pos[−softplus(−T(z1, z2))] − E_neg[softplus(T(z1, z2'))], T a one-hidden-layer
//   MLP critic on the concatenation [z1; z2]; negatives pair z1 of instruction i with z2 of instruction i+1 of
//   the batch (a roll by one, as the MIB code). The estimate is ≤ 0 and rises toward 0 as the views agree.
// - D_SKL = ½ (KL(p1 ‖ p2) + KL(p2 ‖ p1)), in closed form for diagonal Gaussians (the MIB code samples it),
//   summed over latent dimensions, averaged over the batch.
// - The encoder and critic train with their own Adam (lr `lr`), the reward model with its AdamW.
// Everything is float64; the batch is small (instructions × hidden size × encoder width).
import { seededUniform } from './common.ts';

export interface MultiViewIBConfig {
  /** Latent dimensions of z. */
  latentDim: number;
  /** Width of the μ, σ and critic MLPs. */
  hiddenDim: number;
  /** β, weight of the symmetric KL against the mutual information. */
  beta: number;
  /** Adam learning rate of the encoder and critic. */
  lr: number;
  /** Seed of the initial weights. */
  seed: number;
}

export const MULTIVIEW_IB_DEFAULTS: Readonly<MultiViewIBConfig> = Object.freeze({ latentDim: 32, hiddenDim: 64, beta: 1, lr: 1e-3, seed: 1 });

export interface MultiViewIBStats {
  /** L_M = −mi + β · skl */
  loss: number;
  /** I_JSD estimate (≤ 0). */
  mi: number;
  /** symmetric KL, per instruction */
  skl: number;
}

const sp = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Named slices of one flat parameter vector. */
interface Layout { [name: string]: { offset: number; rows: number; cols: number } }

/** Standard normal draws from a seeded uniform stream (Box-Muller). */
export function gaussian(n: number, ...keys: number[]): Float64Array {
  const u = seededUniform(...keys), out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const a = Math.max(u(), 1e-300), b = u();
    const r = Math.sqrt(-2 * Math.log(a));
    out[i] = r * Math.cos(2 * Math.PI * b);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * b);
  }
  return out;
}

export class MultiViewIB {
  readonly cfg: MultiViewIBConfig;
  readonly inputDim: number;
  readonly params: Float64Array;
  readonly grads: Float64Array;
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;
  private readonly L: Layout = {};

  constructor(inputDim: number, config: Partial<MultiViewIBConfig> = {}) {
    const c = { ...MULTIVIEW_IB_DEFAULTS, ...config };
    for (const k of ['latentDim', 'hiddenDim'] as const) if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`multi-view IB: ${k} must be an integer >= 1, got ${c[k]}`);
    if (!(c.beta >= 0)) throw new Error(`multi-view IB: beta must be >= 0, got ${c.beta}`);
    if (!(c.lr >= 0)) throw new Error(`multi-view IB: lr must be >= 0, got ${c.lr}`);
    if (!Number.isInteger(inputDim) || inputDim < 1) throw new Error(`multi-view IB: input dimension must be an integer >= 1, got ${inputDim}`);
    this.cfg = c;
    this.inputDim = inputDim;
    const C = inputDim, H = c.hiddenDim, D = c.latentDim;
    let off = 0;
    const add = (name: string, rows: number, cols: number) => { this.L[name] = { offset: off, rows, cols }; off += rows * cols; };
    add('mu.w1', H, C); add('mu.b1', H, 1); add('mu.w2', D, H); add('mu.b2', D, 1);
    add('sigma.w1', H, C); add('sigma.b1', H, 1); add('sigma.w2', D, H); add('sigma.b2', D, 1);
    add('critic.w1', H, 2 * D); add('critic.b1', H, 1); add('critic.w2', 1, H); add('critic.b2', 1, 1);
    this.params = new Float64Array(off);
    this.grads = new Float64Array(off);
    this.m = new Float64Array(off);
    this.v = new Float64Array(off);
    // weights ~ N(0, 1/fan_in), biases 0
    let k = 0;
    for (const [name, s] of Object.entries(this.L)) {
      k++;
      if (name.endsWith('.b1') || name.endsWith('.b2')) continue;
      const g = gaussian(s.rows * s.cols, c.seed, 7919, k);
      const scale = 1 / Math.sqrt(s.cols);
      for (let i = 0; i < g.length; i++) this.params[s.offset + i] = g[i] * scale;
    }
  }

  /** A view of one named parameter block ('mu.w1', 'critic.b2', ...), row-major [rows, cols]. */
  block(name: string, of: Float64Array = this.params): Float64Array {
    const s = this.L[name];
    if (!s) throw new Error(`multi-view IB: no parameter ${name}`);
    return of.subarray(s.offset, s.offset + s.rows * s.cols);
  }
  get names(): string[] { return Object.keys(this.L); }

  /**
   * L_M of a batch of view pairs: h1, h2 are [B, inputDim] (row i: two responses to instruction i), eps1, eps2
   * [B, latentDim] standard normal noise. Accumulates parameter gradients into `grads` (scaled by `scale`) and
   * returns dL/dh1, dL/dh2 (also scaled by `scale`: pass λ to get the gradients of λ·L_M).
   */
  forwardBackward(h1: ArrayLike<number>, h2: ArrayLike<number>, eps1: ArrayLike<number>, eps2: ArrayLike<number>, scale = 1):
    MultiViewIBStats & { dh1: Float64Array; dh2: Float64Array } {
    return this.run(h1, h2, eps1, eps2, scale, true) as MultiViewIBStats & { dh1: Float64Array; dh2: Float64Array };
  }
  /** The loss alone (no gradients). */
  loss(h1: ArrayLike<number>, h2: ArrayLike<number>, eps1: ArrayLike<number>, eps2: ArrayLike<number>): MultiViewIBStats {
    return this.run(h1, h2, eps1, eps2, 1, false);
  }

  zeroGrad(): void { this.grads.fill(0); }

  /** One Adam step of the encoder and critic (β1 0.9, β2 0.999, ε 1e-8) on the accumulated gradients. */
  step(): void {
    this.t++;
    const lr = this.cfg.lr, b1 = 0.9, b2 = 0.999, bc1 = 1 - b1 ** this.t, bc2 = 1 - b2 ** this.t;
    for (let i = 0; i < this.params.length; i++) {
      const g = this.grads[i];
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      this.params[i] -= (lr * this.m[i] / bc1) / (Math.sqrt(this.v[i] / bc2) + 1e-8);
    }
  }

  /** Plain-JSON state (weights, Adam moments, step) for checkpoints; float64 values round-trip exactly. */
  state(): { t: number; params: number[]; m: number[]; v: number[] } {
    return { t: this.t, params: Array.from(this.params), m: Array.from(this.m), v: Array.from(this.v) };
  }
  restore(s: { t: number; params: number[]; m: number[]; v: number[] }): void {
    if (s.params.length !== this.params.length) throw new Error(`multi-view IB: a checkpoint of ${s.params.length} parameters, this encoder has ${this.params.length}`);
    this.t = s.t;
    this.params.set(s.params); this.m.set(s.m); this.v.set(s.v);
  }

  private run(h1: ArrayLike<number>, h2: ArrayLike<number>, eps1: ArrayLike<number>, eps2: ArrayLike<number>, scale: number, grad: boolean) {
    const C = this.inputDim, H = this.cfg.hiddenDim, D = this.cfg.latentDim, beta = this.cfg.beta;
    const B = h1.length / C;
    if (!Number.isInteger(B) || B < 2 || h2.length !== h1.length) throw new Error(`multi-view IB: h1 and h2 must be [B, ${C}] with B >= 2 (negatives come from the other instructions), got ${h1.length} and ${h2.length} values`);
    if (eps1.length !== B * D || eps2.length !== B * D) throw new Error(`multi-view IB: eps1 and eps2 must be [${B}, ${D}]`);
    const P = this.params, G = this.grads;
    const w = (n: string) => this.block(n), gw = (n: string) => this.block(n, G);
    // encoder forward of one view
    const encode = (h: ArrayLike<number>, eps: ArrayLike<number>) => {
      const am = new Float64Array(B * H), as = new Float64Array(B * H), mu = new Float64Array(B * D), pre = new Float64Array(B * D);
      const sigma = new Float64Array(B * D), z = new Float64Array(B * D);
      for (const [a, w1, b1] of [[am, w('mu.w1'), w('mu.b1')], [as, w('sigma.w1'), w('sigma.b1')]] as const)
        for (let i = 0; i < B; i++) for (let j = 0; j < H; j++) {
          let s = b1[j];
          for (let c = 0; c < C; c++) s += w1[j * C + c] * h[i * C + c];
          a[i * H + j] = s;
        }
      for (const [a, out, w2, b2] of [[am, mu, w('mu.w2'), w('mu.b2')], [as, pre, w('sigma.w2'), w('sigma.b2')]] as const)
        for (let i = 0; i < B; i++) for (let d = 0; d < D; d++) {
          let s = b2[d];
          for (let j = 0; j < H; j++) s += w2[d * H + j] * Math.max(0, a[i * H + j]);
          out[i * D + d] = s;
        }
      for (let k = 0; k < B * D; k++) { sigma[k] = sp(pre[k]) + 1e-7; z[k] = mu[k] + sigma[k] * eps[k]; }
      return { am, as, mu, pre, sigma, z };
    };
    const e1 = encode(h1, eps1), e2 = encode(h2, eps2);
    // critic on pairs (z1_i, z2_p(i)): p = identity for positives, roll by one for negatives
    const cw1 = w('critic.w1'), cb1 = w('critic.b1'), cw2 = w('critic.w2'), cb2 = w('critic.b2');
    const critic = (i: number, k: number) => {
      const u = new Float64Array(H);
      let T = cb2[0];
      for (let j = 0; j < H; j++) {
        let s = cb1[j];
        for (let d = 0; d < D; d++) s += cw1[j * 2 * D + d] * e1.z[i * D + d] + cw1[j * 2 * D + D + d] * e2.z[k * D + d];
        u[j] = s;
        T += cw2[j] * Math.max(0, s);
      }
      return { u, T };
    };
    const pos = Array.from({ length: B }, (_, i) => critic(i, i)), neg = Array.from({ length: B }, (_, i) => critic(i, (i + 1) % B));
    let mi = 0;
    for (let i = 0; i < B; i++) mi += -sp(-pos[i].T) / B - sp(neg[i].T) / B;
    let skl = 0;
    for (let k = 0; k < B * D; k++) {
      const a = e1.sigma[k] ** 2, b = e2.sigma[k] ** 2, dm = (e1.mu[k] - e2.mu[k]) ** 2;
      skl += 0.5 * ((a + dm) / (2 * b) + (b + dm) / (2 * a) - 1) / B;
    }
    const stats = { loss: -mi + beta * skl, mi, skl };
    if (!grad) return stats;

    // ---- backward (everything scaled by `scale`)
    const dz1 = new Float64Array(B * D), dz2 = new Float64Array(B * D);
    const gw1 = gw('critic.w1'), gb1 = gw('critic.b1'), gw2 = gw('critic.w2'), gb2 = gw('critic.b2');
    const criticBack = (i: number, k: number, u: Float64Array, dT: number) => {
      gb2[0] += dT;
      for (let j = 0; j < H; j++) {
        if (u[j] <= 0) continue;
        gw2[j] += dT * u[j];
        const du = dT * cw2[j];
        gb1[j] += du;
        for (let d = 0; d < D; d++) {
          gw1[j * 2 * D + d] += du * e1.z[i * D + d];
          gw1[j * 2 * D + D + d] += du * e2.z[k * D + d];
          dz1[i * D + d] += du * cw1[j * 2 * D + d];
          dz2[k * D + d] += du * cw1[j * 2 * D + D + d];
        }
      }
    };
    // L = −mi: dL/dT_pos = −σ(−T)/B, dL/dT_neg = σ(T)/B
    for (let i = 0; i < B; i++) {
      criticBack(i, i, pos[i].u, (-sig(-pos[i].T) / B) * scale);
      criticBack(i, (i + 1) % B, neg[i].u, (sig(neg[i].T) / B) * scale);
    }
    const dmu1 = new Float64Array(B * D), dmu2 = new Float64Array(B * D), ds1 = new Float64Array(B * D), ds2 = new Float64Array(B * D);
    for (let k = 0; k < B * D; k++) {
      dmu1[k] = dz1[k]; dmu2[k] = dz2[k];
      ds1[k] = dz1[k] * eps1[k]; ds2[k] = dz2[k] * eps2[k];
      // β · SKL terms
      const s1 = e1.sigma[k], s2 = e2.sigma[k], a = s1 * s1, b = s2 * s2, diff = e1.mu[k] - e2.mu[k], dm = diff * diff, f = (beta * scale) / B;
      const dmu = f * 0.5 * (diff / b + diff / a);
      dmu1[k] += dmu; dmu2[k] -= dmu;
      ds1[k] += f * 0.5 * (s1 / b - ((b + dm) * s1) / (a * a));
      ds2[k] += f * 0.5 * (s2 / a - ((a + dm) * s2) / (b * b));
    }
    const encodeBack = (h: ArrayLike<number>, e: ReturnType<typeof encode>, dmu: Float64Array, dsigma: Float64Array) => {
      const dh = new Float64Array(B * C);
      const dpre = dsigma.map((x, k) => x * sig(e.pre[k]));
      for (const [a, dout, which] of [[e.am, dmu, 'mu'], [e.as, dpre, 'sigma']] as const) {
        const w1 = w(`${which}.w1`), w2 = w(`${which}.w2`), gw1_ = gw(`${which}.w1`), gb1_ = gw(`${which}.b1`), gw2_ = gw(`${which}.w2`), gb2_ = gw(`${which}.b2`);
        for (let i = 0; i < B; i++) {
          for (let d = 0; d < D; d++) gb2_[d] += dout[i * D + d];
          for (let j = 0; j < H; j++) {
            const aij = a[i * H + j];
            if (aij <= 0) continue;
            let da = 0;
            for (let d = 0; d < D; d++) { const g = dout[i * D + d]; gw2_[d * H + j] += g * aij; da += g * w2[d * H + j]; }
            gb1_[j] += da;
            for (let c = 0; c < C; c++) { gw1_[j * C + c] += da * h[i * C + c]; dh[i * C + c] += da * w1[j * C + c]; }
          }
        }
      }
      return dh;
    };
    return { ...stats, dh1: encodeBack(h1, e1, dmu1, ds1), dh2: encodeBack(h2, e2, dmu2, ds2) };
  }
}
