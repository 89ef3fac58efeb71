// KL coefficient controllers for PPO (Ziegler et al. 2019, as in AlpacaFarm and TRL): fixed, or adaptive with a
// clipped proportional error. Their state is plain JSON, so a run can be saved and resumed.

export type KLControllerState =
  | { kind: 'fixed'; value: number }
  | { kind: 'adaptive'; value: number; target: number; horizon: number; clip: number };

export interface KLController {
  /** Current coefficient β. */
  readonly value: number;
  /** Updates β from the measured KL (mean over rollouts of the summed per-token KL) after nSteps rollouts. */
  update(currentKl: number, nSteps: number): void;
  state(): KLControllerState;
  /** Restores a saved state (same kind). */
  restore(s: KLControllerState): void;
}

function checkCoef(v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new Error(`KL coefficient must be a finite number >= 0, got ${v}`);
}

export class FixedKLController implements KLController {
  value: number;
  constructor(value: number) { checkCoef(value); this.value = value; }
  update(currentKl: number, nSteps: number): void { checkUpdate(currentKl, nSteps); }
  state(): KLControllerState { return { kind: 'fixed', value: this.value }; }
  restore(s: KLControllerState): void {
    if (s.kind !== 'fixed') throw new Error(`cannot restore a '${s.kind}' KL controller state into a fixed controller`);
    checkCoef(s.value);
    this.value = s.value;
  }
}

/**
 * β ← β·(1 + clip(KL/target − 1, −clip, clip)·nSteps/horizon). AlpacaFarm: target 6, horizon 10000, clip 0.2.
 */
export class AdaptiveKLController implements KLController {
  value: number;
  target: number;
  horizon: number;
  clip: number;
  constructor(o: { init: number; target: number; horizon: number; clip?: number }) {
    checkCoef(o.init);
    if (!(o.target > 0) || !Number.isFinite(o.target)) throw new Error(`KL target must be > 0, got ${o.target}`);
    if (!(o.horizon > 0) || !Number.isFinite(o.horizon)) throw new Error(`KL horizon must be > 0, got ${o.horizon}`);
    const clip = o.clip ?? 0.2;
    if (!(clip >= 0) || !Number.isFinite(clip)) throw new Error(`KL proportional-error clip must be >= 0, got ${clip}`);
    this.value = o.init;
    this.target = o.target;
    this.horizon = o.horizon;
    this.clip = clip;
  }
  update(currentKl: number, nSteps: number): void {
    checkUpdate(currentKl, nSteps);
    const err = Math.min(Math.max(currentKl / this.target - 1, -this.clip), this.clip);
    this.value *= 1 + (err * nSteps) / this.horizon;
  }
  state(): KLControllerState {
    return { kind: 'adaptive', value: this.value, target: this.target, horizon: this.horizon, clip: this.clip };
  }
  restore(s: KLControllerState): void {
    if (s.kind !== 'adaptive') throw new Error(`cannot restore a '${s.kind}' KL controller state into an adaptive controller`);
    const c = new AdaptiveKLController({ init: s.value, target: s.target, horizon: s.horizon, clip: s.clip });  // validates
    Object.assign(this, { value: c.value, target: c.target, horizon: c.horizon, clip: c.clip });
  }
}

function checkUpdate(kl: number, n: number): void {
  if (!Number.isFinite(kl)) throw new Error(`KL controller update: current KL must be finite, got ${kl}`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`KL controller update: nSteps must be an integer >= 0, got ${n}`);
}

/** Builds a controller from a saved state. */
export function klControllerFromState(s: KLControllerState): KLController {
  if (s.kind === 'fixed') return new FixedKLController(s.value);
  if (s.kind === 'adaptive') return new AdaptiveKLController({ init: s.value, target: s.target, horizon: s.horizon, clip: s.clip });
  throw new Error(`unknown KL controller kind '${(s as { kind: string }).kind}'`);
}
