// Wall time of each method on a preset's pipeline (default quick), with training and rollout tokens per second
// read from the runs' metrics, and the rollout throughput beside the sampler's own benchmark configuration
// (bench/sample.ts: batch 8, prompt 32, 128 new tokens, no stop) run on the same SFT model in this process.
// --dir DIR reuses (or keeps) a run folder instead of a temporary one; --preset NAME, --seed S.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../ts/engine/index.ts';
import { generate } from '../ts/engine/generate.ts';
import { loadModelFolder, readInstructions, SILENT } from '../ts/methods/jobs.ts';
import { encodePrompt, sampleCandidates } from '../ts/methods/common.ts';
import { readMetrics } from '../ts/methods/run-folder.ts';
import { runFarm } from '../ts/experiments/run.ts';
import { emit, flag, median } from './_lib.ts';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : undefined; };
const preset = arg('preset') ?? 'quick', seed = flag('seed', 1), keep = arg('dir');
const out = keep ?? mkdtempSync(join(tmpdir(), 'farm-bench-methods-'));
try {
  const engine = await Engine.create({ threads: 2, seed });
  const r = await runFarm({ preset, seed, outputDir: out, engine, progress: SILENT });
  const pipeline = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8')) as { stages: { name: string; dir: string; seconds: number; cached: boolean; result: Record<string, unknown> }[] };
  const stage = (n: string) => pipeline.stages.find((s) => s.name === n)!;
  const metrics = (n: string) => readMetrics(join(stage(n).dir, 'run', 'metrics.jsonl'));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const config = { preset, seed, threads: 2, cached: r.stages.filter((s) => s.cached).length };

  // Rollout throughput, measured here side by side (the pipeline's own timings above run under whatever load
  // the machine had): a PPO rollout batch (the method's sampling call, EOS stops, decoding) against the sampler
  // alone in bench sample's configuration (batch 8, prompt 32, 128 new, no stop) and on the same prompts and
  // mean length without stops. Repetitions interleave, so load changes hit all three alike.
  const p = await loadModelFolder(engine, join(stage('sft').dir, 'run', 'model'), 'sft', 'policy');
  const ppoCfg = JSON.parse(readFileSync(join(stage('ppo/pool-train').dir, 'run', 'run.json'), 'utf8')).config.method;
  const records = readInstructions(String(stage('data').result.unlabeled), 'unlabeled').slice(0, ppoCfg.rolloutBatchSize);
  const rows = records.map((_, i) => i), prompts = records.map((x) => encodePrompt(p.tokenizer, x));
  const samplePs = Array.from({ length: 8 }, (_, b) => Array.from({ length: 32 }, (_, t) => (b * 131 + t * 17 + 1) % p.model.config.vocab_size));
  let rollTokens = 0;
  const rollout = async (seed: number) => {
    const b = await sampleCandidates(engine, p.model, p.tokenizer, records, rows, prompts, rows, { temperature: 1, topP: 1, topK: 0, maxNewTokens: ppoCfg.maxNewTokens, n: 1, seed });
    rollTokens = b.candidates.reduce((a, c) => a + c[0].response.length, 0);
  };
  await rollout(1);
  const meanLen = Math.max(1, Math.round(rollTokens / records.length));
  const t = { rollout: [] as number[], sample: [] as number[], shape: [] as number[] };
  for (let rep = 0; rep < 5; rep++) {
    let t0 = performance.now(); await rollout(rep + 2); t.rollout.push(rollTokens / ((performance.now() - t0) / 1000));
    t0 = performance.now(); await generate(engine, p.model, samplePs, { n: 1, maxNewTokens: 128, temperature: 1, stepsPerCall: 128 }); t.sample.push((8 * 128) / ((performance.now() - t0) / 1000));
    t0 = performance.now(); await generate(engine, p.model, prompts, { n: 1, maxNewTokens: meanLen, temperature: 1 }); t.shape.push((prompts.length * meanLen) / ((performance.now() - t0) / 1000));
  }
  const rolloutRate = median(t.rollout), sampleRef = median(t.sample), shapeRef = median(t.shape);
  const rcfg = { ...config, model: 'the SFT model', rollouts: records.length, maxNewTokens: ppoCfg.maxNewTokens, meanResponseTokens: meanLen, reps: 5, machine: 'shared 2 cores; ratios are measured side by side' };
  emit({ bench: 'methods', figure: 'rollout_new_tokens_per_s', value: rolloutRate, unit: 'tokens/s', config: rcfg,
    reference: { name: 'sampler, bench sample configuration (batch 8, prompt 32, 128 new)', value: sampleRef, source: 'measured side by side' } });
  emit({ bench: 'methods', figure: 'rollout_ratio_vs_sample', value: rolloutRate / sampleRef, unit: 'x', config: { ...rcfg, target: '>= 0.8 (within 20%)',
    note: 'rollouts prefill ~60-token prompts for a few dozen new tokens; the sample configuration prefills 32 for 128' } });
  emit({ bench: 'methods', figure: 'rollout_ratio_vs_sampler_same_shape', value: rolloutRate / shapeRef, unit: 'x', config: { ...rcfg, note: 'the same prompts and mean length, no stops: the cost of stops, tails and decoding' },
    reference: { name: 'sampler on the rollouts\' shape', value: shapeRef, source: 'measured side by side' } });

  for (const m of ['sft', 'reward-model/pool-train', 'pairs', 'best-of-n/pool-train', 'expert-iteration/pool-train', 'feedme/pool-train', 'reward-conditioning/pool-train', 'ppo/pool-train', 'quark/pool-train', 'dpo/pool-train', 'treebon/pool-train', 'rlp-samples/pool-train', 'rlp-uml/pool-train', 'rlp-spg/pool-train']) {
    const s = stage(m);
    if (!s) continue;
    const name = m.split('/')[0];
    emit({ bench: 'methods', figure: `${name}_s`, value: s.seconds, unit: 's', config: { ...config, stage: m, wasCached: s.cached } });
    const lines = metrics(m);
    if (['sft', 'feedme', 'reward-conditioning', 'expert-iteration'].includes(name)) {
      const tps = lines.map((l) => l['time/tokens_per_second']).filter(Number.isFinite);
      if (tps.length) emit({ bench: 'methods', figure: `${name}_train_tokens_per_s`, value: tps[tps.length - 1], unit: 'tokens/s', config: { ...config, stage: m, note: 'response (loss) tokens per second; prompts are processed too' } });
    }
    if (name === 'ppo' || name === 'quark') {
      const B = Number(JSON.parse(readFileSync(join(stage(m).dir, 'run', 'run.json'), 'utf8')).config.method.rolloutBatchSize);
      const rollTokens = sum(lines.map((l) => l['rollout/response_length'] * B)), genS = sum(lines.map((l) => l['time/generate_ms'])) / 1000;
      const rollout = rollTokens / genS;
      emit({ bench: 'methods', figure: `${name}_rollout_tokens_per_s_in_pipeline`, value: rollout, unit: 'tokens/s', config: { ...config, stage: m, rolloutsPerStep: B, meanResponseTokens: rollTokens / (B * lines.length), note: 'during the pipeline, under the load the machine had then' } });
      const trainS = sum(lines.map((l) => (name === 'ppo' ? l['time/step_ms'] - l['time/generate_ms'] - l['time/score_ms'] : l['time/train_ms']))) / 1000;
      const trainTokens = name === 'ppo' ? sum(lines.map((l) => l['ppo/tokens'])) : NaN;
      if (name === 'ppo') emit({ bench: 'methods', figure: 'ppo_train_response_tokens_per_s', value: trainTokens / trainS, unit: 'tokens/s', config: { ...config, note: 'response tokens of the rollouts per second of PPO phase (2 epochs, policy and value model)' } });
      emit({ bench: 'methods', figure: `${name}_step_s`, value: sum(lines.map((l) => l['time/step_ms'])) / 1000 / lines.length, unit: 's', config: { ...config, stage: m } });
    }
    if (name === 'best-of-n') {
      const l = lines[0];
      emit({ bench: 'methods', figure: 'best-of-n_rollout_tokens_per_s_in_pipeline', value: l['time/tokens_per_second'], unit: 'tokens/s', config: { ...config, stage: m, n: l['bon/n'], note: 'chosen-sample length x samples / sampling time (approximate)' } });
    }
  }
  emit({ bench: 'methods', figure: `${preset}_pipeline_s`, value: r.seconds, unit: 's', config, reference: { name: 'target', value: 600, source: 'DESIGN.md section 7' } });
} finally { if (!keep) rmSync(out, { recursive: true, force: true }); }
