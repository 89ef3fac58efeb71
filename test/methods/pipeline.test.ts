// The quick pipeline (what `npm start` runs) at a tiny size: every stage runs and writes its files, SFT
// lowers the loss, and the evaluation numbers are well-formed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runQuickPipeline } from '../../ts/methods/pipeline.ts';

test('quick pipeline: data, tokenizer, SFT, sampling, evaluation by pool, panel and gold', async () => {
  const out = mkdtempSync(join(tmpdir(), 'farm-qs-'));
  try {
    const r = await runQuickPipeline({
      outDir: out, seed: 3, preset: 'quick', vocabSize: 512, sftEpochs: 1, evalInstances: 12, maxNewTokens: 24, preferencePairs: 40, rewardEpochs: 1, bestOfN: 2,
      model: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2 },
    });
    assert.ok(r.sft.finalLoss < r.sft.firstLoss - 1, `SFT loss ${r.sft.firstLoss} -> ${r.sft.finalLoss}`);
    for (const f of ['data/manifest.json', 'data/sft.jsonl', 'tokenizer.json', 'sft/config.json', 'sft/model.safetensors', 'model_outputs.json'])
      assert.ok(existsSync(join(out, f)), `${f} written`);
    const outputs = JSON.parse(readFileSync(join(out, 'model_outputs.json'), 'utf8'));
    assert.is(outputs.length, 12);
    assert.equal(r.evaluations.map((e) => `${e.method}/${e.annotator}`), ['sft/pool', 'best-of-2/pool', 'sft/panel', 'best-of-2/panel']);
    assert.ok(r.rewardModel && r.rewardModel.pairs > 20 && r.rewardModel.heldOutAgreementWithPanel >= 0 && r.rewardModel.heldOutAgreementWithPanel <= 1);
    for (const f of ['reward_model/config.json', 'reward_model/tokenizer.json', 'preferences.json', 'best-of-2_outputs.json']) assert.ok(existsSync(join(out, f)), `${f} written`);
    for (const e of r.evaluations) {
      assert.ok(e.win_rate >= 0 && e.win_rate <= 100 && e.n_total === 12, JSON.stringify(e));
    }
    assert.ok(r.gold.reference > r.gold.sft, 'an undertrained model is below the reference on gold');
    assert.ok(Object.keys(r.gold).includes('best-of-2'));
  } finally { rmSync(out, { recursive: true, force: true }); }
});

test.run();
