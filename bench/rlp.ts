// RLP-UML and RLP-SPG against PPO on a preset's pipeline (default quick): win-rates against the reference outputs
// by the evaluation pool (the paper's "simulated" column) and by the panel ("human"), beside the RLP paper's
// numbers (PPO 46.8, RLP-UML 49.1, RLP-SPG 50.2 simulated), the gains over PPO beside the paper's, gold
// quality, and the retrained reward models (held-out accuracy, SPG's synthetic pairs).
// Flags: --preset NAME, --seed S, --dir DIR (reuse or keep the run folder; shares stages with bench treebon).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../ts/engine/index.ts';
import { SILENT } from '../ts/methods/jobs.ts';
import { runFarm } from '../ts/experiments/run.ts';
import { emit, flag } from './_lib.ts';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : undefined; };
const preset = arg('preset') ?? 'quick', seed = flag('seed', 1), keep = arg('dir');
const out = keep ?? mkdtempSync(join(tmpdir(), 'farm-bench-rlp-'));
const SRC = '../shared/reference/alpacafarm.md (AlpacaFarm table; RLP paper rows)';
const PAPER = { ppo: { simulated: 46.8, human: 55.1 }, 'rlp-uml': { simulated: 49.1, human: 56.5 }, 'rlp-spg': { simulated: 50.2, human: 57.4 }, sft: { simulated: 36.7, human: 44.3 } } as const;
try {
  const engine = await Engine.create({ threads: 2, seed });
  const r = await runFarm({ preset, seed, outputDir: out, engine, progress: SILENT, methods: ['sft', 'ppo', 'rlp-uml', 'rlp-spg'] });
  const config = { preset, seed, threads: 2, feedback: 'pool:train', evalInstructions: r.leaderboard[0]?.evaluations.pool.n ?? 0, machine: 'shared 2 cores' };
  const row = (m: string) => r.leaderboard.find((x) => x.method === m)!;
  for (const m of ['sft', 'ppo', 'rlp-uml', 'rlp-spg'] as const) {
    const x = row(m);
    emit({ bench: 'rlp', figure: `${m}_pool_winrate`, value: x.evaluations.pool.win_rate, unit: '%', config: { ...config, standard_error: x.evaluations.pool.standard_error },
      reference: { name: `paper, simulated eval (${m === 'sft' ? 'SFT 10k' : m})`, value: PAPER[m].simulated, source: SRC } });
    emit({ bench: 'rlp', figure: `${m}_panel_winrate`, value: x.evaluations.panel.win_rate, unit: '%', config: { ...config, standard_error: x.evaluations.panel.standard_error },
      reference: { name: `paper, human eval (${m === 'sft' ? 'SFT 10k' : m})`, value: PAPER[m].human, source: SRC } });
    emit({ bench: 'rlp', figure: `${m}_gold`, value: x.gold.mean, unit: 'gold total', config: { ...config, standard_error: x.gold.standard_error } });
  }
  for (const m of ['rlp-uml', 'rlp-spg'] as const) {
    const x = row(m), p = row('ppo');
    for (const e of ['pool', 'panel'] as const) {
      const se = Math.hypot(x.evaluations[e].standard_error, p.evaluations[e].standard_error);
      const paper = e === 'pool' ? PAPER[m].simulated - PAPER.ppo.simulated : PAPER[m].human - PAPER.ppo.human;
      emit({ bench: 'rlp', figure: `${m}_gain_over_ppo_${e}`, value: x.evaluations[e].win_rate - p.evaluations[e].win_rate, unit: 'win-rate points',
        config: { ...config, standard_error_unpaired: se }, reference: { name: `paper (${e === 'pool' ? 'simulated' : 'human'})`, value: paper, source: SRC } });
    }
  }
  const { readFileSync } = await import('node:fs');
  const pipeline = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8')) as { stages: { name: string; seconds: number; result: Record<string, unknown> }[] };
  const st = (n: string) => pipeline.stages.find((s) => s.name === n);
  const firstRm = st('reward-model/pool-train')?.result as Record<string, number> | undefined;
  if (firstRm) emit({ bench: 'rlp', figure: 'reward_model_eval_accuracy', value: firstRm.eval_accuracy, unit: 'fraction', config: { ...config, note: 'the first reward model, held-out pool-labelled pairs' } });
  for (const m of ['rlp-uml', 'rlp-spg']) {
    const s = st(`${m}/pool-train`);
    if (!s) continue;
    const rm = s.result.reward_model_summary as Record<string, number>;
    emit({ bench: 'rlp', figure: `${m}_reward_model_eval_accuracy`, value: rm.eval_accuracy, unit: 'fraction', config: { ...config, summary: rm } });
    emit({ bench: 'rlp', figure: `${m}_s`, value: s.seconds, unit: 's', config });
  }
  emit({ bench: 'rlp', figure: `${preset}_run_s`, value: r.seconds, unit: 's', config: { ...config, ran: r.ran } });
} finally { if (!keep) rmSync(out, { recursive: true, force: true }); }
