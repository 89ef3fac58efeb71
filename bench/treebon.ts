// TreeBoN against best-of-n on a preset's pipeline (default quick): the SFT model samples, the pool-trained reward
// model picks, the DPO model (trained on the same feedback, reference = SFT) ranks TreeBoN's prefixes. Two
// comparisons, as the TreeBoN paper: at equal compute (TreeBoN N = 16 vs best-of-16, and vs the best-of-k whose
// generated tokens match TreeBoN's) and at 1/16 of the compute (TreeBoN N = 8 vs best-of-128). Figures: wall
// time, generated tokens, TreeBoN's win-rate against best-of-n's outputs by the evaluation pool and by the panel
// (head to head, ± standard error), and gold quality. Best-of-k for every k comes from one sampling pass of the
// largest k (the samples of best-of-k are the first k of best-of-K: same RNG streams): best-of-32 on the eval
// split, best-of-128 on its first --sixteenth-instructions (default 200; 128 samples each cost most of the run).
// Flags: --preset NAME, --seed S, --dir DIR (reuse or keep the pipeline folder), --instructions N (first N eval),
// --sixteenth-instructions N.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../ts/engine/index.ts';
import { createWorld } from '../ts/world/index.ts';
import { loadModelFolder, readInstructions, SILENT } from '../ts/methods/jobs.ts';
import { bestOfN } from '../ts/methods/best-of-n.ts';
import { treeBoN, type TreeBoNConfig } from '../ts/methods/treebon.ts';
import { buildStages, evaluateOutputs, type WinRate } from '../ts/experiments/pipeline.ts';
import { presetByName } from '../ts/experiments/presets.ts';
import { runStages } from '../ts/experiments/stages.ts';
import { emit, flag } from './_lib.ts';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : undefined; };
const presetName = arg('preset') ?? 'quick', seed = flag('seed', 1), keep = arg('dir');
const P = presetByName(presetName);
const out = keep ?? mkdtempSync(join(tmpdir(), 'farm-bench-treebon-'));
const SRC = '../shared/reference/alpacafarm.md (TreeBoN, Qiu et al. 2024)';
try {
  const engine = await Engine.create({ threads: 2, seed });
  const stages = buildStages({ preset: P, seed, feedback: ['pool:train'], evaluators: ['pool', 'panel'], methods: ['sft', 'dpo'], engine, progress: SILENT });
  const t0 = performance.now();
  const recs = await runStages(stages, { root: out, progress: SILENT, only: ['reward-model/pool-train', 'dpo/pool-train'] });
  const setupS = (performance.now() - t0) / 1000;
  const res = (n: string) => recs.find((r) => r.name === n)!.result as Record<string, string>;
  const sft = await loadModelFolder(engine, res('sft').model, 'sft', 'policy');
  const rm = await loadModelFolder(engine, res('reward-model/pool-train').model, 'reward model', 'reward model');
  const dpo = await loadModelFolder(engine, res('dpo/pool-train').model, 'dpo', 'policy');
  const evalRows = readInstructions(res('data').eval, 'eval split', true);
  const records = evalRows.slice(0, flag('instructions', evalRows.length));
  const world = createWorld({ seed });
  const gold = (outs: { instruction: string; input: string; output: string }[]) => outs.reduce((a, o) => a + world.grade(o.instruction, o.input, o.output).total, 0) / outs.length;
  const tb = P.treebon, maxNew = tb.maxNewTokens ?? 96;
  const config = { preset: presetName, seed, instructions: records.length, maxNewTokens: maxNew, temperature: tb.temperature ?? 1, topP: tb.topP ?? 0.9,
    machine: 'shared 2 cores (wall times are noisy; tokens are exact)', setup_s: Math.round(setupS) };

  const sub = records.slice(0, flag('sixteenth-instructions', 200));
  const pass = async (recs: typeof records, n: number) => {
    const t1 = performance.now();
    const r = await bestOfN(engine, sft.model, rm.model, sft.tokenizer, recs, { n, temperature: config.temperature, topP: config.topP, maxNewTokens: maxNew, seed, keepCandidates: true, promptBatchSize: 8 });
    return { r, s: (performance.now() - t1) / 1000 };
  };
  const bonK = (p: Awaited<ReturnType<typeof pass>>, recs: typeof records, k: number) => {
    const chosen = p.r.candidates!.map((c) => c.slice(0, k).reduce((b, x) => (x.reward > b.reward ? x : b)));
    return { outputs: recs.map((r, i) => ({ instruction: r.instruction, input: r.input, output: chosen[i].output, generator: `best-of-${k}` })),
      tokens: p.r.candidates!.reduce((a, c) => a + c.slice(0, k).reduce((s, x) => s + x.tokens.length, 0), 0) };
  };
  const run = async (recs: typeof records, c: Partial<TreeBoNConfig>) => {
    const t1 = performance.now();
    const r = await treeBoN(engine, { policy: sft.model, reward: rm.model, dpo: dpo.model, ref: sft.model, tokenizer: sft.tokenizer, records: recs, config: { ...tb, ...c, seed } });
    return { r, s: (performance.now() - t1) / 1000 };
  };
  const versus = async (name: string, tree: Awaited<ReturnType<typeof run>>, bon: ReturnType<typeof bonK>, k: number, bonS: number | null, ref: { name: string; value: number } | null) => {
    const tOut = tree.r.outputs.map((o) => ({ instruction: o.instruction, input: o.input, output: o.output, generator: o.generator }));
    const ev = await evaluateOutputs(world, ['pool', 'panel'], seed, bon.outputs, tOut, SILENT);
    const c = { ...config, instructions: tree.r.outputs.length, comparison: name, treebon: { n: tree.r.metrics['treebon/n'], branchingFactor: tree.r.metrics['treebon/branching_factor'], depth: tree.r.metrics['treebon/depth'] }, bestOf: k };
    const tokens = tree.r.metrics['treebon/generated_tokens'];
    emit({ bench: 'treebon', figure: `${name}/treebon_generated_tokens`, value: tokens, unit: 'tokens', config: { ...c, partialRewardTokensPerModel: tree.r.metrics['treebon/partial_reward_tokens'] } });
    emit({ bench: 'treebon', figure: `${name}/bon_generated_tokens`, value: bon.tokens, unit: 'tokens', config: c });
    emit({ bench: 'treebon', figure: `${name}/token_ratio`, value: tokens / bon.tokens, unit: 'x', config: c });
    emit({ bench: 'treebon', figure: `${name}/treebon_wall_s`, value: tree.s, unit: 's', config: { ...c, generate_s: tree.r.metrics['time/generate_ms'] / 1000, partial_s: tree.r.metrics['time/partial_ms'] / 1000, score_s: tree.r.metrics['time/score_ms'] / 1000 } });
    if (bonS !== null) emit({ bench: 'treebon', figure: `${name}/bon_wall_s`, value: bonS, unit: 's', config: c });
    for (const e of ['pool', 'panel'] as const) {
      const w = ev[e] as WinRate;
      emit({ bench: 'treebon', figure: `${name}/winrate_vs_bon_${e}`, value: w.win_rate, unit: '%', config: { ...c, standard_error: w.standard_error, n: w.n },
        reference: ref ? { ...ref, source: SRC } : null });
    }
    emit({ bench: 'treebon', figure: `${name}/treebon_gold`, value: (ev.gold as { mean: number }).mean, unit: 'gold total', config: { ...c, standard_error: (ev.gold as { standard_error: number }).standard_error } });
    emit({ bench: 'treebon', figure: `${name}/bon_gold`, value: gold(bon.outputs), unit: 'gold total', config: c });
  };

  // equal compute: the same N (the paper's budget, N x l_max tokens), and the best-of-k that generated as many tokens
  const b16run = await pass(records, 16);  // wall time of best-of-16 alone
  const t16 = await run(records, { n: 16, branchingFactor: 4, depth: 4 });
  const p32 = await pass(records, 32);
  await versus('equal_n', t16, bonK(p32, records, 16), 16, b16run.s, { name: 'TreeBoN paper, equal compute: about 60-65%', value: 62.5 });
  const perSample = p32.r.candidates!.reduce((a, c) => a + c.reduce((s, x) => s + x.tokens.length, 0), 0) / (32 * records.length);
  const kMatch = Math.min(32, Math.max(1, Math.round(t16.r.metrics['treebon/generated_tokens'] / (perSample * records.length))));
  await versus('equal_tokens', t16, bonK(p32, records, kMatch), kMatch, null, { name: 'TreeBoN paper, equal compute: about 60-65%', value: 62.5 });
  // 1/16 of the compute: N = 8 roots against best-of-128
  const p128 = await pass(sub, 128);
  const t8 = await run(sub, { n: 8, branchingFactor: 4, depth: 4 });
  await versus('sixteenth', t8, bonK(p128, sub, 128), 128, p128.s, { name: 'TreeBoN paper, N = 8 vs best-of-128 (6.3% of the compute): 55%', value: 55 });
} finally { if (!keep) rmSync(out, { recursive: true, force: true }); }
