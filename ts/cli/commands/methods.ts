// One command per method (`farm sft`, `farm pairs`, `farm reward-model`, `farm score`, `farm best-of-n`,
// `farm expert-iteration`, `farm feedme`, `farm reward-conditioning`, `farm ppo`, `farm quark`, `farm dpo`).
// Each reads alpaca_eval / AlpacaFarm files (JSON or JSONL), takes its config from flags over an optional
// --config file.json over the method's defaults, and writes one run folder (ts/methods/run-folder.ts). The
// flags of a method's config are generated from its help table, so `--help` lists every field with its default.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { terminalProgress } from '../progress.ts';
import { DryRun } from '../../methods/run-folder.ts';
import { readInstructions } from '../../methods/jobs.ts';
import { resolveWorldSeed } from '../judge-options.ts';
import { checkKnownKeys, ConfigError, GENERATION_DEFAULTS, GENERATION_HELP } from '../../methods/common.ts';
import {
  runBestOfN, runDpo, runExpertIteration, runFeedME, runPairs, runPpo, runQuark, runRewardConditioning, runRewardModel, runScore, runSft,
  type JobOptions, type JobResult,
} from '../../methods/jobs.ts';
import { SFT_DEFAULTS, SFT_HELP } from '../../methods/sft.ts';
import { REWARD_MODEL_DEFAULTS, REWARD_MODEL_HELP } from '../../methods/reward-model.ts';
import { BEST_OF_N_DEFAULTS, BEST_OF_N_HELP } from '../../methods/best-of-n.ts';
import { EXPERT_ITERATION_DEFAULTS, EXPERT_ITERATION_HELP } from '../../methods/expert-iteration.ts';
import { PPO_HELP, PPO_METHOD_DEFAULTS } from '../../methods/ppo.ts';
import { QUARK_DEFAULTS, QUARK_HELP } from '../../methods/quark.ts';
import { DPO_HELP, DPO_METHOD_DEFAULTS } from '../../methods/dpo.ts';
import { ARCHITECTURES } from '../../experiments/presets.ts';
import { TREEBON_DEFAULTS, TREEBON_HELP } from '../../methods/treebon.ts';
import { RLP_DEFAULTS, RLP_HELP } from '../../methods/rlp.ts';
import { runRlp, runTreeBoN } from '../../methods/jobs.ts';
import { farmEquivalence } from '../../experiments/equivalence.ts';
import { createWorld } from '../../world/index.ts';

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function intArg(flag: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer >= ${min}`);
    return n;
  };
}

/** Parser for a config field from its default's type (optional fields without default are numbers). */
function fieldParser(key: string, def: unknown) {
  if (typeof def === 'boolean') return (v: string) => {
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new InvalidArgumentError('expected true or false');
  };
  if (typeof def === 'string') return (v: string) => v;
  return (v: string) => {
    if (def === null && (v === 'null' || v === 'none')) return null;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${key} expects a number${def === null ? ' or null' : ''}`);
    return n;
  };
}

const fmtDefault = (v: unknown) => (v === undefined ? '' : ` (default ${typeof v === 'object' ? JSON.stringify(v) : String(v)})`);

interface FieldGroup { keys: string[]; attr: (k: string) => string }

/** Adds one --flag per field of a config help table; returns how to read the given ones back. */
function addFields(cmd: Command, help: Record<string, string>, defaults: Record<string, unknown>, o: { skip?: string[]; prefix?: string } = {}): FieldGroup {
  const keys = Object.keys(help).filter((k) => !(o.skip ?? []).includes(k));
  const flagOf = (k: string) => (o.prefix ? `${o.prefix}-${kebab(k)}` : kebab(k));
  for (const k of keys) {
    const def = defaults[k];
    const value = typeof def === 'boolean' ? '<bool>' : '<value>';
    cmd.addOption(new Option(`--${flagOf(k)} ${value}`, `${help[k]}${fmtDefault(def)}`).argParser(fieldParser(k, def) as (v: string) => unknown));
  }
  return { keys, attr: (k) => camel(flagOf(k)) };
}

