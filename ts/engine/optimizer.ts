// AdamW with a learning-rate schedule and gradient-norm clipping: what every training step takes.
import { AdamW, type AdamWOptions, type Model } from './model.ts';
import { checkOptionKeys } from './options.ts';
import { checkSchedule, learningRate, type ScheduleOptions } from './schedule.ts';

export type OptimizerOptions = AdamWOptions & ScheduleOptions & { maxGradNorm?: number };

/** An optimizer with its learning-rate schedule and gradient clipping. */
export class Optimizer {
  readonly adamw: AdamW;
  readonly schedule: ScheduleOptions;
  readonly maxGradNorm: number;
  constructor(model: Model, opts: OptimizerOptions) {
    checkOptionKeys('optimizer options', opts, ['lr', 'warmupSteps', 'totalSteps', 'kind', 'minLrRatio', 'maxGradNorm', 'beta1', 'beta2', 'eps', 'weightDecay']);
    const { lr, warmupSteps, totalSteps, kind, minLrRatio, maxGradNorm = 1.0, ...adam } = opts;
    checkSchedule({ lr, warmupSteps, totalSteps, kind, minLrRatio });
    this.adamw = new AdamW(model, adam);
    this.schedule = { lr, warmupSteps, totalSteps, kind, minLrRatio };
    if (!(maxGradNorm >= 0)) throw new Error(`maxGradNorm must be >= 0, got ${maxGradNorm}`);
    this.maxGradNorm = maxGradNorm;
  }
  get model(): Model { return this.adamw.model; }
  get step(): number { return this.adamw.stepCount; }
  currentLr(): number { return learningRate(this.step, this.schedule); }
}

