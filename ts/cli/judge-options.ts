// Flags shared by every command that runs a judge (`farm annotate`, `farm evaluate`, `farm leaderboard build`,
// `farm judges analyze`): the farm world's seed, the annotation cache, and the HTTP judge's settings. Each
// value is checked when parsed, so a bad one fails before any work.
import { Command, InvalidArgumentError, Option } from 'commander';
import { worldSeedOf } from '../data/records.ts';
import { createWorld } from '../world/index.ts';
import {
  AnnotationCache, defaultCachePath, unknownInstructions, usesFarmWorld, type CreateAnnotatorOptions, type HttpJudgeOptions,
} from '../feedback/index.ts';

/** The world seed `farm data generate` and `farm run` use unless told otherwise: the default everywhere. */
export const DEFAULT_WORLD_SEED = 1;

export const intArg = (flag: string, min: number, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `in [${min}, ${max}]` : `>= ${min}`}, got ${JSON.stringify(v)}`);
  return n;
};
export const numArg = (flag: string, lo = -Infinity, hi = Infinity, loOpen = false) => (v: string) => {
  const n = Number(v);
  const ok = v.trim() !== '' && Number.isFinite(n) && (loOpen ? n > lo : n >= lo) && n <= hi;
  if (!ok) {
    const range = lo === -Infinity && hi === Infinity ? 'a number' : hi === Infinity ? `a number ${loOpen ? '>' : '>='} ${lo}` : `a number in ${loOpen ? '(' : '['}${lo}, ${hi}]`;
    throw new InvalidArgumentError(`${flag} must be ${range}, got ${JSON.stringify(v)}`);
  }
  return n;
};
const jsonObjectArg = (flag: string, example: string) => (v: string) => {
  let x: unknown;
  try { x = JSON.parse(v); } catch { throw new InvalidArgumentError(`${flag} must be a JSON object like '${example}', got ${JSON.stringify(v)}`); }
  if (!x || typeof x !== 'object' || Array.isArray(x)) throw new InvalidArgumentError(`${flag} must be a JSON object like '${example}'`);
  return x as Record<string, number>;
};

export interface JudgeFlags {
  worldSeed?: number;
  cache: boolean;
  cachePath?: string;
  baseUrl?: string;
  template?: string;
  batchSize?: number;
  temperature?: number;
  maxTokens?: number;
  logitBias?: Record<string, number>;
  soft?: boolean;
  concurrency?: number;
  rpm?: number;
  timeoutMs?: number;
  maxRetries?: number;
}

/** Adds --world-seed, the cache flags and the HTTP judge flags. */
export function addJudgeOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--world-seed <n>', `seed of the farm world that wrote the instructions (farm judges and the panel): default the world_seed the records carry, else ${DEFAULT_WORLD_SEED}; a different value than the records' is refused`).argParser(intArg('--world-seed', 0)))
    .option('--no-cache', 'HTTP judges: neither read nor write the annotation cache')
    .option('--cache-path <file>', `HTTP judges: annotation cache file (default ${defaultCachePath()}, or $FARM_CACHE_DIR/annotations.jsonl); several processes may share it`)
    .option('--base-url <url>', 'HTTP judges: endpoint base URL up to /v1 (default $FARM_JUDGE_BASE_URL or $OPENAI_BASE_URL)')
    .option('--template <name|file>', 'HTTP judges: prompt template in prompts/ or a file (default pairwise_batch)')
    .addOption(new Option('--batch-size <n>', 'HTTP judges: pairs per request (default 5)').argParser(intArg('--batch-size', 1)))
    .addOption(new Option('--temperature <t>', 'HTTP judges: sampling temperature in [0, 2] (default 0)').argParser(numArg('--temperature', 0, 2)))
    .addOption(new Option('--max-tokens <n>', 'HTTP judges: max completion tokens').argParser(intArg('--max-tokens', 1)))
    .addOption(new Option('--logit-bias <json>', 'HTTP judges: logit_bias object, e.g. \'{"64": 5}\' (dropped if the endpoint rejects it)').argParser(jsonObjectArg('--logit-bias', '{"64": 5}')))
    .option('--soft', 'HTTP judges: soft preferences in [1, 2] from token log-probs (single-pair template)')
    .addOption(new Option('--concurrency <n>', 'HTTP judges: requests in flight (default 8)').argParser(intArg('--concurrency', 1)))
    .addOption(new Option('--rpm <n>', 'HTTP judges: request starts per minute, > 0 (default unlimited)').argParser(numArg('--rpm', 0, Infinity, true)))
    .addOption(new Option('--timeout-ms <n>', 'HTTP judges: per-request timeout in ms, >= 1 (default 60000)').argParser(intArg('--timeout-ms', 1)))
    .addOption(new Option('--max-retries <n>', 'HTTP judges: retries on 429, 5xx and timeouts, >= 0 (default 5)').argParser(intArg('--max-retries', 0)));
}

