// `farm annotate`: label a file of pairs with any annotator (the farm pool, one judge, the panel, an LLM behind
// an OpenAI-compatible endpoint, a reward model) and write preference records.
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeFileAtomic } from '../../data/json.ts';
import { AnnotationCache, createAnnotator, readPairsFile, summarize, type Annotation } from '../../feedback/index.ts';
import { terminalProgress } from '../progress.ts';
import { addJudgeOptions, annotatorOptions, checkWorldCoverage, intArg, numArg, resolveWorldSeed, type JudgeFlags } from '../judge-options.ts';

interface AnnotateFlags extends JudgeFlags {
  pairs: string;
  annotator: string;
  out: string;
  seed: number;
  flipP?: number;
  swap: boolean;
  keepFailed?: boolean;
  maxFailed: number;
  json?: boolean;
  progress: boolean;
}

/** `--out x.json` writes a JSON array (alpaca_eval's layout), `.jsonl` one record per line. */
export function outputFormat(file: string, flag = '--out'): 'json' | 'jsonl' {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new InvalidArgumentError(`${flag} ${file}: give a .json file (a JSON array, alpaca_eval's layout) or .jsonl (one record per line)`);
}

/** A file that can be written: not a folder, in a folder that exists. */
export function checkOutputFile(file: string, flag: string): void {
  if (existsSync(file) && statSync(file).isDirectory()) throw new InvalidArgumentError(`${flag} ${file} is a folder; give a file`);
  const dir = dirname(resolve(file));
  if (!existsSync(dir)) throw new InvalidArgumentError(`${flag} ${file}: folder ${dir} does not exist`);
}

export function register(program: Command): void {
  const cmd = program
    .command('annotate')
    .description('label pairs (instruction, input, output_1, output_2) with an annotator and write preference records')
    .requiredOption('--pairs <file>', 'pairs as JSONL (one object per line) or a JSON array, with instruction, input, output_1, output_2')
    .requiredOption('--annotator <spec>', 'pool | pool:train | NAME (a farm judge, see `farm judges list`) | panel | openai:MODEL | model:DIR | longest')
    .requiredOption('--out <file>', 'where to write the preference records: .json (a JSON array) or .jsonl (one per line)')
    .addOption(new Option('--seed <n>', 'seed of routing, position swaps, noise and simulated sampling').default(0).argParser(intArg('--seed', 0)))
    .addOption(new Option('--flip-p <p>', 'training-time label noise: probability of replacing a label by a fair draw from {1, 2} (default 0; 0.25 for pool:train)').argParser(numArg('--flip-p', 0, 1)))
    .option('--no-swap', 'show every pair in its given order (no random position swap)')
    .option('--keep-failed', 'also write pairs the judge left unlabelled (preference null, with the reason)')
    .addOption(new Option('--max-failed <fraction>', 'fail (exit 1) when more than this fraction of the pairs is left unlabelled; what was labelled is still written').default(0.1).argParser(numArg('--max-failed', 0, 1)))
    .option('--json', 'print the summary as one JSON object on stdout')
    .option('--no-progress', 'no progress bar (log lines only)');
  addJudgeOptions(cmd).action(async (f: AnnotateFlags) => {
    // every flag and input first: nothing is judged (or paid for) before they all check out
    const format = outputFormat(f.out);
    checkOutputFile(f.out, '--out');
    const pairs = readPairsFile(f.pairs);
    if (pairs.length === 0) throw new Error(`${f.pairs}: no pairs`);
    if (resolve(f.out) === resolve(f.pairs)) throw new InvalidArgumentError('--out is the --pairs file: write the preferences elsewhere');
    const world = resolveWorldSeed(f.worldSeed, [{ what: f.pairs, records: pairs }]);
    const coverage = checkWorldCoverage(f.annotator, world.seed, world.from, pairs);
    if (coverage.warning) process.stderr.write(`farm: warning: ${coverage.warning}\n`);
    const opts = annotatorOptions(f, f.annotator, { seed: f.seed, flipP: f.flipP, swap: f.swap, worldSeed: world.seed });
    const annotator = await createAnnotator(f.annotator, opts);
    const progress = terminalProgress({ bar: f.progress && !f.json, tty: process.stderr.isTTY && !f.json });
    progress.start(`annotate (${annotator.name})`, pairs.length);
    const abort = new AbortController();
    const onSignal = () => abort.abort(new Error('interrupted: finished batches are in the cache; rerun to continue'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const t0 = performance.now();
    let annotations: Annotation[];
    try {
      annotations = await annotator.annotate(pairs, { onProgress: (d) => progress.update(d), signal: abort.signal, noCache: !f.cache });
    } finally {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (opts.cache instanceof AnnotationCache) opts.cache.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    const written = annotations
      .map((a, i) => ({ ...pairs[i], ...a }))
      .filter((a) => f.keepFailed || a.preference !== null);
    writeFileAtomic(f.out, format === 'json' ? `${JSON.stringify(written, null, 2)}\n` : written.map((a) => JSON.stringify(a)).join('\n') + (written.length ? '\n' : ''));
    const s = summarize(annotations);
    const st = annotator.stats();
    const cacheStats = opts.cache instanceof AnnotationCache ? opts.cache.stats() : null;
    const failedFraction = s.total ? s.failed / s.total : 0;
    const summary = {
      annotator: annotator.name,
      pairs: s.total,
      labelled: s.total - s.failed,
      prefer_1: s.prefer1,
      prefer_2: s.prefer2,
      draws: s.draws,
      soft: s.soft,
      failed: s.failed,
      failed_fraction: failedFraction,
      max_failed: f.maxFailed,
      label_noise: annotations.filter((a) => a.label_noise).length,
      world_seed: world.seed,
      world_seed_from: world.from,
      unknown_instructions: coverage.unknown,
      written: written.length,
      out: f.out,
      cost_usd: st.cost,
      requests: st.requests,
      retries: st.retries,
      prompt_tokens: st.promptTokens,
      completion_tokens: st.completionTokens,
      cache_hits: st.cacheHits,
      cache: cacheStats ? { path: cacheStats.path, entries: cacheStats.entries, written: cacheStats.writes, from_other_processes: cacheStats.refreshed, bad_lines: cacheStats.badLines } : null,
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
    if (failedFraction > f.maxFailed) {
      const why = [...new Set(annotations.map((a) => a.error).filter(Boolean))].slice(0, 3).join('; ');
      throw new Error(`${s.failed} of ${s.total} pairs (${(100 * failedFraction).toFixed(1)}%) were left unlabelled, more than --max-failed ${f.maxFailed}${why ? ` (${why})` : ''}; ${summary.written} records written to ${f.out}`);
    }
  });
}
