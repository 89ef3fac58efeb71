// `farm annotate`: label a file of pairs with any annotator (the farm pool, one judge, the panel, an LLM behind
// an OpenAI-compatible endpoint, a reward model) and write preference records.
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  AnnotationCache, createAnnotator, defaultCachePath, readPairsFile, summarize, type Annotation, type CreateAnnotatorOptions, type HttpJudgeOptions,
} from '../../feedback/index.ts';

interface AnnotateFlags {
  pairs: string;
  annotator: string;
  out: string;
  seed: number;
  worldSeed: number;
  flipP?: number;
  swap: boolean;
  cache: boolean;
  cachePath?: string;
  keepFailed?: boolean;
  json?: boolean;
  progress: boolean;
  baseUrl?: string;
  template?: string;
  batchSize?: number;
  temperature?: number;
  maxTokens?: number;
  logitBias?: string;
  soft?: boolean;
  concurrency?: number;
  rpm?: number;
  timeoutMs?: number;
  maxRetries?: number;
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
};
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};

/** Options for createAnnotator from CLI flags; the disk cache is opened only for judges that use it. */
export function buildAnnotatorOptions(f: Partial<AnnotateFlags>, spec = ''): CreateAnnotatorOptions {
  const http: Partial<HttpJudgeOptions> = { log: (m) => process.stderr.write(`${m}\n`) };
  if (f.baseUrl) http.baseUrl = f.baseUrl;
  if (f.template) http.template = f.template;
  if (f.batchSize !== undefined) http.batchSize = f.batchSize;
  if (f.temperature !== undefined) http.temperature = f.temperature;
  if (f.maxTokens !== undefined) http.maxTokens = f.maxTokens;
  if (f.soft) http.soft = true;
  if (f.concurrency !== undefined) http.concurrency = f.concurrency;
  if (f.rpm !== undefined) http.rpm = f.rpm;
  if (f.timeoutMs !== undefined) http.timeoutMs = f.timeoutMs;
  if (f.maxRetries !== undefined) http.maxRetries = f.maxRetries;
  if (f.logitBias) {
    try {
      http.logitBias = JSON.parse(f.logitBias) as Record<string, number>;
    } catch {
      throw new Error(`--logit-bias must be a JSON object like '{"64": 5}', got ${JSON.stringify(f.logitBias)}`);
    }
  }
  return {
    seed: f.seed ?? 0,
    worldSeed: f.worldSeed ?? 0,
    ...(f.flipP !== undefined ? { flipP: f.flipP } : {}),
    swap: f.swap ?? true,
    cache: f.cache === false || !spec.startsWith('openai:') ? null : AnnotationCache.open(f.cachePath ?? defaultCachePath()),
    http,
  };
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function register(program: Command): void {
  program
    .command('annotate')
    .description('label pairs (instruction, input, output_1, output_2) with an annotator and write preference records')
    .requiredOption('--pairs <file>', 'pairs as JSONL (one object per line) or a JSON array, with instruction, input, output_1, output_2')
    .requiredOption('--annotator <spec>', 'pool | pool:train | NAME (a farm judge, see `farm judges list`) | panel | openai:MODEL | model:DIR | longest')
    .requiredOption('--out <file>', 'where to write the preference records (JSONL)')
    .addOption(new Option('--seed <n>', 'seed of routing, position swaps, noise and simulated sampling').default(0).argParser(int('--seed')))
    .addOption(new Option('--world-seed <n>', 'seed of the farm world that wrote the instructions').default(0).argParser(int('--world-seed')))
    .addOption(new Option('--flip-p <p>', 'training-time label noise: probability of replacing a label by a fair draw from {1, 2} (default 0; 0.25 for pool:train)').argParser(num('--flip-p')))
    .option('--no-swap', 'show every pair in its given order (no random position swap)')
    .option('--no-cache', 'neither read nor write the on-disk annotation cache')
    .option('--cache-path <file>', `annotation cache file (default ${defaultCachePath()}, or $FARM_CACHE_DIR/annotations.jsonl)`)
    .option('--keep-failed', 'also write pairs the judge left unlabelled (preference null, with the reason)')
    .option('--json', 'print the summary as one JSON object on stdout')
    .option('--no-progress', 'no progress bar')
    .option('--base-url <url>', 'HTTP judges: endpoint base URL up to /v1 (default $FARM_JUDGE_BASE_URL or $OPENAI_BASE_URL)')
    .option('--template <name|file>', 'HTTP judges: prompt template in prompts/ or a file (default pairwise_batch)')
    .addOption(new Option('--batch-size <n>', 'HTTP judges: pairs per request (default 5)').argParser(int('--batch-size')))
    .addOption(new Option('--temperature <t>', 'HTTP judges: sampling temperature (default 0)').argParser(num('--temperature')))
    .addOption(new Option('--max-tokens <n>', 'HTTP judges: max completion tokens').argParser(int('--max-tokens')))
    .option('--logit-bias <json>', 'HTTP judges: logit_bias object, e.g. \'{"64": 5}\' (dropped if the endpoint rejects it)')
    .option('--soft', 'HTTP judges: soft preferences in [1, 2] from token log-probs (single-pair template)')
    .addOption(new Option('--concurrency <n>', 'HTTP judges: requests in flight (default 8)').argParser(int('--concurrency')))
    .addOption(new Option('--rpm <n>', 'HTTP judges: request starts per minute (default unlimited)').argParser(num('--rpm')))
    .addOption(new Option('--timeout-ms <n>', 'HTTP judges: per-request timeout (default 60000)').argParser(int('--timeout-ms')))
    .addOption(new Option('--max-retries <n>', 'HTTP judges: retries on 429, 5xx and timeouts (default 5)').argParser(int('--max-retries')))
    .action(async (f: AnnotateFlags) => {
      const pairs = readPairsFile(f.pairs);
      if (pairs.length === 0) throw new Error(`${f.pairs}: no pairs`);
      const opts = buildAnnotatorOptions(f, f.annotator);
      const annotator = await createAnnotator(f.annotator, opts);
      const showBar = f.progress && process.stderr.isTTY && !f.json;
      const bar = showBar ? new cliProgress.SingleBar({ stream: process.stderr, format: `${annotator.name} [{bar}] {percentage}% {value}/{total} pairs | {duration_formatted} | eta {eta_formatted}` }, cliProgress.Presets.shades_classic) : null;
      bar?.start(pairs.length, 0);
      const abort = new AbortController();
      const onSignal = () => abort.abort(new Error('interrupted: finished batches are in the cache; rerun to continue'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const t0 = performance.now();
      let annotations: Annotation[];
      try {
        annotations = await annotator.annotate(pairs, { onProgress: (d) => bar?.update(d), signal: abort.signal, noCache: !f.cache });
      } finally {
        bar?.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (opts.cache instanceof AnnotationCache) opts.cache.close();
      }
      const seconds = (performance.now() - t0) / 1000;
      const written = annotations
        .map((a, i) => ({ ...pairs[i], ...a }))
        .filter((a) => f.keepFailed || a.preference !== null);
      writeAtomically(f.out, written.map((a) => JSON.stringify(a)).join('\n') + (written.length ? '\n' : ''));
      const s = summarize(annotations);
      const st = annotator.stats();
      const cacheStats = opts.cache instanceof AnnotationCache ? opts.cache.stats() : null;
      const summary = {
        annotator: annotator.name,
        pairs: s.total,
        labelled: s.total - s.failed,
        prefer_1: s.prefer1,
        prefer_2: s.prefer2,
        draws: s.draws,
        soft: s.soft,
        failed: s.failed,
        label_noise: annotations.filter((a) => a.label_noise).length,
        written: written.length,
        out: f.out,
        cost_usd: st.cost,
        requests: st.requests,
        retries: st.retries,
        prompt_tokens: st.promptTokens,
        completion_tokens: st.completionTokens,
        cache_hits: st.cacheHits,
        cache: cacheStats ? { path: cacheStats.path, entries: cacheStats.entries, written: cacheStats.writes, bad_lines: cacheStats.badLines } : null,
        seconds,
        pairs_per_s: s.total / Math.max(seconds, 1e-9),
      };
      if (f.json) {
        console.log(JSON.stringify(summary));
      } else {
        const lines = [
          `annotated ${summary.pairs} pairs with ${summary.annotator} in ${seconds.toFixed(2)} s (${summary.pairs_per_s.toFixed(0)} pairs/s)`,
          `  labels: ${summary.prefer_1} prefer output_1, ${summary.prefer_2} prefer output_2, ${summary.draws} draws${summary.soft ? `, ${summary.soft} soft` : ''}, ${summary.failed} failed${summary.label_noise ? `; ${summary.label_noise} replaced by flip noise` : ''}`,
          `  cost: $${summary.cost_usd.toFixed(4)}${summary.requests ? ` over ${summary.requests} requests (${summary.retries} retries, ${summary.prompt_tokens} + ${summary.completion_tokens} tokens)` : ''}`,
          cacheStats ? `  cache: ${summary.cache_hits} hits, ${cacheStats.writes} new entries, ${cacheStats.entries} in ${cacheStats.path}${cacheStats.badLines ? ` (${cacheStats.badLines} damaged lines ignored)` : ''}` : '  cache: off',
          `  wrote ${summary.written} records to ${f.out}${summary.failed && !f.keepFailed ? ` (${summary.failed} unlabelled pairs left out; --keep-failed writes them)` : ''}`,
        ];
        process.stderr.write(`${lines.join('\n')}\n`);
      }
    });
}
