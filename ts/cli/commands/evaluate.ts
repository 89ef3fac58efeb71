// `farm evaluate`: win-rate of a model's outputs against reference outputs (alpaca_eval's habits), or the
// same metrics recomputed from an existing annotations file.
import { Command, Option } from 'commander';
import { join } from 'node:path';
import {
  alignOutputs, evaluateModel, metricsFromAnnotations, readAnnotations, readOutputs, readRows, detectKind, toAnnotations,
  writeJson, Leaderboard, rowFromMetrics, type EvalMetrics, type MetricsOptions,
} from '../../eval/index.ts';
import {
  addLengthControlOptions, defaultReferencePath, formatMetrics, lengthControlSettings, loadAnnotator, modelNameFor, parseJsonObject, toJson,
  type LengthControlFlags,
} from '../../eval/cli-support.ts';

interface EvaluateFlags extends LengthControlFlags {
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
  cache: boolean;
  json?: boolean;
}

const positiveInt = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
function metricOptions(f: EvaluateFlags): MetricsOptions {
  return {
    invalid: f.dropInvalid ? 'drop' : 'error',
    lengthControl: lengthControlSettings(f),
    allowDuplicates: f.allowDuplicates,
  };
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
  const board = Leaderboard.loadOrCreate(f.leaderboard);
  board.upsert(rowFromMetrics(name, metrics, { ...meta, updated: new Date().toISOString() }), { force: f.force });
  return board.save(f.leaderboard).csv;
}

async function run(f: EvaluateFlags): Promise<void> {
  if (f.annotations) {
    if (f.modelOutputs || f.referenceOutputs || f.annotator) {
      throw new Error('--annotations recomputes metrics from a file; do not combine it with --model-outputs / --reference-outputs / --annotator');
    }
    const rows = readAnnotations(f.annotations);
    const result = metricsFromAnnotations(rows, metricOptions(f));
    const name = f.name ?? result.model ?? 'model';
    const leaderboard = addToLeaderboard(f, name, result.metrics, { annotator: result.annotator, reference: result.reference });
    if (f.outputDir) writeJson(join(f.outputDir, 'metrics.json'), JSON.parse(toJson(result.metrics)));
    report(f, name, result.metrics, result.warnings, {
      ...(result.reference ? { reference: result.reference } : {}),
      ...(result.annotator ? { annotator: result.annotator } : {}),
      annotations_file: f.annotations,
      ...(leaderboard ? { leaderboard } : {}),
    });
    return;
  }

  if (!f.modelOutputs) throw new Error('pass --model-outputs FILE (with --annotator NAME), or --annotations FILE');
  if (!f.annotator) throw new Error('--annotator NAME is required with --model-outputs (e.g. the judges of `farm annotate`)');
  const modelRows = readRows(f.modelOutputs);
  if (detectKind(modelRows, f.modelOutputs) === 'annotations') {
    throw new Error(`${f.modelOutputs} already holds annotations (it has "preference"); use --annotations ${f.modelOutputs}`);
  }
  const model = readOutputs(f.modelOutputs);
  const referencePath = f.referenceOutputs ?? defaultReferencePath();
  if (!referencePath) {
    throw new Error('no reference outputs: pass --reference-outputs FILE (alpaca_eval model_outputs.json or an AlpacaFarm eval file) or set FARM_REFERENCE_OUTPUTS');
  }
  if (!f.referenceOutputs && !f.json) console.error(`reference: ${referencePath} (default)`);
  const reference = readOutputs(referencePath);
  const name = modelNameFor(f.modelOutputs, model, f.name);
  const referenceName = modelNameFor(referencePath, reference, f.referenceName);
  // data problems first: building a judge may need keys or a model load
  alignOutputs(reference, model, { allowMissing: f.allowMissing, allowDuplicates: f.allowDuplicates });
  const annotator = await loadAnnotator(f.annotator, parseJsonObject(f.annotatorOptions, '--annotator-options'));

  let lastShown = 0;
  const progress = f.json || !process.stderr.isTTY
    ? undefined
    : (done: number, total: number) => {
        if (done === total || Date.now() - lastShown > 500) {
          lastShown = Date.now();
          process.stderr.write(`\rannotating ${done}/${total}${done === total ? '\n' : ''}`);
        }
      };
  const result = await evaluateModel(
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
      onProgress: progress,
      ...metricOptions(f),
    },
  );
  const files: Record<string, string> = {};
  if (f.outputDir) {
    const dir = join(f.outputDir, name, annotator.name.replace(/[^\w.-]+/g, '_'));
    files.annotations_file = join(dir, 'annotations.json');
    files.metrics_file = join(dir, 'metrics.json');
    writeJson(files.annotations_file, result.annotations);
    writeJson(files.metrics_file, JSON.parse(toJson({ name, reference: referenceName, annotator: annotator.name, ...result.metrics })));
  }
  const leaderboard = addToLeaderboard(f, name, result.metrics, { annotator: annotator.name, reference: referenceName });
  if (leaderboard) files.leaderboard = leaderboard;
  report(f, name, result.metrics, result.warnings, {
    reference: referenceName,
    annotator: annotator.name,
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
    .option('--annotator <name>', 'annotator spec understood by the feedback registry (createAnnotator)')
    .option('--annotator-options <json>', 'JSON object passed to createAnnotator as options')
    .option('--name <model>', 'model name (default: generator field, else results/NAME/model_outputs.json, else file name)')
    .option('--reference-name <name>', 'reference name (default: its generator field or file name)')
    .option('--output-dir <dir>', 'write DIR/MODEL/ANNOTATOR/annotations.json and metrics.json (with --annotations: DIR/metrics.json)')
    .option('--leaderboard <csv>', 'add (or replace) this model\'s row in a leaderboard CSV, written with a .md beside it')
    .option('--force', 'allow a leaderboard row from another annotator or reference than the rows already there')
    .option('--max-instances <n>', 'evaluate only the first N reference instructions', positiveInt('--max-instances'))
    .option('--allow-missing', 'evaluate on the instructions both files share instead of failing on a mismatch')
    .option('--allow-duplicates', 'keep the first of duplicated instructions (in outputs or annotations) instead of failing')
    .option('--drop-invalid', 'drop (and count) invalid preferences instead of failing')
    .option('--no-cache', 'bypass the annotation cache')
    .addOption(new Option('--json', 'print the result as JSON on stdout (warnings also go to stderr)'));
  addLengthControlOptions(cmd).action(async (flags: EvaluateFlags) => {
    await run(flags);
  });
}
