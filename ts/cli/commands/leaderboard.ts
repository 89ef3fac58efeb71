// `farm leaderboard`: several models against one reference under one annotator, kept in a CSV (alpaca_eval
// layout) with a Markdown table beside it. Models already on the board are not re-evaluated.
import { Command, InvalidArgumentError } from 'commander';
import {
  alignOutputs, compareRankings, estimateDifficulty, evaluateModel, instructionKey, Leaderboard, metricsFromAnnotations, modelAnnotations, readAnnotations,
  readOutputs, rowFromMetrics, writeJson, type AnnotationRecord, type DifficultyEstimate, type LengthControlSettings, type SortKey,
} from '../../eval/index.ts';
import {
  addLengthControlOptions, checkInputFile, defaultReferencePath, lengthControlSettings, loadAnnotator, modelNameFor, parseJsonObject, pathInside, toJson,
  type LengthControlFlags,
} from '../../eval/cli-support.ts';
import { AnnotationCache } from '../../feedback/index.ts';
import { terminalProgress } from '../progress.ts';
import { addJudgeOptions, annotatorOptions, checkWorldCoverage, resolveWorldSeed, type JudgeFlags } from '../judge-options.ts';

const SORT_KEYS: Record<string, SortKey> = {
  win_rate: 'win_rate',
  lc: 'length_controlled_winrate',
  length_controlled_winrate: 'length_controlled_winrate',
  discrete: 'discrete_win_rate',
  discrete_win_rate: 'discrete_win_rate',
};
function sortKey(v: string): SortKey {
  const k = SORT_KEYS[v];
  if (!k) throw new Error(`--sort-by must be one of ${Object.keys(SORT_KEYS).join(', ')}, got ${JSON.stringify(v)}`);
  return k;
}
const SORT_HELP = 'metric to sort by: win_rate, lc (length-controlled) or discrete';

interface CommonFlags {
  sortBy: SortKey;
  json?: boolean;
}

function printBoard(board: Leaderboard, f: CommonFlags & { format?: string }, saved?: { csv: string; markdown: string }): void {
  if (f.json || f.format === 'json') {
    console.log(toJson({ rows: board.sorted(f.sortBy), ...(saved ? { files: saved } : {}) }));
    return;
  }
  process.stdout.write(f.format === 'csv' ? board.toCsv(f.sortBy) : board.toMarkdown(f.sortBy));
  if (saved) console.error(`wrote ${saved.csv} and ${saved.markdown}`);
}

