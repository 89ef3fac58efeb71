// One run folder per method run, as TRL's output_dir: run.json (command, config, seed, versions, input hashes,
// status), metrics.jsonl (one line per logged step, TRL's metric names), checkpoints/ (checkpoint-<step>/),
// model/ (the final checkpoint in the Hugging Face layout, with tokenizer.json) and outputs. A resumed run
// must have the same command, config and inputs; its metrics.jsonl is cut back to the checkpoint it resumes
// from, so the file ends up as an uninterrupted run's would.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../engine/index.ts';
import { writeFileAtomic } from '../data/json.ts';
import { latestCheckpoint } from './checkpoint.ts';
import { ConfigError, type TrainingWarning } from './common.ts';

export interface RunFolderOptions {
  dir: string;
  /** The command or method (`sft`, `ppo`, ...). */
  command: string;
  /** The resolved config (what decides the results); compared on resume. */
  config: Record<string, unknown>;
  seed: number;
  /** Named inputs (files or model folders); their SHA-256 goes to run.json and is compared on resume. */
  inputs: Record<string, string>;
  /** Continue the run in `dir` (a folder without a run yet starts a new one). */
  resume?: boolean;
  /** Replace whatever `dir` holds. */
  force?: boolean;
  /** Make every check (folder, resume settings and inputs), then throw DryRun instead of writing anything. */
  dryRun?: boolean;
  /** The step a resumed run continues from, for methods whose checkpoints are not plain checkpoints/checkpoint-N. */
  resumeStepOf?: (checkpointDir: string) => number | null;
}

export interface RunInfo {
  command: string;
  status: 'running' | 'completed' | 'failed';
  config: Record<string, unknown>;
  seed: number;
  inputs: Record<string, { path: string; sha256: string }>;
  versions: Record<string, unknown>;
  started: string;
  updated: string;
  /** When each resume happened and from which checkpoint step. */
  resumes: { at: string; fromStep: number | null }[];
  warnings: TrainingWarning[];
  error?: string;
  seconds?: number;
  summary?: Record<string, unknown>;
}

const KILL_AFTER = process.env.FARM_KILL_AFTER_STEP ? Number(process.env.FARM_KILL_AFTER_STEP) : null;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Versions that decide results: this package, Node, the native build, and the git commit when there is one. */
export function versions(): Record<string, unknown> {
  let pkg = 'unknown';
  try { pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version; } catch { /* not packaged */ }
  let commit: string | null = null;
  try {
    const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 2000 });
    if (r.status === 0) commit = r.stdout.trim();
  } catch { /* no git */ }
  const b = Engine.buildInfo();
  return { 'alpacafarm-ts': pkg, node: process.version, engine: { version: b.version, gemm: b.gemm, openmp: b.openmp, cuda: b.cuda }, git_commit: commit };
}

/** SHA-256 of a file, or of a folder's files (names and contents, sorted; checkpoints/ and run logs left out). */
export function hashPath(path: string): string {
  if (!existsSync(path)) throw new ConfigError(`${path}: no such file or folder`);
  const h = createHash('sha256');
  if (statSync(path).isDirectory()) {
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d).sort()) {
        if (rel === '' && ['checkpoints', 'metrics.jsonl', 'run.json'].includes(name)) continue;
        const p = join(d, name);
        if (statSync(p).isDirectory()) walk(p, `${rel}${name}/`);
        else h.update(`${rel}${name}\0`).update(readFileSync(p)).update('\0');
      }
    };
    walk(path, '');
  } else h.update(readFileSync(path));
  return h.digest('hex');
}

/** Differences between two JSON values, as "path: a -> b" lines (for resume refusals). */
function diff(a: unknown, b: unknown, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return [`${path || '(root)'}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`];
}

/** Thrown by RunFolder.open({ dryRun: true }) once every check passed: nothing was written. */
export class DryRun extends Error {
  constructor(readonly dir: string, readonly resumeFrom: number | null) {
    super(`dry run: every input and setting checked${resumeFrom !== null ? `, would resume ${dir} from step ${resumeFrom}` : `, would write ${dir}`}; nothing written`);
    this.name = 'DryRun';
  }
}

export class RunFolder {
  readonly dir: string;
  readonly info: RunInfo;
  /** Step of the checkpoint a resumed run continues from (null: from the start). */
  readonly resumeStep: number | null;
  private readonly t0 = performance.now();

  private constructor(dir: string, info: RunInfo, resumeStep: number | null) {
    this.dir = dir;
    this.info = info;
    this.resumeStep = resumeStep;
  }

  get checkpointDir(): string { return join(this.dir, 'checkpoints'); }
  get modelDir(): string { return join(this.dir, 'model'); }
  get metricsFile(): string { return join(this.dir, 'metrics.jsonl'); }
  path(...parts: string[]): string { return join(this.dir, ...parts); }

