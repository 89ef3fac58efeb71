// Learning-rate schedules: linear warmup, then constant, linear or cosine decay (as transformers' schedulers).
export type ScheduleKind = 'constant' | 'linear' | 'cosine';
export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warmup from 0 to lr (AlpacaFarm SFT: 3% of the steps). */
  warmupSteps?: number;
  /** Total optimizer steps (needed by linear and cosine). */
  totalSteps?: number;
  kind?: ScheduleKind;
  /** Floor of the decay as a fraction of lr (0 = decay to zero). */
  minLrRatio?: number;
}

export function learningRate(step: number, o: ScheduleOptions): number {
  const { lr, warmupSteps = 0, totalSteps = 0, kind = 'constant', minLrRatio = 0 } = o;
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`lr must be a finite number >= 0, got ${lr}`);
  if (step < warmupSteps) return (lr * (step + 1)) / (warmupSteps + 1);
  if (kind === 'constant') return lr;
  if (!(totalSteps > warmupSteps)) throw new Error(`a ${kind} schedule needs totalSteps > warmupSteps (got ${totalSteps})`);
  const progress = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
  const decay = kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return lr * (minLrRatio + (1 - minLrRatio) * decay);
}