export function register(program: Command): void {
  const lb = program
    .command('leaderboard')
    .description('Leaderboards of several models against one reference: show, add, build, remove, compare');

  lb.command('show')
    .description('print a leaderboard CSV (ours or alpaca_eval\'s) sorted, as Markdown, CSV or JSON')
    .argument('<csv>', 'leaderboard CSV file')
    .option('--sort-by <metric>', SORT_HELP, sortKey, 'win_rate' as SortKey)
    .option('--format <fmt>', 'markdown, csv or json', 'markdown')
    .option('--json', 'same as --format json')
    .action((csv: string, f: CommonFlags & { format: string }) => {
      if (!['markdown', 'csv', 'json'].includes(f.format)) throw new InvalidArgumentError(`--format must be markdown, csv or json, got ${JSON.stringify(f.format)}`);
      checkInputFile('leaderboard', csv);
      printBoard(Leaderboard.load(csv), f);
    });

  addLengthControlOptions(
    lb.command('add')
      .description('add (or replace) models on a leaderboard from existing annotations files, without annotating anything')
      .argument('<csv>', 'leaderboard CSV (created when absent; a .md is written beside it)')
      .argument('<annotations...>', 'annotations files (one model each: output_1 = reference, output_2 = model)')
      .option('--name <model>', 'model name when adding a single file (default: generator_2 of the rows)')
      .option('--estimate-difficulty [file]', 'estimate a difficulty table from these files (joint fit over the models) and use it for their LC; written to FILE (default: beside the board, .difficulty.json)')
      .option('--drop-invalid', 'drop (and count) invalid preferences instead of failing')
      .option('--allow-duplicates', 'keep the first of repeated instructions in a file instead of failing')
      .option('--force', 'allow rows from another annotator or reference')
      .option('--sort-by <metric>', SORT_HELP, sortKey, 'win_rate' as SortKey)
      .option('--json', 'print the board as JSON'),
  ).action((csv: string, files: string[], f: CommonFlags & LengthControlFlags & {
    name?: string; estimateDifficulty?: string | boolean; dropInvalid?: boolean; allowDuplicates?: boolean; force?: boolean;
  }) => {
    if (f.name && files.length > 1) throw new Error('--name applies to a single annotations file');
    if (f.estimateDifficulty && f.difficulty) throw new Error('--estimate-difficulty and --difficulty both give the difficulty table: pass one');
    if (f.estimateDifficulty && !f.lengthControl) throw new Error('--estimate-difficulty is for the length-controlled win-rate; drop --no-length-control');
    const invalid = f.dropInvalid ? 'drop' : 'error';
    let settings = lengthControlSettings(f);
    for (const file of files) checkInputFile('annotations file', file);
    const annotations = files.map((file) => ({ file, rows: readAnnotations(file) }));
    if (f.estimateDifficulty && settings) {
      const out = typeof f.estimateDifficulty === 'string' ? f.estimateDifficulty : `${csv.replace(/\.csv$/i, '')}.difficulty.json`;
      const est = estimateFromFiles(annotations, { invalid, allowDuplicates: f.allowDuplicates, json: f.json });
      writeJson(out, est.rows);
      settings = { ...settings, difficulty: { ...est.table, source: out } };
      if (!f.json) console.error(`difficulty: estimated from ${est.models.length} models (ridge ${est.lambda.toPrecision(3)}), written to ${out}`);
    }
    const rows = annotations.map(({ file, rows }) => {
      const r = metricsFromAnnotations(rows, { invalid, lengthControl: settings, allowDuplicates: f.allowDuplicates });
      const name = f.name ?? r.model;
      if (!name) throw new Error(`${file}: rows carry no generator_2; pass --name`);
      for (const w of r.warnings) console.error(`warning: ${name}: ${w}`);
      return rowFromMetrics(name, r.metrics, { annotator: r.annotator, reference: r.reference, updated: new Date().toISOString() });
    });
    // under the board's lock: rows other processes added meanwhile are kept
    const { board, saved } = Leaderboard.update(csv, (b) => { for (const row of rows) b.upsert(row, { force: f.force }); }, f.sortBy);
    printBoard(board, f, saved);
  });

  lb.command('difficulty')
    .description(
      'estimate an instruction difficulty table from several models\' annotations against one reference (the per-instruction ' +
        'coefficients of a joint fit, as alpaca_eval made theirs), for the length-controlled win-rate of a leaderboard of your own',
    )
    .argument('<out>', 'where to write the table (JSON [{index, instruction, difficulty, n_models}]; pass it to --difficulty)')
    .argument('<annotations...>', 'annotations files, one model each, all against the same reference')
    .option('--drop-invalid', 'drop (and count) invalid preferences instead of failing')
    .option('--allow-duplicates', 'keep the first of repeated instructions in a file instead of failing')
    .option('--json', 'print a summary as JSON')
    .action((out: string, files: string[], f: { dropInvalid?: boolean; allowDuplicates?: boolean; json?: boolean }) => {
      for (const file of files) checkInputFile('annotations file', file);
      if (files.some((file) => file === out)) throw new InvalidArgumentError(`${out} is also an input: write the table elsewhere`);
      const annotations = files.map((file) => ({ file, rows: readAnnotations(file) }));
      const est = estimateFromFiles(annotations, { invalid: f.dropInvalid ? 'drop' : 'error', allowDuplicates: f.allowDuplicates, json: f.json });
      writeJson(out, est.rows);
      const summary = { file: out, models: est.models, n_instructions: est.rows.length, n_rows: est.n_rows, lambda: est.lambda, cv: est.cv, converged: est.converged };
      if (f.json) console.log(toJson(summary));
      else {
        console.log(`wrote ${out}: difficulty of ${est.rows.length} instructions from ${est.models.length} models (${est.n_rows} annotations), ridge ${est.lambda.toPrecision(3)} chosen by 5-fold cross-validation`);
        if (!est.converged) console.error('warning: the joint fit stopped before reaching its tolerance');
      }
    });

  addJudgeOptions(addLengthControlOptions(lb.command('build')
    .description('evaluate several models against one reference with one annotator; models already on the board are skipped')
    .argument('<csv>', 'leaderboard CSV (created when absent; saved after every model)')
    .argument('<model-outputs...>', 'model outputs files (alpaca_eval results/NAME/model_outputs.json or AlpacaFarm eval files)')
    .requiredOption('--annotator <name>', 'annotator spec understood by the feedback registry (createAnnotator)')
    .option('--annotator-options <json>', 'JSON object passed to createAnnotator as options')
    .option('--reference-outputs <file>', 'reference outputs (default: $FARM_REFERENCE_OUTPUTS, else ../shared text_davinci_003)')
    .option('--reference-name <name>', 'reference name (default: its generator field or file name)')
    .option('--output-dir <dir>', 'also write DIR/MODEL/ANNOTATOR/annotations.json for every evaluated model')
    .option('--force', 're-evaluate models already on the board, and allow mixing annotators / references')
    .option('--allow-missing', 'evaluate on shared instructions when a model lacks some')
    .option('--sort-by <metric>', SORT_HELP, sortKey, 'win_rate' as SortKey)
    .option('--json', 'print the board as JSON')
    .option('--no-progress', 'no progress bar (log lines only)')))
    .action(async (csv: string, files: string[], f: CommonFlags & LengthControlFlags & JudgeFlags & {
      annotator: string; annotatorOptions?: string; referenceOutputs?: string; referenceName?: string; outputDir?: string;
      force?: boolean; allowMissing?: boolean; progress: boolean;
    }) => {
      // every flag and file before the first judgement
      const lengthControl = lengthControlSettings(f);
      const extraOptions = parseJsonObject(f.annotatorOptions, '--annotator-options');
      checkInputFile('--reference-outputs', f.referenceOutputs);
      for (const file of files) checkInputFile('model outputs', file);
      const referencePath = f.referenceOutputs ?? defaultReferencePath();
      if (!referencePath) throw new InvalidArgumentError('no reference outputs: pass --reference-outputs FILE or set FARM_REFERENCE_OUTPUTS');
      const reference = readOutputs(referencePath);
      const referenceName = modelNameFor(referencePath, reference, f.referenceName);
      const models = files.map((file) => {
        const model = readOutputs(file);
        return { file, model, name: modelNameFor(file, model) };
      });
      const names = new Map<string, string>();
      for (const m of models) {
        if (names.has(m.name)) throw new InvalidArgumentError(`${names.get(m.name)} and ${m.file} both name their model ${JSON.stringify(m.name)}; a board holds one row per name`);
        names.set(m.name, m.file);
      }
      const world = resolveWorldSeed(f.worldSeed ?? (extraOptions.worldSeed as number | undefined), [{ what: referencePath, records: reference }, ...models.map((m) => ({ what: m.file, records: m.model }))]);
      for (const m of models) {
        alignOutputs(reference, m.model, { allowMissing: f.allowMissing });
        const c = checkWorldCoverage(f.annotator, world.seed, world.from, m.model);
        if (c.warning) console.error(`warning: ${m.name}: ${c.warning}`);
      }
      const opts = { ...annotatorOptions(f, f.annotator, { worldSeed: world.seed }), ...extraOptions, worldSeed: world.seed };
      let annotator: Awaited<ReturnType<typeof loadAnnotator>> | undefined;
      let { board, saved } = Leaderboard.update(csv, () => {}, f.sortBy);
      const progress = terminalProgress({ bar: f.progress && !f.json, tty: process.stderr.isTTY && !f.json });
      try {
        for (const { model, name } of models) {
          if (board.has(name) && !f.force) {
            if (!f.json) console.error(`${name}: already on the board, skipped`);
            continue;
          }
          try {
            annotator ??= await loadAnnotator(f.annotator, opts);
          } catch (e) {
            const msg = (e as Error).message;
            throw new Error(/^annotator options/.test(msg) && f.annotatorOptions ? `--annotator-options: ${msg}` : msg);
          }
          progress.start(`${name} (${annotator.name})`, reference.length);
          const r = await evaluateModel(reference.map((x) => ({ ...x, generator: referenceName })), model, {
            annotator, modelName: name, referenceName, allowMissing: f.allowMissing, noCache: !f.cache,
            lengthControl, onProgress: (d: number) => progress.update(d),
          });
          progress.stop();
          for (const w of r.warnings) console.error(`warning: ${name}: ${w}`);
          if (f.outputDir) writeJson(pathInside(f.outputDir, name, annotator.name, 'annotations.json'), r.annotations);
          const row = rowFromMetrics(name, r.metrics, { annotator: annotator.name, reference: referenceName, updated: new Date().toISOString() });
          ({ board, saved } = Leaderboard.update(csv, (b) => b.upsert(row, { force: f.force }), f.sortBy));
          if (!f.json) console.error(`${name}: win_rate ${r.metrics.win_rate.toFixed(2)} ± ${r.metrics.standard_error.toFixed(2)}`);
        }
      } finally {
        progress.stop();
        if (opts.cache instanceof AnnotationCache) opts.cache.close();
      }
      printBoard(board, f, saved);
    });

  lb.command('remove')
    .description('remove models from a leaderboard')
    .argument('<csv>', 'leaderboard CSV')
    .argument('<names...>', 'model names')
    .option('--json', 'print the board after the removal as JSON')
    .action((csv: string, names: string[], f: { json?: boolean }) => {
      checkInputFile('leaderboard', csv);
      const { board, saved } = Leaderboard.update(csv, (b) => {
        const missing = names.filter((n) => !b.has(n));
        if (missing.length) throw new Error(`not on the board: ${missing.join(', ')}`);
        for (const n of names) b.remove(n);
      });
      if (f.json) console.log(toJson({ removed: names, rows: board.sorted(), files: saved }));
      else console.error(`wrote ${saved.csv} and ${saved.markdown}`);
    });

  lb.command('compare')
    .description('rank correlation between two leaderboards (e.g. simulated vs human feedback, or two judges), as AlpacaFarm validates its simulator')
    .argument('<a>', 'first leaderboard CSV')
    .argument('<b>', 'second leaderboard CSV')
    .option('--sort-by <metric>', `${SORT_HELP} (used for both boards)`, sortKey, 'win_rate' as SortKey)
    .option('--by-b <metric>', 'metric of the second board when it differs', sortKey)
    .option('--json', 'print the comparison as JSON')
    .action((a: string, b: string, f: CommonFlags & { byB?: SortKey }) => {
      checkInputFile('leaderboard', a);
      checkInputFile('leaderboard', b);
      const cmp = compareRankings(Leaderboard.load(a).scores(f.sortBy), Leaderboard.load(b).scores(f.byB ?? f.sortBy));
      if (f.json) {
        console.log(toJson(cmp));
        return;
      }
      console.log(`models compared: ${cmp.items.length}`);
      console.log(`spearman: ${cmp.spearman.toFixed(4)}`);
      console.log(`kendall_tau: ${cmp.kendall_tau.toFixed(4)}`);
      console.log(`pairwise_agreement: ${cmp.pairwise_agreement.toFixed(4)}`);
      if (cmp.only_in_a.length) console.log(`only in ${a}: ${cmp.only_in_a.length} (${cmp.only_in_a.slice(0, 5).join(', ')}${cmp.only_in_a.length > 5 ? ', ...' : ''})`);
      if (cmp.only_in_b.length) console.log(`only in ${b}: ${cmp.only_in_b.length} (${cmp.only_in_b.slice(0, 5).join(', ')}${cmp.only_in_b.length > 5 ? ', ...' : ''})`);
    });
}

