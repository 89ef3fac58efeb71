// The quick pipeline on the farm world (what `npm start` runs): data -> tokenizer -> SFT -> samples ->
// evaluation against the reference outputs by the simulated pool, the human panel and the gold standard.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, type Model, type ModelConfig } from '../engine/index.ts';
import { generate } from '../engine/generate.ts';
import { createWorld } from '../world/index.ts';
import { generateSplits, writeSplits } from '../data/splits.ts';
import { formatPrompt, type AlpacaRecord } from '../data/template.ts';
import { trainBpe, type Tokenizer } from '../tokenizer/index.ts';
import { createAnnotator } from '../feedback/index.ts';
import { evaluateModel, type EvaluationResult } from '../eval/index.ts';
import { sft, type SftStepLog } from './sft.ts';
import { trainRewardModel, rewardScorer, type PreferenceRecord } from './reward-model.ts';
import { bestOfN } from './best-of-n.ts';
import { scalarModelFrom } from './common.ts';

export interface QuickPipelineOptions {
  /** Where data, tokenizer, model and outputs go. */
  outDir: string;
  seed?: number;
  threads?: number;
  /** Data preset of the farm world. */
  preset?: string;
  vocabSize?: number;
  model?: Partial<ModelConfig>;
  sftEpochs?: number;
  sftLr?: number;
  batchSize?: number;
  /** Evaluation instructions (the first N of the eval split). */
  evalInstances?: number;
  /** Sampling temperature of the evaluated outputs (AlpacaFarm: 0.7). */
  temperature?: number;
  maxNewTokens?: number;
  /** Preference instructions labelled by the noisy pool for the reward model (0 skips the RM stages). */
  preferencePairs?: number;
  rewardEpochs?: number;
  /** n of best-of-n decoding with the reward model. */
  bestOfN?: number;
  log?: (line: string) => void;
  onSftStep?: (s: SftStepLog) => void;
}

export interface QuickPipelineResult {
  sft: { steps: number; firstLoss: number; finalLoss: number; tokensPerSecond: number; seconds: number };
  /** One row per (method, annotator): win-rate against the reference outputs. */
  evaluations: { method: string; annotator: string; win_rate: number; standard_error: number; n_total: number }[];
  /** Mean gold quality (0-1) per method, with the reference and the demonstrator beside them. */
  gold: Record<string, number>;
  rewardModel?: { pairs: number; trainAccuracy: number; heldOutAgreementWithPanel: number };
  samples: { instruction: string; input: string; output: string }[];
  seconds: number;
}

export const QUICK_MODEL: Omit<ModelConfig, 'vocab_size'> = {
  hidden_size: 128, intermediate_size: 344, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4,
  max_position_embeddings: 256, tie_word_embeddings: true,
};

