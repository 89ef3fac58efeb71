// `farm judges`: the simulated judges of the farm pool, and judge analysis in the manner of alpaca_eval's
// evaluator table (agreement with the reference majority, bias, variance, length/list/position preferences,
// price and time per 1000 pairs).
import { Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import {
  AnnotationCache, analyzeJudge, BASELINES, createAnnotator, createFarmJudge, defaultCachePath, FARM_JUDGES, farmPairs, groupReferences,
  metricsToLeaderboardRow, panelReferences, readPairsFile, type Annotation, type JudgeMetrics, type Pair, type ReferencePair,
} from '../../feedback/index.ts';
import { createWorld } from '../../world/index.ts';
import { buildAnnotatorOptions } from './annotate.ts';

interface AnalyzeFlags {
  annotator?: string[];
  annotations?: string[];
  references: string;
  pairs?: string;
  n: number;
  runs: number;
  seed: number;
  worldSeed: number;
  members?: boolean;
  lengthDelta: number;
  json?: boolean;
  csv?: string;
  cache: boolean;
  cachePath?: string;
  baseUrl?: string;
  template?: string;
  batchSize?: number;
  temperature?: number;
  concurrency?: number;
  rpm?: number;
}

const int = (name: string, min = -Infinity) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  return n;
};
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};
const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** Splits flat annotation records into runs: the k-th record of a pair goes to run k. */
export function runsFromRecords(records: Annotation[]): Annotation[][] {
  const seen = new Map<string, number>();
  const runs: Annotation[][] = [];
  for (const r of records) {
    const k = JSON.stringify([r.instruction, r.input ?? '', r.output_1, r.output_2]);
    const i = seen.get(k) ?? 0;
    seen.set(k, i + 1);
    (runs[i] ??= []).push(r);
  }
  return runs;
}