/** A difficulty table from annotation files, one model each (see estimateDifficulty). */
function estimateFromFiles(
  annotations: ReadonlyArray<{ file: string; rows: AnnotationRecord[] }>,
  opts: { invalid: 'drop' | 'error'; allowDuplicates?: boolean; json?: boolean },
): DifficultyEstimate {
  const models = annotations.map(({ file, rows }) => {
    // the metrics path checks repeated instructions and preferences the same way
    metricsFromAnnotations(rows, { invalid: opts.invalid, lengthControl: false, allowDuplicates: opts.allowDuplicates });
    try {
      return modelAnnotations(dedupe(rows), { invalid: opts.invalid });
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`);
    }
  });
  const references = [...new Set(models.map((m) => m.reference).filter(Boolean))];
  if (references.length > 1) throw new Error(`the annotations use ${references.length} references (${references.join(', ')}): a difficulty table is relative to one`);
  const informative = models.filter((m) => m.reference === undefined || m.name !== m.reference);
  if (informative.length < models.length && !opts.json) console.error(`difficulty: left out ${models.length - informative.length} file(s) of the reference against itself`);
  if (informative.length < 5 && !opts.json) console.error(`warning: a difficulty table from ${informative.length} models is noisy (alpaca_eval used dozens)`);
  return estimateDifficulty(informative);
}

function dedupe<T extends { instruction: string; input: string }>(rows: readonly T[]): T[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = instructionKey(r.instruction, r.input);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
