// `farm evaluate`: win-rate of a model's outputs against reference outputs (alpaca_eval's habits), or the
// same metrics recomputed from an existing annotations file.
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  alignOutputs, evaluateModel, metricsFromAnnotations, readAnnotations, readOutputs, readRows, detectKind,
  writeJson, Leaderboard, rowFromMetrics, type EvalMetrics, type LengthControlSettings, type MetricsOptions,
} from '../../eval/index.ts';
import {
  addLengthControlOptions, checkInputFile, defaultReferencePath, formatMetrics, lengthControlSettings, loadAnnotator, modelNameFor, parseJsonObject,
  pathInside, toJson, type LengthControlFlags,
} from '../../eval/cli-support.ts';
import { AnnotationCache, usesFarmWorld } from '../../feedback/index.ts';
import { terminalProgress } from '../progress.ts';
import { addJudgeOptions, annotatorOptions, checkWorldCoverage, intArg, resolveWorldSeed, type JudgeFlags } from '../judge-options.ts';

interface EvaluateFlags extends LengthControlFlags, JudgeFlags {
  modelOutputs?: string;
  referenceOutputs?: string;
  annotations?: string;
  annotator?: string;
  annotatorOptions?: string;
  name?: string;
  referenceName?: string;
  outputDir?: string;
  leaderboard?: string;
  force?: boolean;
  maxInstances?: number;
  allowMissing?: boolean;
  allowDuplicates?: boolean;
  dropInvalid?: boolean;
  json?: boolean;
  progress: boolean;
}

function metricOptions(f: EvaluateFlags, lengthControl: false | LengthControlSettings): MetricsOptions {
  return { invalid: f.dropInvalid ? 'drop' : 'error', lengthControl, allowDuplicates: f.allowDuplicates };
}

function report(f: EvaluateFlags, name: string, metrics: EvalMetrics, warnings: string[], extra: Record<string, unknown>): void {
  // warnings go to stderr in every mode: a script reading --json still shows a person what is off
  for (const w of warnings) console.error(`warning: ${w}`);
  if (f.json) {
    console.log(toJson({ name, ...extra, metrics, warnings }));
    return;
  }
  console.log(formatMetrics(name, metrics));
  for (const [k, v] of Object.entries(extra)) if (typeof v === 'string') console.error(`${k}: ${v}`);
}

function addToLeaderboard(f: EvaluateFlags, name: string, metrics: EvalMetrics, meta: { annotator?: string; reference?: string }): string | undefined {
  if (!f.leaderboard) return undefined;
  return Leaderboard.update(f.leaderboard, (board) => {
    board.upsert(rowFromMetrics(name, metrics, { ...meta, updated: new Date().toISOString() }), { force: f.force });
  }).saved.csv;
}

/** Flags that only make sense when annotating (not with --annotations). */
const ANNOTATING_ONLY = ['modelOutputs', 'referenceOutputs', 'annotator', 'annotatorOptions', 'referenceName', 'maxInstances', 'allowMissing', 'worldSeed', 'cachePath',
  'baseUrl', 'template', 'batchSize', 'temperature', 'maxTokens', 'logitBias', 'soft', 'concurrency', 'rpm', 'timeoutMs', 'maxRetries'] as const;

