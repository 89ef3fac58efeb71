// Reads a run folder of `farm run`, `farm validate` or a single method command into plain data. Files only:
// no engine, no world. Every part is optional; what could not be read is recorded with the reason, so a
// report of a half-finished or trimmed folder still says what is missing and why.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Annotation } from '../feedback/types.ts';

export type FolderKind = 'run' | 'validate' | 'method' | 'unknown';
export type Json = Record<string, unknown>;
export type MetricRow = Record<string, number>;

/** One stage of a pipeline, its folder resolved inside this run folder (so a moved folder still reads). */
export interface StageInfo {
  name: string;
  kind: string;
  key: string;
  dir: string;
  cached: boolean;
  /** Seconds the stage took when it ran (stage.json), not the cache look-up of a rerun. */
  seconds: number;
  result: Json;
  /** The training method for method stages, the evaluated method for evaluate/outputs stages. */
  method: string | null;
  /** Feedback slug (`pool-train`, `panel`, a judge name), null for SFT and feedback-free stages. */
  feedback: string | null;
}

/** A method run folder (run.json + metrics.jsonl), a pipeline stage's run/ or the folder itself. */
export interface TrainingRun {
  /** Stage name (`ppo/pool-train`) or the command of a lone run folder. */
  name: string;
  method: string;
  feedback: string | null;
  dir: string;
  metrics: MetricRow[];
  runJson: Json | null;
}

export interface WinRate { win_rate: number; standard_error: number; n: number }
export interface Gold { mean: number; standard_error: number; reference?: number; n?: number }

export interface EvaluationInfo {
  stage: string;
  method: string;
  feedback: string | null;
  /** Evaluator name -> the annotation file's records (loaded on demand by `annotations`). */
  annotationFiles: Record<string, string>;
  result: Json;
}

export interface RunFolder {
  dir: string;
  kind: FolderKind;
  /** `farm run`, `farm validate`, or the method command (`ppo`, `dpo`, ...). */
  command: string | null;
  preset: string | null;
  seed: number | null;
  pipeline: Json | null;
  results: Json | null;
  runJson: Json | null;
  stages: StageInfo[];
  training: TrainingRun[];
  evaluations: EvaluationInfo[];
  /** Model outputs per (method, feedback): from outputs stages, or the folder's own model_outputs.json. */
  outputs: { name: string; method: string; feedback: string | null; file: string }[];
  /** Problems met while reading (unparsable files, stale paths), shown in the report. */
  problems: string[];
  /** Files looked for and not found, by what they would have given. */
  absent: string[];
}

export function readJson(file: string, problems: string[]): Json | null {
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
    problems.push(`${file}: not a JSON object`);
  } catch (e) {
    problems.push(`${file}: ${(e as Error).message}`);
  }
  return null;
}

export function readJsonArray<T = Json>(file: string, problems: string[]): T[] {
  if (!existsSync(file)) return [];
  try {
    const text = readFileSync(file, 'utf8');
    const trimmed = text.trimStart();
    if (trimmed.startsWith('[')) return JSON.parse(trimmed) as T[];
    return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
  } catch (e) {
    problems.push(`${file}: ${(e as Error).message}`);
    return [];
  }
}

/** metrics.jsonl: one object per line; bad lines (a killed writer's last line) are skipped and counted. */
export function readMetrics(file: string, problems: string[]): MetricRow[] {
  if (!existsSync(file)) return [];
  const rows: MetricRow[] = [];
  let bad = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === 'object') rows.push(v as MetricRow);
      else bad++;
    } catch { bad++; }
  }
  if (bad) problems.push(`${file}: ${bad} unreadable line${bad === 1 ? '' : 's'} skipped`);
  return rows;
}

const TRAINING_KINDS = new Set(['sft', 'reward-model', 'ppo', 'quark', 'dpo', 'feedme', 'reward-conditioning', 'expert-iteration', 'overopt-ppo']);

/** (method, feedback) of a stage name: `ppo/pool-train`, `evaluate/ppo/pool-train`, `outputs/sft`, `sft`. */
function parseStageName(kind: string, name: string): { method: string | null; feedback: string | null } {
  const parts = name.split('/');
  if (kind === 'evaluate' || kind === 'outputs') return { method: parts[1] ?? null, feedback: parts[2] ?? null };
  if (kind === 'overopt-ppo') return { method: 'ppo', feedback: parts[1] ?? null };
  if (kind === 'overopt-bon') return { method: 'best-of-n', feedback: parts[1] ?? null };
  if (parts.length === 1) return { method: kind === 'sft' ? 'sft' : null, feedback: null };
  return { method: parts[0], feedback: parts.slice(1).join('/') };
}

function num(x: unknown, fallback = NaN): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : fallback;
}