function fmt(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function table(rows: JudgeMetrics[]): string {
  const head = ['annotator', 'agree%', 'agree-loo%', 'bias', 'variance', 'P(longer)', 'P(lists)', 'P(first)', '$/1000', 's/1000', 'parsed'];
  const body = rows.map((m) => [m.annotator, fmt(m.human_agreement, 1), fmt(m.agreement_loo, 1), fmt(m.bias, 1), fmt(m.variance, 1), fmt(m.p_prefer_longer, 3), fmt(m.p_prefer_lists, 3), fmt(m.p_prefer_first, 3), fmt(m.price_per_1000, 2), fmt(m.seconds_per_1000, 1), String(m.n_parsed)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

function csv(rows: JudgeMetrics[]): string {
  const recs = rows.map(metricsToLeaderboardRow);
  const cols = Object.keys(recs[0]);
  const cell = (v: unknown) => (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? '' : typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));
  return [cols.map(cell).join(','), ...recs.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

export function register(program: Command): void {
  const judges = program.command('judges').description('simulated judges of the farm pool and judge analysis');

  judges
    .command('list')
    .description('list the simulated judges of the farm pool and the baseline judges')
    .option('--json', 'print as JSON')
    .action((f: { json?: boolean }) => {
      if (f.json) {
        console.log(JSON.stringify({ farm: FARM_JUDGES, baselines: BASELINES }));
        return;
      }
      const w = Math.max(...FARM_JUDGES.map((j) => j.name.length));
      console.log('farm pool (spec "pool"; "pool:train" adds flip noise p = 0.25):');
      for (const j of FARM_JUDGES) console.log(`  ${j.name.padEnd(w)}  ${j.description}`);
      console.log(`baselines: ${BASELINES.join(', ')}`);
      console.log('also: panel (the human panel), openai:MODEL (HTTP judge), model:DIR (reward model)');
    });

  judges
    .command('analyze')
    .description('agreement with the reference majority, bias, variance, P(prefer longer/lists/first), price and time per 1000 (alpaca_eval evaluator table)')
    .option('--annotator <specs>', 'annotator spec(s) to run, comma-separated or repeated (pool, a judge name, openai:MODEL, ...)', collect)
    .option('--annotations <files>', 'precomputed annotations (JSON/JSONL); several records of one pair count as repeated runs', collect)
    .option('--references <panel|file>', 'reference labels: "panel" (the farm human panel) or a file of records with preference (several records of a pair = several raters) or preferences[]', 'panel')
    .option('--pairs <file>', 'pairs to judge with --references panel (default: pairs sampled from an SFT-like farm policy)')
    .addOption(new Option('--n <n>', 'number of farm pairs to sample when --pairs is not given').default(2000).argParser(int('--n', 1)))
    .addOption(new Option('--runs <n>', 'repeated runs with seeds seed..seed+runs-1 (variance and bias need at least 2)').default(2).argParser(int('--runs', 1)))
    .addOption(new Option('--seed <n>', 'first seed of the runs (and of the sampled pairs)').default(0).argParser(int('--seed')))
    .addOption(new Option('--world-seed <n>', 'seed of the farm world').default(0).argParser(int('--world-seed')))
    .option('--members', 'also analyze each simulated judge of the farm pool on its own')
    .addOption(new Option('--length-delta <chars>', 'characters by which one output must be longer to count for P(prefer longer)').default(30).argParser(num('--length-delta')))
    .option('--json', 'print the metrics as JSON')
    .option('--csv <file>', 'also write the rows in the column layout of alpaca_eval evaluators_leaderboard.csv')
    .option('--no-cache', 'HTTP judges: do not use the annotation cache')
    .option('--cache-path <file>', `HTTP judges: annotation cache file (default ${defaultCachePath()})`)
    .option('--base-url <url>', 'HTTP judges: endpoint base URL up to /v1')
    .option('--template <name|file>', 'HTTP judges: prompt template')
    .addOption(new Option('--batch-size <n>', 'HTTP judges: pairs per request').argParser(int('--batch-size', 1)))
    .addOption(new Option('--temperature <t>', 'HTTP judges: sampling temperature').argParser(num('--temperature')))
    .addOption(new Option('--concurrency <n>', 'HTTP judges: requests in flight').argParser(int('--concurrency', 1)))
    .addOption(new Option('--rpm <n>', 'HTTP judges: request starts per minute').argParser(num('--rpm')))
    .action(async (f: AnalyzeFlags) => {
      const specs = f.annotator ?? [];
      const files = f.annotations ?? [];
      if (specs.length === 0 && files.length === 0 && !f.members) throw new Error('give --annotator SPEC and/or --annotations FILE (or --members)');
      const world = createWorld({ seed: f.worldSeed });
      let refs: ReferencePair[];
      let pairs: Pair[];
      if (f.references === 'panel') {
        pairs = f.pairs ? readPairsFile(f.pairs) : farmPairs(world, { n: f.n, seed: f.seed });
        refs = panelReferences(world, pairs);
      } else {
        refs = groupReferences(readPairsFile(f.references) as Parameters<typeof groupReferences>[0]);
        if (refs.every((r) => r.preferences.length === 0)) throw new Error(`${f.references}: no record carries "preference" or "preferences"`);
        pairs = refs.map(({ preferences: _p, ...p }) => p);
      }
      const rows: JudgeMetrics[] = [];
      // The references' own row when they are several raters (alpaca_eval's "humans" row).
      if (refs.some((r) => r.preferences.length >= 2)) {
        const perRater: Annotation[][] = [];
        const name = f.references === 'panel' ? 'panel' : 'references';
        for (const r of refs) r.preferences.forEach((v, i) => (perRater[i] ??= []).push({ instruction: r.instruction, input: r.input, output_1: r.output_1, output_2: r.output_2, preference: v, annotator: name, ...(name === 'panel' ? { price_per_example: 0.3, time_per_example: 36.8 } : {}) }));
        rows.push(analyzeJudge(perRater, refs, { annotator: name, isReference: true, lengthDelta: f.lengthDelta }));
      }
      for (const spec of specs) {
        const runs: Annotation[][] = [];
        for (let r = 0; r < f.runs; r++) {
          const { annotator: _a, annotations: _b, ...httpFlags } = f;
          const opts = buildAnnotatorOptions({ ...httpFlags, seed: f.seed + r }, spec);
          opts.world = world;
          if (opts.http && f.runs > 1) opts.http.cacheSalt = `run${r}`;
          const a = await createAnnotator(spec, opts);
          runs.push(await a.annotate(pairs, { noCache: !f.cache }));
          if (opts.cache instanceof AnnotationCache) opts.cache.close();
        }
        rows.push(analyzeJudge(runs, refs, { annotator: spec, lengthDelta: f.lengthDelta }));
      }
      for (const file of files) {
        const runs = runsFromRecords(readPairsFile(file) as unknown as Annotation[]);
        rows.push(analyzeJudge(runs, refs, { annotator: runs[0]?.[0]?.annotator ?? file, lengthDelta: f.lengthDelta }));
      }
      if (f.members) {
        for (const j of FARM_JUDGES) {
          const runs: Annotation[][] = [];
          for (let r = 0; r < f.runs; r++) runs.push(await createFarmJudge(world, j.name, f.seed + r).annotate(pairs));
          rows.push(analyzeJudge(runs, refs, { annotator: j.name, lengthDelta: f.lengthDelta }));
        }
      }
      if (f.csv) writeFileSync(f.csv, csv(rows));
      if (f.json) {
        console.log(JSON.stringify({ pairs: pairs.length, references: f.references, runs: f.runs, rows }));
        return;
      }
      console.log(`${pairs.length} pairs, references: ${f.references} (${rows[0]?.n_references ?? 0} per pair), ${f.runs} run(s) per annotator`);
      console.log(table(rows));
      console.log('agree%: each run vs the majority of all references (alpaca_eval "Human agreement"); agree-loo%: vs the majority of each leave-one-out subset, the footing of a reference rater vs the others (the references\' own row).');
      if (f.csv) console.log(`wrote ${f.csv}`);
    });
}