/** HTTP judge settings from the flags (only those given). */
export function httpOptions(f: Partial<JudgeFlags>): Partial<HttpJudgeOptions> {
  const http: Partial<HttpJudgeOptions> = { log: (m) => process.stderr.write(`${m}\n`) };
  for (const k of ['baseUrl', 'template', 'batchSize', 'temperature', 'maxTokens', 'logitBias', 'concurrency', 'rpm', 'timeoutMs', 'maxRetries'] as const) {
    if (f[k] !== undefined) (http as Record<string, unknown>)[k] = f[k];
  }
  if (f.soft) http.soft = true;
  return http;
}

/** Options for createAnnotator from the flags; the disk cache is opened only for judges that use it. */
export function annotatorOptions(f: Partial<JudgeFlags>, spec: string, o: { seed?: number; flipP?: number; swap?: boolean; worldSeed: number }): CreateAnnotatorOptions {
  return {
    seed: o.seed ?? 0,
    worldSeed: o.worldSeed,
    ...(o.flipP !== undefined ? { flipP: o.flipP } : {}),
    swap: o.swap ?? true,
    cache: f.cache === false || !spec.trim().startsWith('openai:') ? null : AnnotationCache.open(f.cachePath ?? defaultCachePath()),
    http: httpOptions(f),
  };
}

/** Where records came from, for the world seed they carry. */
export interface RecordSource { what: string; records: readonly object[] }

/**
 * The farm world seed to judge in: the one the records carry (all sources must agree), checked against
 * --world-seed; else --world-seed; else the default. Returns where it came from, for messages.
 */
export function resolveWorldSeed(flag: number | undefined, sources: readonly RecordSource[]): { seed: number; from: 'records' | 'flag' | 'default' } {
  let recorded: { seed: number; what: string } | undefined;
  for (const s of sources) {
    const seed = worldSeedOf(s.records, s.what);
    if (seed === undefined) continue;
    if (recorded && recorded.seed !== seed) throw new InvalidArgumentError(`${recorded.what} was written by farm world ${recorded.seed} but ${s.what} by farm world ${seed} (their records' world_seed): they cannot be judged together`);
    recorded ??= { seed, what: s.what };
  }
  if (recorded) {
    if (flag !== undefined && flag !== recorded.seed) {
      throw new InvalidArgumentError(`--world-seed ${flag} disagrees with ${recorded.what}, whose records were written by farm world ${recorded.seed} (world_seed ${recorded.seed}): judging them in another world misjudges them silently; drop --world-seed`);
    }
    return { seed: recorded.seed, from: 'records' };
  }
  return flag !== undefined ? { seed: flag, from: 'flag' } : { seed: DEFAULT_WORLD_SEED, from: 'default' };
}

/**
 * How many instructions a farm judge would see that are not tasks of its world (judged on surface cues
 * only), with a message; a partial miss with the default seed is an error (another world wrote them).
 */
export function checkWorldCoverage(spec: string, worldSeed: number, from: 'records' | 'flag' | 'default', pairs: readonly { instruction: string; input?: string }[]): { unknown: number; warning: string | null } {
  if (!usesFarmWorld(spec) || pairs.length === 0) return { unknown: 0, warning: null };
  const { count } = unknownInstructions(createWorld({ seed: worldSeed }), pairs);
  if (count === 0) return { unknown: 0, warning: null };
  const source = from === 'records' ? 'the world_seed the records carry' : from === 'flag' ? '--world-seed' : `the default world seed ${DEFAULT_WORLD_SEED}; the records carry none`;
  if (count === pairs.length) return { unknown: count, warning: `none of the ${pairs.length} instructions is a task of farm world ${worldSeed} (${source}): the farm judges see only surface cues of non-farm data` };
  const msg = `${count} of ${pairs.length} instructions are not tasks of farm world ${worldSeed} (${source}) and would be judged on surface cues only`;
  if (from === 'default') throw new InvalidArgumentError(`${msg}: were they written by another world seed? Pass it with --world-seed`);
  return { unknown: count, warning: msg };
}
