// Learning-rate schedules: linear warmup, then constant, linear or cosine decay (as transformers' schedulers).
export type ScheduleKind = 'constant' | 'linear' | 'cosine';
const KINDS: readonly ScheduleKind[] = ['constant', 'linear', 'cosine'];
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

/** Checks every field (not only those the first step reads), so a bad schedule fails before training. */
export function checkSchedule(o: ScheduleOptions): void {
  const { lr, warmupSteps = 0, totalSteps, kind = 'constant', minLrRatio = 0 } = o;
  if (typeof lr !== 'number' || !(lr >= 0) || !Number.isFinite(lr)) throw new Error(`lr must be a finite number >= 0, got ${lr}`);
  if (!KINDS.includes(kind)) throw new Error(`schedule kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new Error(`warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  if (totalSteps !== undefined && (!Number.isInteger(totalSteps) || totalSteps < 0)) throw new Error(`totalSteps must be an integer >= 0, got ${totalSteps}`);
  if (typeof minLrRatio !== 'number' || !(minLrRatio >= 0 && minLrRatio <= 1)) throw new Error(`minLrRatio must be in [0, 1], got ${minLrRatio}`);
  if (kind !== 'constant' && !((totalSteps ?? 0) > warmupSteps)) throw new Error(`a ${kind} schedule needs totalSteps > warmupSteps (got totalSteps ${totalSteps}, warmupSteps ${warmupSteps})`);
  if (totalSteps !== undefined && totalSteps > 0 && warmupSteps > totalSteps) throw new Error(`warmupSteps (${warmupSteps}) exceeds totalSteps (${totalSteps}): the run would end before the warmup does`);
}

export function learningRate(step: number, o: ScheduleOptions): number {
  checkSchedule(o);
  const { lr, warmupSteps = 0, totalSteps = 0, kind = 'constant', minLrRatio = 0 } = o;
  if (step < warmupSteps) return (lr * (step + 1)) / (warmupSteps + 1);
  if (kind === 'constant') return lr;
  const progress = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
  const decay = kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return lr * (minLrRatio + (1 - minLrRatio) * decay);
}