/** The fields given on the command line. */
function given(cmd: Command, g: FieldGroup): Record<string, unknown> {
  const opts = cmd.opts();
  return Object.fromEntries(g.keys.filter((k) => opts[g.attr(k)] !== undefined).map((k) => [k, opts[g.attr(k)]]));
}

/** A --config file: a JSON object of the method's fields (camelCase, or TRL-style snake_case); unknown keys are errors. */
export function readConfigFile(file: string, known: readonly string[], what: string): Record<string, unknown> {
  let v: unknown;
  try { v = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new ConfigError(`--config ${file}: ${(e as Error).message}`); }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`--config ${file}: expected a JSON object of ${what} settings`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[known.includes(k) ? k : known.includes(camel(k)) ? camel(k) : k] = x;
  try { checkKnownKeys(what, out, known); } catch (e) { throw new ConfigError(`--config ${file}: ${(e as Error).message}`); }
  return out;
}

interface CommonFlags { outputDir: string; config?: string; seed: number; threads: number; saveSteps?: number; resume?: boolean; force?: boolean; dryRun?: boolean; json?: boolean; progress: boolean; loggingSteps: number }

function common(cmd: Command, name: string, training: boolean): Command {
  cmd.option('--output-dir <dir>', 'the run folder (run.json, metrics.jsonl, checkpoints, outputs)', `runs/${name}`)
    .option('--config <file>', 'JSON file of method settings; flags override it')
    .option('--seed <n>', 'seed of initialization, data order and sampling (sets every method seed the config leaves unset)', intArg('--seed', 0), 1)
    .option('--threads <n>', 'native threads', intArg('--threads', 1), 2);
  if (training) cmd.option('--save-steps <k>', 'save a checkpoint every k steps (0: only the last)', intArg('--save-steps', 0), 20);
  return cmd.option('--resume', 'continue the run in --output-dir from its last checkpoint (same settings and inputs)')
    .option('--force', 'replace whatever --output-dir holds')
    .option('--dry-run', 'check every input, model and setting (the run folder\'s too), then stop before any training; nothing is written')
    .option('--json', 'print the summary as JSON on stdout')
    .option('--no-progress', 'no progress bar (log lines only)')
    .option('--logging-steps <n>', 'a progress line every n steps when output is not a terminal', intArg('--logging-steps', 1), 10);
}

function jobOptions(f: CommonFlags): JobOptions {
  return { outputDir: f.outputDir, seed: f.seed, threads: f.threads, saveSteps: f.saveSteps, resume: f.resume, force: f.force, dryRun: f.dryRun,
    progress: terminalProgress({ bar: f.progress, every: f.loggingSteps }) };
}

/** An action whose --dry-run stop (every check passed, nothing written) is reported instead of failing. */
function dryRunnable(body: (f: any) => Promise<void>) {
  return async (f: any, cmd: Command) => {
    try {
      await body(f);
    } catch (e) {
      if (!(e instanceof DryRun)) throw e;
      if (f.json) console.log(JSON.stringify({ command: cmd.name(), dry_run: true, dir: e.dir, resume_from: e.resumeFrom }));
      else console.log(`farm ${cmd.name()}: ${e.message}`);
    }
  };
}

function report(name: string, f: CommonFlags, r: JobResult, t0: number): void {
  if (f.json) { console.log(JSON.stringify({ command: name, dir: r.dir, ...r.summary })); return; }
  const show = Object.entries(r.summary).filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object')
    .map(([k, v]) => `  ${k}: ${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`);
  console.log(`farm ${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s; run folder ${r.dir}\n${show.join('\n')}`);
}

/** Method config = defaults < --config file < flags. */
function methodConfig(f: CommonFlags, known: readonly string[], what: string, flags: Record<string, unknown>): Record<string, unknown> {
  return { ...(f.config ? readConfigFile(f.config, known, what) : {}), ...flags };
}

const GEN_KEYS = Object.keys(GENERATION_HELP);

/** --eval-data, and the --eval-* decoding flags of the outputs a training command writes. */
function evalOutputs(cmd: Command): FieldGroup {
  cmd.option('--eval-data <file>', 'instructions to write model_outputs.json for after training (alpaca_eval format), e.g. the eval split');
  return addFields(cmd, GENERATION_HELP, GENERATION_DEFAULTS as unknown as Record<string, unknown>, { prefix: 'eval', skip: ['seed'] });
}

