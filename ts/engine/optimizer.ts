// AdamW with a learning-rate schedule and gradient-norm clipping: what every training step takes.
import { AdamW, type AdamWOptions, type Model } from './model.ts';
import { learningRate, type ScheduleOptions } from './schedule.ts';

export type OptimizerOptions = AdamWOptions & ScheduleOptions & { maxGradNorm?: number };

/** An optimizer with its learning-rate schedule and gradient clipping. */
export class Optimizer {
  readonly adamw: AdamW;
  readonly schedule: ScheduleOptions;
  readonly maxGradNorm: number;
  constructor(model: Model, opts: OptimizerOptions) {
    const { lr, warmupSteps, totalSteps, kind, minLrRatio, maxGradNorm = 1.0, ...adam } = opts;
    learningRate(0, { lr, warmupSteps, totalSteps, kind, minLrRatio });  // validates early
    this.adamw = new AdamW(model, adam);
    this.schedule = { lr, warmupSteps, totalSteps, kind, minLrRatio };
    if (!(maxGradNorm >= 0)) throw new Error(`maxGradNorm must be >= 0, got ${maxGradNorm}`);
    this.maxGradNorm = maxGradNorm;
  }
  get model(): Model { return this.adamw.model; }
  get step(): number { return this.adamw.stepCount; }
  currentLr(): number { return learningRate(this.step, this.schedule); }
}

