// `farm run --preset quick|standard|paper`: the paper's pipeline with simulated feedback (the noisy pool,
// p = 0.25 flips) in one run folder, every method evaluated by the evaluation pool, the human panel and the
// gold standard, and a leaderboard shaped like AlpacaFarm's table with the paper's numbers beside ours.
//
// Run folder (default runs/<preset>):
//   results.json     leaderboard rows, reward-model and annotation figures, stage timings
//   leaderboard.md   the printed table
//   pipeline.json    every stage: name, key, folder, cached or not, seconds, result (what reports read)
//   stages/<name>/<key>/   each stage's files (a training stage's run folder is run/: run.json, metrics.jsonl, model/)
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../engine/index.ts';
import { ConfigError } from '../methods/common.ts';
import type { Progress } from '../methods/jobs.ts';
import { buildStages, METHODS, PAPER, stageNames, type MethodName, type WinRate } from './pipeline.ts';
import { presetByName, type Preset } from './presets.ts';
import { runStages, stageKeys, selectStages, stageDir, type Stage, type StageRecord } from './stages.ts';

export interface RunOptions {
  preset: string | Preset;
  /** World seed (default: the preset's); every other seed follows it. */
  seed?: number;
  outputDir: string;
  engine: Engine;
  progress: Progress;
  /** Methods to run (default: all). */
  methods?: MethodName[];
  /** Run only these stages and what they need (names or prefixes, e.g. 'ppo', 'evaluate/dpo/pool-train'). */
  only?: string[];
  /** Delete the run folder first. */
  force?: boolean;
  onStage?: Parameters<typeof runStages>[1]['onStage'];
}

/** One leaderboard row. */
export interface LeaderboardRow {
  method: MethodName | 'reference';
  label: string;
  feedback: string | null;
  /** Win-rates vs the reference outputs by each evaluator. */
  evaluations: Record<string, WinRate>;
  gold: { mean: number; standard_error: number };
  avg_length: number;
  paper: { simulated: number | null; human: number | null };
}

/** Takes the run folder's lock (one pipeline per folder at a time). */
export function lockFolder(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, '.lock');
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, 'utf8'));
    let alive = false;
    try { process.kill(pid, 0); alive = pid !== process.pid; } catch { alive = false; }
    if (alive) throw new ConfigError(`${dir} is in use by another farm process (pid ${pid}); wait for it or choose another --output-dir`);
  }
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}

export function listStages(stages: Stage[], root: string, only?: string[]) {
  const keys = stageKeys(stages);
  return selectStages(stages, only).map((s) => ({ name: s.name, kind: s.kind, key: keys.get(s.name)!, done: existsSync(join(stageDir(root, s.name, keys.get(s.name)!), 'stage.json')) }));
}

export function writePipelineFile(root: string, preset: string, seed: number, records: StageRecord[], extra: Record<string, unknown> = {}) {
  writeFileSync(join(root, 'pipeline.json'), `${JSON.stringify({ preset, seed, ...extra, stages: records.map((r) => ({ ...r, dir: r.dir })) }, null, 2)}\n`);
}

/** Rows for the methods trained on `feedback` (SFT and the reference included), sorted by the first evaluator. */
export function leaderboardRows(records: Map<string, StageRecord>, methods: readonly MethodName[], feedback: string, evaluators: string[]): LeaderboardRow[] {
  const rows: LeaderboardRow[] = [];
  let refGold = NaN;
  for (const m of methods) {
    const r = records.get(stageNames.evaluate(m, feedback));
    if (!r) continue;
    const res = r.result as Record<string, unknown> & { gold: { mean: number; standard_error: number; reference: number }; avg_length: number };
    refGold = res.gold.reference;
    rows.push({
      method: m, label: PAPER[m].label, feedback: m === 'sft' ? null : feedback,
      evaluations: Object.fromEntries(evaluators.map((e) => [e, res[e] as WinRate])), gold: res.gold, avg_length: res.avg_length,
      paper: { simulated: PAPER[m].simulated, human: PAPER[m].human },
    });
  }
  if (rows.length) rows.push({ method: 'reference', label: 'Davinci003 (reference)', feedback: null, evaluations: Object.fromEntries(evaluators.map((e) => [e, { win_rate: 50, standard_error: 0, n: 0 }])),
    gold: { mean: refGold, standard_error: 0 }, avg_length: NaN, paper: { simulated: 50, human: 50 } });
  const first = evaluators[0];
  const score = (r: LeaderboardRow) => (r.method === 'reference' ? -Infinity : r.evaluations[first]?.win_rate ?? 0);  // the reference row last
  return rows.sort((a, b) => score(b) - score(a));
}