async function run(f: EvaluateFlags): Promise<void> {
  // every flag and file is checked before any judge runs
  const lengthControl = lengthControlSettings(f);
  for (const [flag, path] of [['--model-outputs', f.modelOutputs], ['--reference-outputs', f.referenceOutputs], ['--annotations', f.annotations]] as const) checkInputFile(flag, path);
  if (f.annotations) {
    const extra = ANNOTATING_ONLY.filter((k) => f[k] !== undefined);
    if (extra.length) throw new InvalidArgumentError(`--annotations recomputes metrics from a file; --${extra.map((k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).join(', --')} belong to annotating (--model-outputs)`);
    const rows = readAnnotations(f.annotations);
    const result = metricsFromAnnotations(rows, metricOptions(f, lengthControl));
    const name = f.name ?? result.model ?? 'model';
    const leaderboard = addToLeaderboard(f, name, result.metrics, { annotator: result.annotator, reference: result.reference });
    const files: Record<string, string> = {};
    if (f.outputDir) writeJson((files.metrics_file = pathInside(f.outputDir, 'metrics.json')), JSON.parse(toJson(result.metrics)));
    report(f, name, result.metrics, result.warnings, {
      ...(result.reference ? { reference: result.reference } : {}),
      ...(result.annotator ? { annotator: result.annotator } : {}),
      annotations_file: f.annotations,
      ...files,
      ...(leaderboard ? { leaderboard } : {}),
    });
    return;
  }

  if (!f.modelOutputs) throw new InvalidArgumentError('pass --model-outputs FILE (with --annotator NAME), or --annotations FILE');
  if (!f.annotator) throw new InvalidArgumentError('--annotator NAME is required with --model-outputs (e.g. the judges of `farm annotate`)');
  const extraOptions = parseJsonObject(f.annotatorOptions, '--annotator-options');
  const modelRows = readRows(f.modelOutputs);
  if (detectKind(modelRows, f.modelOutputs) === 'annotations') {
    throw new InvalidArgumentError(`${f.modelOutputs} already holds annotations (it has "preference"); use --annotations ${f.modelOutputs}`);
  }
  const model = readOutputs(f.modelOutputs);
  const referencePath = f.referenceOutputs ?? defaultReferencePath();
  if (!referencePath) {
    throw new InvalidArgumentError('no reference outputs: pass --reference-outputs FILE (alpaca_eval model_outputs.json or an AlpacaFarm eval file) or set FARM_REFERENCE_OUTPUTS');
  }
  if (!f.referenceOutputs && !f.json) console.error(`reference: ${referencePath} (default)`);
  const reference = readOutputs(referencePath);
  const name = modelNameFor(f.modelOutputs, model, f.name);
  const referenceName = modelNameFor(referencePath, reference, f.referenceName);
  // data problems first: building a judge may need keys or a model load
  alignOutputs(reference, model, { allowMissing: f.allowMissing, allowDuplicates: f.allowDuplicates });
  const optionSeed = extraOptions.worldSeed;
  if (optionSeed !== undefined && f.worldSeed !== undefined && optionSeed !== f.worldSeed) throw new InvalidArgumentError(`--world-seed ${f.worldSeed} and --annotator-options worldSeed ${String(optionSeed)} disagree`);
  const world = resolveWorldSeed(f.worldSeed ?? (optionSeed as number | undefined), [{ what: f.modelOutputs, records: model }, { what: referencePath, records: reference }]);
  const coverage = checkWorldCoverage(f.annotator, world.seed, world.from, model);
  if (coverage.warning) console.error(`warning: ${coverage.warning}`);
  const opts = { ...annotatorOptions(f, f.annotator, { worldSeed: world.seed }), ...extraOptions, worldSeed: world.seed };
  let annotator;
  try {
    annotator = await loadAnnotator(f.annotator, opts);
  } catch (e) {
    const m = (e as Error).message;
    throw new Error(/^annotator options/.test(m) && f.annotatorOptions ? `--annotator-options: ${m}` : m);
  }

  const progress = terminalProgress({ bar: f.progress && !f.json, tty: process.stderr.isTTY && !f.json });
  progress.start(`evaluate (${annotator.name})`, Math.min(reference.length, f.maxInstances ?? Infinity));
  let result;
  try {
    result = await evaluateModel(
      reference.map((r) => ({ ...r, generator: referenceName })),
      model,
      {
        annotator,
        modelName: name,
        referenceName,
        allowMissing: f.allowMissing,
        allowDuplicates: f.allowDuplicates,
        maxInstances: f.maxInstances,
        noCache: !f.cache,
        onProgress: (done: number, total: number) => { progress.update(Math.min(done, total)); },
        ...metricOptions(f, lengthControl),
      },
    );
  } finally {
    progress.stop();
    if (opts.cache instanceof AnnotationCache) opts.cache.close();
  }
  const files: Record<string, string> = {};
  if (f.outputDir) {
    // names come from data (a generator field, --name): one safe segment each, always inside --output-dir
    files.annotations_file = pathInside(f.outputDir, name, annotator.name, 'annotations.json');
    files.metrics_file = pathInside(f.outputDir, name, annotator.name, 'metrics.json');
    writeJson(files.annotations_file, result.annotations);
    writeJson(files.metrics_file, JSON.parse(toJson({ name, reference: referenceName, annotator: annotator.name, ...result.metrics })));
  }
  const leaderboard = addToLeaderboard(f, name, result.metrics, { annotator: annotator.name, reference: referenceName });
  if (leaderboard) files.leaderboard = leaderboard;
  report(f, name, result.metrics, result.warnings, {
    reference: referenceName,
    annotator: annotator.name,
    ...(usesFarmWorld(f.annotator) ? { world_seed: world.seed } : {}),
    ...(result.total_price > 0 ? { price: `$${result.total_price.toFixed(4)}` } : {}),
    ...(f.json ? { alignment: result.alignment, annotator_stats: result.annotator_stats, total_price: result.total_price, total_time: result.total_time } : {}),
    ...files,
  });
}