  /** Opens (or creates) the run folder; refuses before any work when the folder does not fit the request. */
  static open(o: RunFolderOptions): RunFolder {
    const dir = o.dir;
    const runFile = join(dir, 'run.json');
    const nonEmpty = existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new ConfigError(`--output-dir ${dir} is a file, not a folder`);
    const inputs = Object.fromEntries(Object.entries(o.inputs).map(([k, p]) => [k, { path: p, sha256: hashPath(p) }]));
    const now = new Date().toISOString();
    if (nonEmpty && o.force) { if (!o.dryRun) rmSync(dir, { recursive: true, force: true }); }
    else if (nonEmpty && !existsSync(runFile)) throw new ConfigError(`--output-dir ${dir} is not empty and holds no run (no run.json); choose another folder or pass --force to replace it`);
    else if (nonEmpty && !o.resume) throw new ConfigError(`--output-dir ${dir} already holds a ${readInfo(runFile)?.command ?? ''} run; pass --resume to continue it or --force to start over`);
    if (existsSync(runFile) && o.resume) {
      const old = readInfo(runFile);
      if (!old) throw new ConfigError(`${runFile} is not a valid run.json`);
      const problems: string[] = [];
      if (old.command !== o.command) problems.push(`command: ${old.command} -> ${o.command}`);
      problems.push(...diff(old.config, o.config).map((d) => `config.${d}`));
      if (old.seed !== o.seed) problems.push(`seed: ${old.seed} -> ${o.seed}`);
      for (const [k, v] of Object.entries(inputs)) if (old.inputs[k]?.sha256 !== v.sha256) problems.push(`input ${k} (${v.path}) ${old.inputs[k] ? 'changed' : 'is new'}`);
      for (const k of Object.keys(old.inputs)) if (!(k in inputs)) problems.push(`input ${k} is missing`);
      if (problems.length) throw new ConfigError(`cannot resume ${dir}: the run was started differently:\n  ${problems.join('\n  ')}\nuse the original settings, or another --output-dir`);
      const step = (o.resumeStepOf ?? latestCheckpoint)(join(dir, 'checkpoints'));
      if (o.dryRun) throw new DryRun(dir, step);
      const info: RunInfo = { ...old, status: 'running', updated: now, resumes: [...(old.resumes ?? []), { at: now, fromStep: step }], error: undefined };
      const run = new RunFolder(dir, info, step);
      run.truncateMetrics(step ?? 0);
      run.save();
      return run;
    }
    if (o.dryRun) throw new DryRun(dir, null);
    mkdirSync(dir, { recursive: true });
    const info: RunInfo = { command: o.command, status: 'running', config: o.config, seed: o.seed, inputs, versions: versions(), started: now, updated: now, resumes: [], warnings: [] };
    const run = new RunFolder(dir, info, null);
    writeFileSync(run.metricsFile, '');
    run.save();
    return run;
  }

  /** Appends one metrics line (numbers and short strings only). */
  log(record: Record<string, unknown>): void {
    appendFileSync(this.metricsFile, `${JSON.stringify(record)}\n`);
    // Fault injection for the resume tests: a real SIGKILL right after this step's line.
    if (KILL_AFTER !== null && record.step === KILL_AFTER) process.kill(process.pid, 'SIGKILL');
  }

  warn(w: TrainingWarning): void {
    this.info.warnings.push(w);
    this.save();
  }

  /** Marks the run completed with a summary (final metrics, output files). */
  finish(summary: Record<string, unknown>): void {
    this.info.status = 'completed';
    this.info.summary = summary;
    this.info.seconds = (performance.now() - this.t0) / 1000;
    this.save();
  }

  fail(err: unknown): void {
    this.info.status = 'failed';
    this.info.error = err instanceof Error ? err.message : String(err);
    this.save();
  }

  private save(): void {
    this.info.updated = new Date().toISOString();
    writeFileAtomic(join(this.dir, 'run.json'), `${JSON.stringify(this.info, null, 2)}\n`);
  }

  /** Keeps the lines of steps <= `step` (and drops a torn last line). */
  private truncateMetrics(step: number): void {
    if (!existsSync(this.metricsFile)) { writeFileSync(this.metricsFile, ''); return; }
    const keep = readFileSync(this.metricsFile, 'utf8').split('\n').filter((line) => {
      if (!line.trim()) return false;
      try { const r = JSON.parse(line); return typeof r.step !== 'number' || r.step <= step; } catch { return false; }
    });
    writeFileAtomic(this.metricsFile, keep.map((l) => `${l}\n`).join(''));
  }
}

function readInfo(file: string): RunInfo | null {
  try { return JSON.parse(readFileSync(file, 'utf8')) as RunInfo; } catch { return null; }
}

/** Reads a metrics.jsonl file (torn lines skipped). */
export function readMetrics(file: string): Record<string, number>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').flatMap((l) => { try { return l.trim() ? [JSON.parse(l)] : []; } catch { return []; } });
}
