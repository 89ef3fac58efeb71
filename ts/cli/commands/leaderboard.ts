// `farm leaderboard`: several models against one reference under one annotator, kept in a CSV (alpaca_eval
// layout) with a Markdown table beside it. Models already on the board are not re-evaluated.
import { Command } from 'commander';
import { join } from 'node:path';
import {
  alignOutputs, compareRankings, evaluateModel, Leaderboard, metricsFromAnnotations, readAnnotations, readOutputs, rowFromMetrics,
  writeJson, type SortKey,
} from '../../eval/index.ts';
import { defaultReferencePath, loadAnnotator, modelNameFor, parseJsonObject, readDifficulty, toJson } from '../../eval/cli-support.ts';

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
      if (!['markdown', 'csv', 'json'].includes(f.format)) throw new Error(`--format must be markdown, csv or json, got ${JSON.stringify(f.format)}`);
      printBoard(Leaderboard.load(csv), f);
    });

  lb.command('add')
    .description('add (or replace) models on a leaderboard from existing annotations files, without annotating anything')
    .argument('<csv>', 'leaderboard CSV (created when absent; a .md is written beside it)')
    .argument('<annotations...>', 'annotations files (one model each: output_1 = reference, output_2 = model)')
    .option('--name <model>', 'model name when adding a single file (default: generator_2 of the rows)')
    .option('--no-length-control', 'skip the length-controlled win-rate')
    .option('--drop-invalid', 'drop (and count) invalid preferences instead of failing')
    .option('--force', 'allow rows from another annotator or reference')
    .option('--sort-by <metric>', SORT_HELP, sortKey, 'win_rate' as SortKey)
    .option('--json', 'print the board as JSON')
    .action((csv: string, files: string[], f: CommonFlags & { name?: string; lengthControl: boolean; dropInvalid?: boolean; force?: boolean }) => {
      if (f.name && files.length > 1) throw new Error('--name applies to a single annotations file');
      const board = Leaderboard.loadOrCreate(csv);
      for (const file of files) {
        const r = metricsFromAnnotations(readAnnotations(file), { invalid: f.dropInvalid ? 'drop' : 'error', lengthControl: f.lengthControl });
        const name = f.name ?? r.model;
        if (!name) throw new Error(`${file}: rows carry no generator_2; pass --name`);
        for (const w of r.warnings) if (!f.json) console.error(`warning: ${name}: ${w}`);
        board.upsert(rowFromMetrics(name, r.metrics, { annotator: r.annotator, reference: r.reference, updated: new Date().toISOString() }), { force: f.force });
      }
      printBoard(board, f, board.save(csv, f.sortBy));
    });

  lb.command('build')
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
    .option('--no-length-control', 'skip the length-controlled win-rate')
    .option('--difficulty <file>', 'per-instruction difficulty table for the length-control fit')
    .option('--no-cache', 'bypass the annotation cache')
    .option('--sort-by <metric>', SORT_HELP, sortKey, 'win_rate' as SortKey)
    .option('--json', 'print the board as JSON')
    .action(async (csv: string, files: string[], f: CommonFlags & {
      annotator: string; annotatorOptions?: string; referenceOutputs?: string; referenceName?: string; outputDir?: string;
      force?: boolean; allowMissing?: boolean; lengthControl: boolean; difficulty?: string; cache: boolean;
    }) => {
      const referencePath = f.referenceOutputs ?? defaultReferencePath();
      if (!referencePath) throw new Error('no reference outputs: pass --reference-outputs FILE or set FARM_REFERENCE_OUTPUTS');
      const reference = readOutputs(referencePath);
      const referenceName = modelNameFor(referencePath, reference, f.referenceName);
      const board = Leaderboard.loadOrCreate(csv);
      const difficulty = f.difficulty ? readDifficulty(f.difficulty) : undefined;
      let annotator: Awaited<ReturnType<typeof loadAnnotator>> | undefined;
      let saved = board.save(csv, f.sortBy);
      for (const file of files) {
        const model = readOutputs(file);
        const name = modelNameFor(file, model);
        if (board.has(name) && !f.force) {
          if (!f.json) console.error(`${name}: already on the board, skipped`);
          continue;
        }
        alignOutputs(reference, model, { allowMissing: f.allowMissing });
        annotator ??= await loadAnnotator(f.annotator, parseJsonObject(f.annotatorOptions, '--annotator-options'));
        const r = await evaluateModel(reference.map((x) => ({ ...x, generator: referenceName })), model, {
          annotator, modelName: name, referenceName, allowMissing: f.allowMissing, noCache: !f.cache,
          lengthControl: f.lengthControl, ...(difficulty ? { difficulty } : {}),
        });
        for (const w of r.warnings) if (!f.json) console.error(`warning: ${name}: ${w}`);
        if (f.outputDir) writeJson(join(f.outputDir, name, annotator.name.replace(/[^\w.-]+/g, '_'), 'annotations.json'), r.annotations);
        board.upsert(rowFromMetrics(name, r.metrics, { annotator: annotator.name, reference: referenceName, updated: new Date().toISOString() }), { force: f.force });
        saved = board.save(csv, f.sortBy);
        if (!f.json) console.error(`${name}: win_rate ${r.metrics.win_rate.toFixed(2)} ± ${r.metrics.standard_error.toFixed(2)}`);
      }
      printBoard(board, f, saved);
    });

  lb.command('remove')
    .description('remove models from a leaderboard')
    .argument('<csv>', 'leaderboard CSV')
    .argument('<names...>', 'model names')
    .action((csv: string, names: string[]) => {
      const board = Leaderboard.load(csv);
      const missing = names.filter((n) => !board.remove(n));
      if (missing.length) throw new Error(`not on the board: ${missing.join(', ')}`);
      const saved = board.save(csv);
      console.error(`wrote ${saved.csv} and ${saved.markdown}`);
    });

  lb.command('compare')
    .description('rank correlation between two leaderboards (e.g. simulated vs human feedback, or two judges), as AlpacaFarm validates its simulator')
    .argument('<a>', 'first leaderboard CSV')
    .argument('<b>', 'second leaderboard CSV')
    .option('--sort-by <metric>', `${SORT_HELP} (used for both boards)`, sortKey, 'win_rate' as SortKey)
    .option('--by-b <metric>', 'metric of the second board when it differs', sortKey)
    .option('--json', 'print the comparison as JSON')
    .action((a: string, b: string, f: CommonFlags & { byB?: SortKey }) => {
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