export function register(program: Command): void {
  const cmd = program
    .command('evaluate')
    .description(
      'Win-rate of a model against reference outputs (reference = output_1, model = output_2; draws count 0.5), ' +
        'with standard error and length-controlled win-rate; or recompute the metrics from an annotations file',
    )
    .option('--model-outputs <file>', 'model outputs: alpaca_eval model_outputs.json or AlpacaFarm eval file (JSON array or JSONL)')
    .option('--reference-outputs <file>', 'reference outputs in the same formats (default: $FARM_REFERENCE_OUTPUTS, else ../shared text_davinci_003)')
    .option('--annotations <file>', 'recompute metrics from an alpaca_eval/AlpacaFarm annotations file (output_1, output_2, preference)')
    .option('--annotator <name>', 'annotator spec understood by the feedback registry (createAnnotator): pool, panel, a farm judge, openai:MODEL, model:DIR, ...')
    .option('--annotator-options <json>', 'JSON object of createAnnotator options (seed, worldSeed, flipP, swap, http); unknown keys are refused')
    .option('--name <model>', 'model name (default: generator field, else results/NAME/model_outputs.json, else file name)')
    .option('--reference-name <name>', 'reference name (default: its generator field or file name)')
    .option('--output-dir <dir>', 'write DIR/MODEL/ANNOTATOR/annotations.json and metrics.json (with --annotations: DIR/metrics.json)')
    .option('--leaderboard <csv>', 'add (or replace) this model\'s row in a leaderboard CSV, written with a .md beside it')
    .option('--force', 'allow a leaderboard row from another annotator or reference than the rows already there')
    .addOption(new Option('--max-instances <n>', 'evaluate only the first N reference instructions').argParser(intArg('--max-instances', 1)))
    .option('--allow-missing', 'evaluate on the instructions both files share instead of failing on a mismatch')
    .option('--allow-duplicates', 'keep the first of duplicated instructions (in outputs or annotations) instead of failing')
    .option('--drop-invalid', 'drop (and count) invalid preferences instead of failing')
    .addOption(new Option('--json', 'print the result as JSON on stdout (warnings also go to stderr)'))
    .option('--no-progress', 'no progress bar (log lines only)');
  addJudgeOptions(addLengthControlOptions(cmd)).action(async (flags: EvaluateFlags) => {
    await run(flags);
  });
}