export function register(program: Command): void {
  const t = () => performance.now();

  // ---- sft
  {
    const cmd = common(program.command('sft').description('supervised fine-tuning on demonstrations (instruction, input, output): a new model or from --model'), 'sft', true)
      .requiredOption('--data <file>', 'demonstrations, JSON or JSONL with instruction, input, output')
      .option('--model <dir>', 'start from this model folder (or run folder); default: a new model')
      .option('--architecture <name|json>', `size of a new model: ${Object.keys(ARCHITECTURES).join(', ')} or a JSON LlamaConfig without vocab_size`, 'quick')
      .option('--tokenizer <file>', 'tokenizer.json of a new model (default: a byte-level BPE trained on --data)')
      .option('--vocab-size <n>', 'vocabulary of the BPE trained on --data', intArg('--vocab-size', 300), 1024);
    const fields = addFields(cmd, SFT_HELP, SFT_DEFAULTS, { skip: ['seed'] });
    const gen = evalOutputs(cmd);
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const fromFlag = cmd.getOptionValueSource('architecture') === 'cli';
      if (f.model && (fromFlag || f.tokenizer)) throw new ConfigError('--model starts from a checkpoint; --architecture and --tokenizer are for a new model');
      let architecture;
      if (!f.model) {
        if (ARCHITECTURES[f.architecture]) architecture = ARCHITECTURES[f.architecture];
        else {
          try { architecture = JSON.parse(f.architecture); } catch { throw new ConfigError(`--architecture ${f.architecture}: not a known size (${Object.keys(ARCHITECTURES).join(', ')}) nor JSON`); }
        }
      }
      const config = methodConfig(f, [...Object.keys(SFT_HELP), 'seed'], 'SFT', given(cmd, fields));
      const r = await runSft(jobOptions(f), { data: f.data, model: f.model, architecture, tokenizer: f.tokenizer, vocabSize: f.model ? undefined : f.vocabSize,
        evalData: f.evalData, config, generation: given(cmd, gen) });
      report('sft', f, r, t0);
    }));
  }

  // ---- pairs
  {
    const cmd = common(program.command('pairs').description('two samples per instruction (pairs.json, AlpacaFarm\'s outputs_pairs layout) to be annotated by `farm annotate`'), 'pairs', false)
      .requiredOption('--model <dir>', 'the policy (model folder or run folder), usually the SFT model')
      .requiredOption('--data <file>', 'instructions (instruction, input), JSON or JSONL');
    const gen = addFields(cmd, GENERATION_HELP, { ...GENERATION_DEFAULTS, temperature: 1 }, { skip: ['seed'] });
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      if (f.config) throw new ConfigError('farm pairs has no method config; use the sampling flags');
      const r = await runPairs(jobOptions(f), { model: f.model, data: f.data, generation: given(cmd, gen) });
      report('pairs', f, r, t0);
    }));
  }

  // ---- reward-model
  {
    const cmd = common(program.command('reward-model').description('a reward model on preference pairs (Bradley-Terry), initialized from --model\'s weights with a zero scalar head'), 'reward-model', true)
      .requiredOption('--model <dir>', 'the model to start from (usually the SFT model)')
      .requiredOption('--preferences <file>', 'preference records (instruction, input, output_1, output_2, preference), JSON or JSONL')
      .option('--eval-preferences <file>', 'held-out preference records: eval/accuracy after each epoch');
    const fields = addFields(cmd, REWARD_MODEL_HELP, REWARD_MODEL_DEFAULTS, { skip: ['seed'] });
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const config = methodConfig(f, Object.keys(REWARD_MODEL_HELP), 'reward model', given(cmd, fields));
      const r = await runRewardModel(jobOptions(f), { model: f.model, preferences: f.preferences, evalPreferences: f.evalPreferences, config });
      report('reward-model', f, r, t0);
    }));
  }

  // ---- score
  {
    const cmd = common(program.command('score').description('reward-model scores of outputs (adds "reward") or pairs (adds "reward_1", "reward_2"; agreement with labels when present)'), 'score', false)
      .requiredOption('--reward-model <dir>', 'the reward model folder')
      .requiredOption('--data <file>', 'outputs (instruction, input, output) or pairs (output_1, output_2[, preference]), JSON or JSONL');
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      if (f.config) throw new ConfigError('farm score has no method config');
      const r = await runScore(jobOptions(f), { rewardModel: f.rewardModel, data: f.data });
      report('score', f, r, t0);
    }));
  }

  // ---- best-of-n
  {
    const cmd = common(program.command('best-of-n').description('best-of-n decoding: n samples per instruction, the reward model\'s argmax (model_outputs.json)'), 'best-of-n', false)
      .requiredOption('--model <dir>', 'the policy')
      .requiredOption('--reward-model <dir>', 'the reward model (same tokenizer as the policy)')
      .requiredOption('--data <file>', 'instructions, JSON or JSONL')
      .option('--keep-candidates', 'also write every sample and its reward (candidates.json)');
    const fields = addFields(cmd, BEST_OF_N_HELP, BEST_OF_N_DEFAULTS as unknown as Record<string, unknown>, { skip: ['seed'] });
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const config = methodConfig(f, [...Object.keys(BEST_OF_N_HELP), 'keepCandidates'], 'best-of-n', { ...given(cmd, fields), ...(f.keepCandidates ? { keepCandidates: true } : {}) });
      const r = await runBestOfN(jobOptions(f), { model: f.model, rewardModel: f.rewardModel, data: f.data, config });
      report('best-of-n', f, r, t0);
    }));
  }

  // ---- expert-iteration
  {
    const cmd = common(program.command('expert-iteration').description('expert iteration: best-of-n on the instructions, then SFT on the choices (AlpacaFarm: one round of best-of-16)'), 'expert-iteration', true)
      .requiredOption('--model <dir>', 'the policy (usually the SFT model)')
      .requiredOption('--reward-model <dir>', 'the reward model')
      .requiredOption('--data <file>', 'instructions to decode (AlpacaFarm: the unlabeled split)');
    const top = addFields(cmd, { rounds: EXPERT_ITERATION_HELP.rounds, minReward: EXPERT_ITERATION_HELP.minReward }, { rounds: 1, minReward: undefined });
    const bon = addFields(cmd, { n: BEST_OF_N_HELP.n, temperature: BEST_OF_N_HELP.temperature, topP: BEST_OF_N_HELP.topP, maxNewTokens: BEST_OF_N_HELP.maxNewTokens }, BEST_OF_N_DEFAULTS as unknown as Record<string, unknown>);
    const sftF = addFields(cmd, { lr: SFT_HELP.lr, epochs: SFT_HELP.epochs, batchSize: SFT_HELP.batchSize }, SFT_DEFAULTS);
    const gen = evalOutputs(cmd);
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const file = f.config ? readConfigFile(f.config, Object.keys(EXPERT_ITERATION_DEFAULTS), 'expert iteration') : {};
      const config = { ...file, ...given(cmd, top), bestOfN: { ...(file.bestOfN as object ?? {}), ...given(cmd, bon) }, sft: { ...(file.sft as object ?? {}), ...given(cmd, sftF) } };
      const r = await runExpertIteration(jobOptions(f), { model: f.model, rewardModel: f.rewardModel, data: f.data, evalData: f.evalData, config, generation: given(cmd, gen) });
      report('expert-iteration', f, r, t0);
    }));
  }

  // ---- feedme and reward-conditioning (SFT on preferences)
  for (const [name, desc, run] of [
    ['feedme', 'binary FeedME: SFT from --model on the preferred output of each pair', runFeedME],
    ['reward-conditioning', 'binary reward conditioning: SFT on (good token, x, preferred) and (bad token, x, rejected); outputs sampled after the good token', runRewardConditioning],
  ] as const) {
    const cmd = common(program.command(name).description(desc), name, true)
      .requiredOption('--model <dir>', 'the policy to start from (usually the SFT model)')
      .requiredOption('--preferences <file>', 'preference records, JSON or JSONL');
    const fields = addFields(cmd, SFT_HELP, SFT_DEFAULTS, { skip: ['seed'] });
    const gen = evalOutputs(cmd);
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const config = methodConfig(f, [...Object.keys(SFT_HELP), 'seed'], name, given(cmd, fields));
      const r = await run(jobOptions(f), { model: f.model, preferences: f.preferences, evalData: f.evalData, config, generation: given(cmd, gen) });
      report(name, f, r, t0);
    }));
  }

  // ---- ppo and quark (RL against a reward model)
  for (const [name, desc, help, defaults, run] of [
    ['ppo', 'PPO against a reward model (AlpacaFarm\'s RLHF; TRL\'s metric names), value model from the reward model', PPO_HELP, PPO_METHOD_DEFAULTS, runPpo],
    ['quark', 'Quark: reward-quantile conditioning with a per-token KL penalty (best quantile only by default; --best-quantile-only false for quantile tokens)', QUARK_HELP, QUARK_DEFAULTS, runQuark],
  ] as const) {
    const cmd = common(program.command(name).description(desc), name, true)
      .requiredOption('--model <dir>', 'the policy to start from (usually the SFT model)')
      .requiredOption('--reward-model <dir>', 'the reward model (same tokenizer as the policy)')
      .requiredOption('--data <file>', 'instructions to roll out on (AlpacaFarm: the unlabeled split)');
    const fields = addFields(cmd, help as Record<string, string>, defaults as unknown as Record<string, unknown>, { skip: ['seed'] });
    const gen = evalOutputs(cmd);
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const config = methodConfig(f, Object.keys(help), name === 'ppo' ? 'PPO' : 'Quark', given(cmd, fields));
      const r = await (run as typeof runPpo)(jobOptions(f), { model: f.model, rewardModel: f.rewardModel, data: f.data, evalData: f.evalData, config, generation: given(cmd, gen) });
      report(name, f, r, t0);
    }));
  }

  // ---- dpo
  {
    const cmd = common(program.command('dpo').description('direct preference optimization against the frozen starting model'), 'dpo', true)
      .requiredOption('--model <dir>', 'the policy to start from (usually the SFT model)')
      .requiredOption('--preferences <file>', 'preference records, JSON or JSONL')
      .option('--eval-preferences <file>', 'held-out preference records for eval/* statistics');
    const fields = addFields(cmd, DPO_HELP, DPO_METHOD_DEFAULTS as unknown as Record<string, unknown>, { skip: ['seed'] });
    const gen = evalOutputs(cmd);
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const config = methodConfig(f, Object.keys(DPO_HELP), 'DPO', given(cmd, fields));
      const r = await runDpo(jobOptions(f), { model: f.model, preferences: f.preferences, evalPreferences: f.evalPreferences, evalData: f.evalData, config, generation: given(cmd, gen) });
      report('dpo', f, r, t0);
    }));
  }

  // ---- treebon (tree-search best-of-n)
  {
    const cmd = common(program.command('treebon').description('TreeBoN decoding: best-of-N as a tree search over a forked KV cache, prefixes ranked by the weighted implicit DPO reward (or a reward model), the reward model\'s choice among the leaves'), 'treebon', false)
      .requiredOption('--model <dir>', 'the sampling policy (the paper: the SFT model)')
      .requiredOption('--reward-model <dir>', 'the final scorer (same tokenizer as the policy)')
      .requiredOption('--data <file>', 'instructions, JSON or JSONL')
      .option('--dpo-model <dir>', 'partial reward implicit-dpo: the DPO-trained model')
      .option('--ref-model <dir>', 'partial reward implicit-dpo: the DPO model\'s reference (default: --model)')
      .option('--partial-reward-model <dir>', 'partial reward reward-model: the model read on prefixes (default: --reward-model)')
      .option('--keep-candidates', 'also write every leaf and its reward (candidates.json)');
    const fields = addFields(cmd, TREEBON_HELP, TREEBON_DEFAULTS as unknown as Record<string, unknown>, { skip: ['seed'] });
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      const config = methodConfig(f, [...Object.keys(TREEBON_HELP), 'keepCandidates'], 'TreeBoN', { ...given(cmd, fields), ...(f.keepCandidates ? { keepCandidates: true } : {}) });
      const r = await runTreeBoN(jobOptions(f), { model: f.model, rewardModel: f.rewardModel, dpoModel: f.dpoModel, refModel: f.refModel,
        partialRewardModel: f.partialRewardModel, data: f.data, config });
      report('treebon', f, r, t0);
    }));
  }

  // ---- rlp (reward learning on policy)
  {
    const cmd = common(program.command('rlp').description('RLP: retrain the reward model on the PPO policy\'s outputs (uml: multi-view information bottleneck on its hidden state; spg: synthetic pairs from equivalence groups), then PPO again from --model'), 'rlp', true)
      .requiredOption('--variant <uml|spg>', 'RLP-UML or RLP-SPG')
      .requiredOption('--model <dir>', 'the SFT model (the new reward model and the second PPO run start from it)')
      .requiredOption('--ppo-model <dir>', 'the first PPO run\'s policy (its outputs are sampled)')
      .option('--reward-model <dir>', 'the first run\'s reward model (spg: ranks each group\'s outputs)')
      .requiredOption('--preferences <file>', 'the preference pairs the first reward model learned from')
      .option('--eval-preferences <file>', 'held-out preference pairs: the new reward model\'s eval/accuracy')
      .requiredOption('--data <file>', 'unlabeled instructions (sampled, then rolled out by PPO)')
      .option('--samples <file>', 'samples.json of an earlier farm rlp run of the same --ppo-model (skips sampling)')
      .option('--equivalence <text|farm>', 'spg: semantic equivalence of outputs: normalized text, or the farm world\'s checker', 'text')
      .option('--world-seed <n>', 'the farm world of --equivalence farm (default: the world_seed the --data records carry, else 1; another value than theirs is refused)', intArg('--world-seed', 0));
    const fields = addFields(cmd, RLP_HELP, RLP_DEFAULTS as unknown as Record<string, unknown>, { skip: ['seed'] });
    const rmF = addFields(cmd, REWARD_MODEL_HELP, REWARD_MODEL_DEFAULTS, { prefix: 'rm', skip: ['seed'] });
    const ppoF = addFields(cmd, PPO_HELP as Record<string, string>, PPO_METHOD_DEFAULTS as unknown as Record<string, unknown>, { prefix: 'ppo' });
    const gen = evalOutputs(cmd);
    cmd.action(dryRunnable(async (f) => {
      const t0 = t();
      if (f.variant !== 'uml' && f.variant !== 'spg') throw new ConfigError(`--variant must be uml or spg, got ${f.variant}`);
      if (f.equivalence !== 'text' && f.equivalence !== 'farm') throw new ConfigError(`--equivalence must be text or farm, got ${f.equivalence}`);
      if (f.variant !== 'spg' && cmd.getOptionValueSource('equivalence') === 'cli') throw new ConfigError('--equivalence serves --variant spg only');
      const file = f.config ? readConfigFile(f.config, [...Object.keys(RLP_HELP), 'seed', 'rewardModel', 'ppo'], 'RLP') : {};
      const config = { ...file, ...given(cmd, fields), rewardModel: { ...(file.rewardModel as object ?? {}), ...given(cmd, rmF) }, ppo: { ...(file.ppo as object ?? {}), ...given(cmd, ppoF) } };
      if (f.worldSeed !== undefined && f.equivalence !== 'farm') throw new ConfigError('--world-seed serves --equivalence farm only');
      const worldSeed = f.equivalence === 'farm' ? resolveWorldSeed(f.worldSeed, [{ what: f.data, records: readInstructions(f.data, '--data') }]).seed : undefined;
      const equivalence = worldSeed !== undefined ? farmEquivalence(createWorld({ seed: worldSeed })) : undefined;
      const r = await runRlp(jobOptions(f), { variant: f.variant, model: f.model, ppoModel: f.ppoModel, rewardModel: f.rewardModel, preferences: f.preferences,
        evalPreferences: f.evalPreferences, data: f.data, samples: f.samples, evalData: f.evalData, config, generation: given(cmd, gen),
        equivalence, equivalenceName: worldSeed !== undefined ? `farm:${worldSeed}` : 'normalized-text' });
      report(`rlp (${f.variant})`, f, r, t0);
    }));
  }
}
