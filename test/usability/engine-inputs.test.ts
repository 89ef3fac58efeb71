// Issue 14, items 1 and 11 at the engine: sftStep refuses examples longer than the context and token ids that
// are not integers (they were cut and coerced silently), optimizer schedules are checked whole (kind 'bogus'
// and warmup > total were accepted), and unknown option keys are errors everywhere in the engine's API.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../../ts/engine/index.ts';

const engine = await Engine.create({ threads: 1, seed: 2 });
const CONFIG = { vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16 };

async function rejects(p: Promise<unknown> | (() => unknown), re: RegExp) {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
}

test('sftStep refuses examples longer than the context instead of cutting them', async () => {
  const model = engine.createModel(CONFIG);
  const opt = engine.createOptimizer(model, { lr: 1e-3 });
  const fits = { prompt: Array.from({ length: 8 }, (_, i) => i + 1), response: Array.from({ length: 9 }, (_, i) => i + 10) };  // 17 = 16 + 1
  await engine.sftStep(model, [fits], opt);
  const long = { prompt: fits.prompt, response: [...fits.response, 30] };
  await rejects(engine.sftStep(model, [fits, long], opt), /example 1 has 18 tokens \(prompt 8 \+ response 10\), more than the model's context of 16 positions/);
});

test('sftStep refuses token ids that are NaN, fractions or strings', async () => {
  const model = engine.createModel(CONFIG);
  const opt = engine.createOptimizer(model, { lr: 1e-3 });
  await rejects(engine.sftStep(model, [{ prompt: [1, NaN], response: [3] }], opt), /example 0: prompt\[1\] = null is not a token id/);
  await rejects(engine.sftStep(model, [{ prompt: [1, 2], response: [2.5] }], opt), /example 0: response\[0\] = 2\.5 is not a token id/);
  await rejects(engine.sftStep(model, [{ prompt: [1, 2], response: ['7' as unknown as number] }], opt), /response\[0\] = "7" is not a token id/);
  await rejects(engine.sftStep(model, [{ prompt: [1, -4], response: [3] }], opt), /prompt\[1\] = -4 is not a token id/);
});

test('optimizer: unknown schedule kind, warmup past the end and unknown keys are refused', () => {
  const model = engine.createModel(CONFIG);
  assert.throws(() => engine.createOptimizer(model, { lr: 1e-3, kind: 'bogus' as 'cosine', totalSteps: 10 }), /schedule kind must be one of constant, linear, cosine, got "bogus"/);
  assert.throws(() => engine.createOptimizer(model, { lr: 1e-3, kind: 'constant', warmupSteps: 50, totalSteps: 10 }), /warmupSteps \(50\) exceeds totalSteps \(10\)/);
  assert.throws(() => engine.createOptimizer(model, { lr: 1e-3, kind: 'cosine', warmupSteps: 50, totalSteps: 10 }), /needs totalSteps > warmupSteps/);
  assert.throws(() => engine.createOptimizer(model, { lr: 1e-3, warmup: 5 } as never), /optimizer options: unknown option "warmup"; did you mean "warmupSteps"\?/);
  assert.throws(() => engine.createOptimizer(model, { lr: 1e-3, weight_decay: 0.1 } as never), /did you mean "weightDecay"/);
});

test('unknown option keys are errors in Engine.create, createModel, generate and ppoStep', async () => {
  await rejects(Engine.create({ thread: 2 } as never), /Engine\.create: unknown option "thread"; did you mean "threads"/);
  assert.throws(() => engine.createModel({ ...CONFIG, num_layers: 2 } as never), /model config: unknown option "num_layers"/);
  const model = engine.createModel(CONFIG);
  await rejects(engine.generate(model, [[1, 2]], { max_new_tokens: 4 } as never), /generate options: unknown option "max_new_tokens"; did you mean "maxNewTokens"/);
  await rejects(engine.ppoStep({ policy: model, rollouts: {} as never, config: { init_kl_coef: 0.1 } as never }), /PPO config: unknown option "init_kl_coef"; did you mean "initKlCoef"/);
});

test.run();
