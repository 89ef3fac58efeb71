// Training checkpoints for resuming: every K steps a method writes checkpoint-<step>/ with its models, its
// optimizers' AdamW state and a state.json (step, data position, KL controller, counters). Randomness in the
// methods is counter-based (seed + step, epoch or episode), so those counters are the RNG state, and a resumed
// run continues bit for bit. A checkpoint is written to a .partial folder and renamed when complete, so a kill
// mid-write leaves the previous one intact.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine, Model, Optimizer } from '../engine/index.ts';

export interface CheckpointOptions {
  /** Folder holding checkpoint-<step>/ subfolders. */
  dir: string;
  /** Save every this many optimizer steps (0: only after the last step). The last step is always saved. */
  every: number;
  /** Checkpoints kept, oldest removed first (default 2). */
  keep?: number;
  /** Load the latest checkpoint of `dir` before training (none there: start from the beginning). */
  resume?: boolean;
}

/** What a checkpoint holds besides weights: the step and the method's counters (plain JSON). */
export interface CheckpointState { step: number; [key: string]: unknown }

export interface CheckpointParts {
  models: Record<string, Model>;
  optimizers: Record<string, Optimizer | undefined>;
}

const NAME = /^checkpoint-(\d+)$/;

/** Steps of the complete checkpoints in `dir`, ascending. */
export function listCheckpoints(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((n) => NAME.exec(n)).filter((m): m is RegExpExecArray => m !== null)
    .filter((m) => existsSync(join(dir, m[0], 'state.json'))).map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** The latest complete checkpoint's step, or null. */
export function latestCheckpoint(dir: string): number | null {
  const all = listCheckpoints(dir);
  return all.length ? all[all.length - 1] : null;
}

export function checkpointPath(dir: string, step: number): string { return join(dir, `checkpoint-${step}`); }

/** Reads a checkpoint's state.json. */
export function readCheckpointState(dir: string, step: number): CheckpointState {
  const file = join(checkpointPath(dir, step), 'state.json');
  try { return JSON.parse(readFileSync(file, 'utf8')) as CheckpointState; } catch (e) { throw new Error(`${file}: ${(e as Error).message}`); }
}

/** Saves and restores one method's checkpoints (see the file comment). */
export class Checkpointer {
  readonly opts: CheckpointOptions;
  constructor(private readonly engine: Engine, opts: CheckpointOptions, private readonly method: string) {
    if (!opts || typeof opts.dir !== 'string' || !opts.dir) throw new Error(`${method}: checkpoint.dir must be a folder path`);
    if (!Number.isInteger(opts.every) || opts.every < 0) throw new Error(`${method}: checkpoint.every must be an integer >= 0, got ${opts.every}`);
    if (opts.keep !== undefined && !((Number.isInteger(opts.keep) || opts.keep === Infinity) && opts.keep >= 1)) throw new Error(`${method}: checkpoint.keep must be an integer >= 1, got ${opts.keep}`);
    this.opts = opts;
  }

  /** Whether the step that just finished should be saved. */
  due(step: number, lastStep: number): boolean {
    return step === lastStep || (this.opts.every > 0 && step % this.opts.every === 0);
  }

  async save(parts: CheckpointParts, state: CheckpointState): Promise<void> {
    const final = checkpointPath(this.opts.dir, state.step);
    const tmp = `${final}.partial`;
    rmSync(tmp, { recursive: true, force: true });
    for (const [name, model] of Object.entries(parts.models)) await this.engine.saveModel(model, join(tmp, name));
    for (const [name, opt] of Object.entries(parts.optimizers)) if (opt) await this.engine.saveOptimizer(opt, join(tmp, `${name}.optimizer.safetensors`));
    writeFileSync(join(tmp, 'state.json'), `${JSON.stringify({ ...state, method: this.method }, null, 1)}\n`);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    const keep = this.opts.keep ?? 2;
    const all = listCheckpoints(this.opts.dir);
    for (const s of all.slice(0, Math.max(0, all.length - keep))) rmSync(checkpointPath(this.opts.dir, s), { recursive: true, force: true });
  }

  /**
   * With resume set, loads the latest checkpoint into the given models and optimizers and returns its state;
   * null when not resuming or when there is no checkpoint yet.
   */
  async restore(parts: CheckpointParts): Promise<CheckpointState | null> {
    if (!this.opts.resume) return null;
    const step = latestCheckpoint(this.opts.dir);
    if (step === null) return null;
    const dir = checkpointPath(this.opts.dir, step);
    const state = readCheckpointState(this.opts.dir, step);
    if (state.method !== undefined && state.method !== this.method)
      throw new Error(`${dir} was written by ${String(state.method)}, not ${this.method}: resume it with the same command`);
    for (const [name, model] of Object.entries(parts.models)) {
      const saved = await this.engine.loadModel(join(dir, name));
      try { model.copyFrom(saved); } catch (e) { throw new Error(`${join(dir, name)}: does not fit the ${name} model of this run (${(e as Error).message})`); }
    }
    for (const [name, opt] of Object.entries(parts.optimizers)) if (opt) await this.engine.loadOptimizer(opt, join(dir, `${name}.optimizer.safetensors`));
    return state;
  }
}

/** A Checkpointer when options are given, else null (methods run without checkpoints by default). */
export function checkpointer(engine: Engine, opts: CheckpointOptions | undefined, method: string): Checkpointer | null {
  return opts ? new Checkpointer(engine, opts, method) : null;
}