const pm = (x: number, se: number, d = 1) => `${x.toFixed(d)} ± ${se.toFixed(d)}`;
const paperCell = (x: number | null) => (x === null ? '-' : x.toFixed(1));

/** A fixed-width table (markdown-compatible). */
export function formatTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  return [line(header), `|${w.map((x, i) => (i === 0 ? ':' : '') + '-'.repeat(x + 1) + (i === 0 ? '' : ':')).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The leaderboard of `farm run`: ours by the evaluation pool, the panel and gold, the paper's simulated and human columns beside. */
export function formatRunLeaderboard(rows: LeaderboardRow[]): string {
  return formatTable(
    ['method', 'pool (simulated)', 'panel (human)', 'gold (0-1)', 'paper simulated', 'paper human'],
    rows.map((r) => [r.label, r.method === 'reference' ? '50.0' : pm(r.evaluations.pool.win_rate, r.evaluations.pool.standard_error),
      r.method === 'reference' ? '50.0' : pm(r.evaluations.panel.win_rate, r.evaluations.panel.standard_error),
      r.method === 'reference' ? r.gold.mean.toFixed(3) : pm(r.gold.mean, r.gold.standard_error, 3), paperCell(r.paper.simulated), paperCell(r.paper.human)]),
  );
}

export interface RunResult {
  preset: string;
  seed: number;
  outputDir: string;
  leaderboard: LeaderboardRow[];
  table: string;
  rewardModel: Record<string, unknown> | null;
  annotation: Record<string, unknown> | null;
  stages: { name: string; cached: boolean; seconds: number }[];
  /** Stages that ran (not cached). */
  ran: number;
  seconds: number;
}

export async function runFarm(o: RunOptions): Promise<RunResult> {
  const preset = typeof o.preset === 'string' ? presetByName(o.preset) : o.preset;
  const seed = o.seed ?? preset.seed;
  if (!Number.isInteger(seed) || seed < 0) throw new ConfigError(`--seed must be an integer >= 0, got ${seed}`);
  const methods = o.methods ?? [...METHODS];
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new ConfigError(`unknown method "${m}"; known: ${METHODS.join(', ')}`);
  if (!methods.includes('sft')) methods.unshift('sft');  // every method starts from SFT and is compared with it
  const feedback = 'pool:train', evaluators = ['pool', 'panel'];
  const stages = buildStages({ preset, seed, feedback: [feedback], evaluators, methods, engine: o.engine, progress: o.progress });
  selectStages(stages, o.only);  // a bad --only fails before the run folder is touched
  if (o.force) rmSync(o.outputDir, { recursive: true, force: true });
  const unlock = lockFolder(o.outputDir);
  const t0 = performance.now();
  try {
    const records = await runStages(stages, { root: o.outputDir, progress: o.progress, only: o.only, cost: preset.cost, onStage: o.onStage });
    const byName = new Map(records.map((r) => [r.name, r]));
    const rows = leaderboardRows(byName, methods, feedback, evaluators);
    const table = formatRunLeaderboard(rows);
    const rm = byName.get('reward-model/pool-train')?.result ?? null, ann = byName.get('annotate/pool-train')?.result ?? null;
    const result: RunResult = {
      preset: preset.name, seed, outputDir: o.outputDir, leaderboard: rows, table, rewardModel: rm, annotation: ann,
      stages: records.map((r) => ({ name: r.name, cached: r.cached, seconds: r.seconds })), ran: records.filter((r) => !r.cached).length,
      seconds: (performance.now() - t0) / 1000,
    };
    writePipelineFile(o.outputDir, preset.name, seed, records, { command: 'farm run' });
    writeFileSync(join(o.outputDir, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(o.outputDir, 'leaderboard.md'), `${table}\n`);
    return result;
  } finally { unlock(); }
}