/** The stages of the pipeline's last run: pipeline.json's list, else every finished stage.json (newest per name). */
function readStages(dir: string, pipeline: Json | null, problems: string[]): StageInfo[] {
  const root = join(dir, 'stages');
  const listed = Array.isArray(pipeline?.stages) ? (pipeline!.stages as Json[]) : null;
  const records: Json[] = [];
  if (listed) {
    for (const s of listed) {
      const name = String(s.name), key = String(s.key);
      const local = join(root, ...name.split('/'), key);
      const stageDir = existsSync(local) ? local : typeof s.dir === 'string' && existsSync(s.dir) ? s.dir : local;
      const onDisk = readJson(join(stageDir, 'stage.json'), problems);
      records.push({ ...s, ...(onDisk ?? {}), dir: stageDir, cached: s.cached, _missing: !existsSync(stageDir) });
    }
  } else if (existsSync(root)) {
    // No pipeline.json (an interrupted run): every finished stage, the newest key of each name.
    const byName = new Map<string, Json>();
    const walk = (d: string, depth: number) => {
      if (depth > 6) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const p = join(d, e.name);
        if (existsSync(join(p, 'stage.json'))) {
          const s = readJson(join(p, 'stage.json'), problems);
          if (!s || typeof s.name !== 'string') continue;
          const prev = byName.get(s.name);
          if (!prev || String(s.finished ?? '') > String(prev.finished ?? '')) byName.set(s.name, { ...s, dir: p });
        } else if (e.name !== 'run' && e.name !== 'checkpoints') walk(p, depth + 1);
      }
    };
    walk(root, 0);
    records.push(...byName.values());
  }
  return records.map((s) => {
    const name = String(s.name), kind = String(s.kind ?? name.split('/')[0]);
    if (s._missing) problems.push(`stage ${name}: folder ${String(s.dir)} not found`);
    return { name, kind, key: String(s.key ?? ''), dir: String(s.dir), cached: Boolean(s.cached), seconds: num(s.seconds, 0),
      result: (s.result && typeof s.result === 'object' ? s.result : {}) as Json, ...parseStageName(kind, name) };
  });
}

/** Reads everything a report can use from `dir`. Never throws for missing or broken files, only for a missing folder. */
export function readRunFolder(dir: string): RunFolder {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder`);
  const problems: string[] = [];
  const absent: string[] = [];
  const pipeline = readJson(join(dir, 'pipeline.json'), problems);
  const results = readJson(join(dir, 'results.json'), problems);
  const runJson = readJson(join(dir, 'run.json'), problems);
  const stages = readStages(dir, pipeline, problems);
  const hasStages = stages.length > 0;

  let kind: FolderKind = 'unknown';
  let command: string | null = null;
  if (hasStages || pipeline || results) {
    command = typeof pipeline?.command === 'string' ? pipeline.command : results && 'ranking' in results ? 'farm validate' : 'farm run';
    if (!pipeline && stages.some((s) => s.kind === 'overopt-ppo' || s.kind === 'agreement')) command = 'farm validate';
    kind = command === 'farm validate' ? 'validate' : 'run';
  } else if (runJson || existsSync(join(dir, 'metrics.jsonl')) || existsSync(join(dir, 'model_outputs.json'))) {
    kind = 'method';
    command = typeof runJson?.command === 'string' ? runJson.command : null;
  }
  if (kind !== 'method') {
    if (!pipeline) absent.push('pipeline.json (written when a pipeline finishes)');
    if (!results) absent.push('results.json (written when a pipeline finishes)');
  }

  const training: TrainingRun[] = [];
  const evaluations: EvaluationInfo[] = [];
  const outputs: RunFolder['outputs'] = [];
  for (const s of stages) {
    if (TRAINING_KINDS.has(s.kind)) {
      const runDir = join(s.dir, 'run');
      const metrics = readMetrics(join(runDir, 'metrics.jsonl'), problems);
      if (metrics.length) training.push({ name: s.name, method: s.kind === 'overopt-ppo' ? 'ppo' : s.kind, feedback: s.feedback, dir: runDir, metrics, runJson: readJson(join(runDir, 'run.json'), problems) });
    }
    if (s.kind === 'evaluate') {
      const files: Record<string, string> = {};
      if (existsSync(s.dir)) for (const f of readdirSync(s.dir)) {
        const m = /^annotations_(.+)\.json$/.exec(f);
        if (m) files[m[1]] = join(s.dir, f);
      }
      evaluations.push({ stage: s.name, method: s.method ?? String(s.result.method), feedback: s.feedback, annotationFiles: files, result: s.result });
    }
    if (s.kind === 'outputs') {
      const file = typeof s.result.outputs === 'string' && existsSync(join(s.dir, basename(s.result.outputs))) ? join(s.dir, basename(s.result.outputs)) : join(s.dir, 'model_outputs.json');
      if (existsSync(file)) outputs.push({ name: s.name, method: s.method ?? '?', feedback: s.feedback, file });
    }
    if (s.kind === 'best-of-n') {
      const file = join(s.dir, 'run', 'model_outputs.json');
      if (existsSync(file) && !outputs.some((o) => o.method === 'best-of-n' && o.feedback === s.feedback)) outputs.push({ name: s.name, method: 'best-of-n', feedback: s.feedback, file });
    }
  }
  if (kind === 'method') {
    const metrics = readMetrics(join(dir, 'metrics.jsonl'), problems);
    const method = command ?? 'method';
    if (metrics.length) training.push({ name: method, method, feedback: null, dir, metrics, runJson });
    else absent.push('metrics.jsonl');
    if (existsSync(join(dir, 'model_outputs.json'))) outputs.push({ name: method, method, feedback: null, file: join(dir, 'model_outputs.json') });
  }
  return {
    dir, kind, command, preset: typeof (pipeline?.preset ?? results?.preset) === 'string' ? String(pipeline?.preset ?? results?.preset) : null,
    seed: Number.isFinite(Number(pipeline?.seed ?? results?.seed ?? runJson?.seed)) ? Number(pipeline?.seed ?? results?.seed ?? runJson?.seed) : null,
    pipeline, results, runJson, stages, training, evaluations, outputs, problems, absent,
  };
}

/** The annotation records of one evaluation's evaluator (empty when the file is missing or broken). */
export function readAnnotations(file: string, problems: string[]): Annotation[] {
  return readJsonArray<Annotation>(file, problems).filter((a) => a && typeof a === 'object' && typeof a.output_1 === 'string' && typeof a.output_2 === 'string');
}