export async function runQuickPipeline(o: QuickPipelineOptions): Promise<QuickPipelineResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const seed = o.seed ?? 1;
  mkdirSync(o.outDir, { recursive: true });

  // 1. The world and its splits.
  const world = createWorld({ seed });
  const splits = generateSplits(world, o.preset ?? 'quick', { seed });
  writeSplits(join(o.outDir, 'data'), splits, { preset: o.preset ?? 'quick', seed, command: 'farm quickstart' });
  log(`data: ${Object.entries(splits).map(([k, v]) => `${k} ${v.length}`).join(', ')} -> ${join(o.outDir, 'data')}`);

  // 2. A byte-level BPE tokenizer trained on the SFT split.
  const texts = splits.sft.map((r) => `${formatPrompt(r)}${r.output}`);
  const tokenizer: Tokenizer = trainBpe(texts, { vocabSize: o.vocabSize ?? 1024 });
  tokenizer.save(join(o.outDir, 'tokenizer.json'));
  log(`tokenizer: ${tokenizer.vocabSize} tokens`);

  // 3. SFT.
  const engine = await Engine.create({ threads: o.threads ?? 2, seed });
  const model: Model = engine.createModel({ ...QUICK_MODEL, ...o.model, vocab_size: tokenizer.vocabSize });
  log(`model: ${(model.numParameters / 1e6).toFixed(2)}M parameters`);
  let firstLoss = NaN;
  const res = await sft(engine, model, tokenizer, splits.sft as AlpacaRecord[], {
    epochs: o.sftEpochs ?? 6, lr: o.sftLr ?? 3e-3, batchSize: o.batchSize ?? 16, seed,
    onStep: (s) => { if (s.step === 1) firstLoss = s.loss; o.onSftStep?.(s); },
  });
  await engine.saveModel(model, join(o.outDir, 'sft'));
  tokenizer.save(join(o.outDir, 'sft', 'tokenizer.json'));
  log(`sft: ${res.steps} steps, loss ${firstLoss.toFixed(3)} -> ${res.finalLoss.toFixed(3)} (response tokens), ${res.seconds.toFixed(0)} s`);

  // 4. Outputs on the evaluation instructions (AlpacaFarm samples at temperature 0.7).
  const evalSet = splits.eval.slice(0, o.evalInstances ?? 200);
  const decode = (tokens: number[]) => tokenizer.decode(tokens, { skipSpecialTokens: true }).trim();
  const samplePolicy = async (rows: { instruction: string; input: string }[], n: number, temperature: number, sampleSeed: number) => {
    const prompts = rows.map((r) => tokenizer.encode(formatPrompt(r), { addBos: true }));
    return engine.generate(model, prompts, { n, temperature, maxNewTokens: o.maxNewTokens ?? 96, eosTokenId: tokenizer.eosId, seed: sampleSeed });
  };
  const sftSamples = await samplePolicy(evalSet, 1, o.temperature ?? 0.7, seed);
  const methods: Record<string, { instruction: string; input: string; output: string; generator: string }[]> = {
    sft: evalSet.map((r, i) => ({ instruction: r.instruction, input: r.input, generator: 'sft', output: decode(sftSamples[i][0].tokens) })),
  };

  // 5. Reward model on pairs of SFT samples labelled by the noisy simulated pool (AlpacaFarm's p = 0.25
  // flips), initialized from the SFT weights; then best-of-n decoding with it.
  let rewardModel: QuickPipelineResult['rewardModel'];
  const nPairs = Math.min(o.preferencePairs ?? 1000, splits.preference.length);
  if (nPairs > 0) {
    const prefRows = splits.preference.slice(0, nPairs);
    const two = await samplePolicy(prefRows, 2, 1, seed + 1);
    const pairs = prefRows.map((r, i) => ({ instruction: r.instruction, input: r.input, output_1: decode(two[i][0].tokens), output_2: decode(two[i][1].tokens) }));
    const trainPool = await createAnnotator('pool:train', { world, seed });
    const labels = await trainPool.annotate(pairs);
    const records: PreferenceRecord[] = pairs.map((p, i) => ({ ...p, preference: labels[i].preference ?? 0 }));
    writeFileSync(join(o.outDir, 'preferences.json'), JSON.stringify(records.map((r) => ({ ...r, annotator: 'pool:train' })), null, 1));
    const rm = scalarModelFrom(engine, model);
    const trained = await trainRewardModel(engine, rm, tokenizer, records, { epochs: o.rewardEpochs ?? 2, lr: 1e-3, seed });
    await engine.saveModel(rm, join(o.outDir, 'reward_model'));
    tokenizer.save(join(o.outDir, 'reward_model', 'tokenizer.json'));
    // held out: the reward model against the human panel on pairs of SFT samples it never saw
    const heldRows = splits.val.slice(0, 200);
    const heldTwo = await samplePolicy(heldRows, 2, 1, seed + 2);
    const heldPairs = heldRows.map((r, i) => ({ instruction: r.instruction, input: r.input, output_1: decode(heldTwo[i][0].tokens), output_2: decode(heldTwo[i][1].tokens) }))
      .filter((p) => p.output_1 !== p.output_2);
    const panelLabels = await (await createAnnotator('panel', { world, seed })).annotate(heldPairs);
    const scores = await rewardScorer(engine, rm, tokenizer).score(heldPairs);
    const agree = heldPairs.filter((_, i) => (scores[i][1] > scores[i][0] ? 2 : 1) === panelLabels[i].preference).length / Math.max(1, heldPairs.length);
    rewardModel = { pairs: records.filter((r) => r.preference >= 1).length, trainAccuracy: trained.lastEpochAccuracy, heldOutAgreementWithPanel: agree };
    log(`reward model: ${rewardModel.pairs} pool-labelled pairs, agreement with the human panel on held-out pairs ${(100 * agree).toFixed(1)}%`);
    const n = o.bestOfN ?? 8;
    const bon = await bestOfN(engine, model, rm, tokenizer, evalSet, { n, temperature: 1, topP: 0.9, maxNewTokens: o.maxNewTokens ?? 96, seed });
    methods[`best-of-${n}`] = bon.outputs.map((x) => ({ instruction: x.instruction, input: x.input, output: x.output, generator: `best-of-${n}` }));
  }
  for (const [name, outs] of Object.entries(methods)) writeFileSync(join(o.outDir, `${name}_outputs.json`), JSON.stringify(outs, null, 2));
  writeFileSync(join(o.outDir, 'model_outputs.json'), JSON.stringify(methods.sft, null, 2));
  const reference = evalSet.map((r) => ({ instruction: r.instruction, input: r.input, output: r.output, generator: 'reference' }));

  // 6. Win-rates against the reference outputs by the simulated pool and the human panel, and the gold standard.
  const evaluations: QuickPipelineResult['evaluations'] = [];
  for (const spec of ['pool', 'panel']) {
    const annotator = await createAnnotator(spec, { world, seed });
    for (const [method, outs] of Object.entries(methods)) {
      const { metrics: m }: EvaluationResult = await evaluateModel(reference, outs, { annotator });
      evaluations.push({ method, annotator: spec, win_rate: m.win_rate, standard_error: m.standard_error, n_total: m.n_total });
      log(`win-rate vs reference, ${method} (${spec === 'pool' ? 'simulated pool' : 'human panel'}): ${m.win_rate.toFixed(1)} ± ${m.standard_error.toFixed(1)} (n=${m.n_total})`);
    }
  }
  const meanGold = (rows: { instruction: string; input: string; output: string }[]) =>
    rows.reduce((s, r) => s + world.grade(r.instruction, r.input, r.output).total, 0) / rows.length;
  const demo = world.demonstrator(seed + 1);
  const gold: Record<string, number> = {};
  for (const [method, outs] of Object.entries(methods)) gold[method] = meanGold(outs);
  gold.demonstrator = meanGold(evalSet.map((r) => ({ ...r, output: demo.respond(r.instruction, r.input) })));
  gold.reference = meanGold(reference);
  log(`gold quality (0-1): ${Object.entries(gold).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
  const result: QuickPipelineResult = {
    sft: { steps: res.steps, firstLoss, finalLoss: res.finalLoss, tokensPerSecond: res.tokens / res.seconds, seconds: res.seconds },
    evaluations, gold, rewardModel, samples: methods.sft.slice(0, 3), seconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(join(o.outDir, 'results.json'), JSON.stringify(result, null, 2));
  return result;
}
