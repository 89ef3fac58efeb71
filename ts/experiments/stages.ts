// Stages cached by content. A stage's key hashes its name, code version, config and the keys of the stages
// it reads; its files live in <root>/stages/<name>/<key>/ and a stage.json written last marks it finished.
// A rerun skips finished stages; a changed config changes the key of that stage and of every stage after it
// in the dependency graph (and only those); an interrupted stage finds its folder without stage.json and
// runs again with resume set, so training continues from its last checkpoint.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../data/json.ts';
import type { Progress } from '../methods/jobs.ts';

export interface StageContext {
  /** This stage's folder (created). */
  dir: string;
  /** True when the folder holds an interrupted attempt: continue it. */
  resume: boolean;
  /** A finished dependency: its folder and result. */
  dep(name: string): { dir: string; result: Record<string, unknown> };
  progress: Progress;
}

export interface Stage {
  /** Unique in the pipeline; '/' separates levels (e.g. 'ppo/pool-train'). */
  name: string;
  /** Kind, for the progress line and the ETA table (e.g. 'ppo'). */
  kind: string;
  /** Stages whose outputs this one reads. */
  deps: string[];
  /** Everything besides the deps that decides the result (plain JSON). */
  config: unknown;
  /** Bump when the stage's code changes what it produces. */
  version?: number;
  run(ctx: StageContext): Promise<Record<string, unknown>>;
}

export interface StageRecord { name: string; kind: string; key: string; dir: string; cached: boolean; seconds: number; result: Record<string, unknown> }

export interface PipelineOptions {
  root: string;
  progress: Progress;
  /** Run only these stages (and what they depend on). */
  only?: string[];
  /** Rough seconds per stage kind, for the overall ETA. */
  cost?: Record<string, number>;
  /** Called when a stage starts, with its position and the pipeline's ETA (seconds, NaN when unknown). */
  onStage?: (s: { index: number; total: number; name: string; cached: boolean; etaSeconds: number }) => void;
}

const stable = (v: unknown): string => JSON.stringify(v, (_, x) => (x && typeof x === 'object' && !Array.isArray(x)
  ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]])) : x === undefined ? null : x));

/** Keys of every stage, in order; throws on unknown or later dependencies (the list must be topologically sorted). */
export function stageKeys(stages: Stage[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const s of stages) {
    if (keys.has(s.name)) throw new Error(`pipeline: stage "${s.name}" is defined twice`);
    const deps = s.deps.map((d) => {
      const k = keys.get(d);
      if (!k) throw new Error(`pipeline: stage "${s.name}" depends on "${d}", which is not defined before it`);
      return [d, k];
    });
    keys.set(s.name, createHash('sha256').update(stable({ name: s.name, version: s.version ?? 1, config: s.config, deps })).digest('hex').slice(0, 16));
  }
  return keys;
}

export const stageDir = (root: string, name: string, key: string) => join(root, 'stages', ...name.split('/'), key);

/** The stages `only` needs (themselves and their dependencies, transitively), in pipeline order. */
export function selectStages(stages: Stage[], only?: string[]): Stage[] {
  if (!only?.length) return stages;
  const byName = new Map(stages.map((s) => [s.name, s]));
  const want = new Set<string>();
  const add = (n: string) => {
    const s = byName.get(n);
    if (!s) {
      const prefix = stages.filter((x) => x.name === n || x.name.startsWith(`${n}/`));
      if (!prefix.length) throw new Error(`no stage "${n}"; stages: ${stages.map((x) => x.name).join(', ')}`);
      prefix.forEach((x) => add(x.name));
      return;
    }
    if (want.has(n)) return;
    want.add(n);
    s.deps.forEach(add);
  };
  only.forEach(add);
  return stages.filter((s) => want.has(s.name));
}

/** Rewrites strings that start with `from` (a saved stage folder) to start with `to`. */
function rebase(v: unknown, from: string, to: string): unknown {
  if (typeof v === 'string') return from !== to && v.startsWith(from) ? to + v.slice(from.length) : v;
  if (Array.isArray(v)) return v.map((x) => rebase(x, from, to));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rebase(x, from, to)]));
  return v;
}

/** Runs the stages in order, skipping finished ones. Returns a record per stage (folders absolute). */
export async function runStages(all: Stage[], opts: PipelineOptions): Promise<StageRecord[]> {
  const o = { ...opts, root: resolve(opts.root) };
  const keys = stageKeys(all);
  const stages = selectStages(all, o.only);
  const records = new Map<string, StageRecord>();
  const isDone = (s: Stage) => existsSync(join(stageDir(o.root, s.name, keys.get(s.name)!), 'stage.json'));
  const cost = (s: Stage) => o.cost?.[s.kind] ?? 1;
  const remaining = stages.filter((s) => !isDone(s));
  let doneCost = 0, doneSeconds = 0;
  const leftCost = () => remaining.reduce((a, s) => a + cost(s), 0);
  for (const [i, s] of stages.entries()) {
    const key = keys.get(s.name)!;
    const dir = stageDir(o.root, s.name, key);
    const marker = join(dir, 'stage.json');
    if (existsSync(marker)) {
      const saved = JSON.parse(readFileSync(marker, 'utf8')) as StageRecord;
      // paths in a result point into the stage's folder, which may have moved with the run folder
      const result = rebase(saved.result, saved.dir, dir) as Record<string, unknown>;
      records.set(s.name, { ...saved, result, name: s.name, kind: s.kind, key, dir, cached: true });
      o.onStage?.({ index: i + 1, total: stages.length, name: s.name, cached: true, etaSeconds: NaN });
      continue;
    }
    // the preset's rough seconds until a fifth of the work is done, then scaled by how fast this machine was
    const total = doneCost + leftCost();
    const eta = doneCost >= 0.2 * total ? (doneSeconds / doneCost) * leftCost() : leftCost();
    o.onStage?.({ index: i + 1, total: stages.length, name: s.name, cached: false, etaSeconds: eta });
    const resume = existsSync(dir);
    mkdirSync(dir, { recursive: true });
    const t0 = performance.now();
    const ctx: StageContext = {
      dir, resume, progress: o.progress,
      dep: (name) => {
        if (!s.deps.includes(name)) throw new Error(`stage "${s.name}" reads "${name}" without declaring it as a dependency`);
        const r = records.get(name);
        if (!r) throw new Error(`stage "${s.name}": dependency "${name}" has not run`);
        return { dir: r.dir, result: r.result };
      },
    };
    const result = await s.run(ctx);
    const seconds = (performance.now() - t0) / 1000;
    const rec: StageRecord = { name: s.name, kind: s.kind, key, dir, cached: false, seconds, result };
    writeFileAtomic(marker, `${JSON.stringify({ ...rec, config: s.config, deps: s.deps, finished: new Date().toISOString() }, null, 1)}\n`);
    records.set(s.name, rec);
    remaining.splice(remaining.indexOf(s), 1);
    doneCost += cost(s); doneSeconds += seconds;
  }
  return stages.map((s) => records.get(s.name)!);
}
