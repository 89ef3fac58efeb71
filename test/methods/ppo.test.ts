// The PPO method on a tiny SFT policy of the farm world: a hand-built reward (count of one token) rises over a
// few outer steps while the KL penalty bounds the drift; reward models, value models initialized from them, the
// sampler's log-probs as π_old, determinism and bad arguments.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type Model, type ModelConfig } from '../../ts/engine/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits } from '../../ts/data/splits.ts';
import { trainBpe, type Tokenizer } from '../../ts/tokenizer/index.ts';
import { formatPrompt } from '../../ts/data/template.ts';
import { sft } from '../../ts/methods/sft.ts';
import { ppo, valueModelFromRewardModel, PPO_METHOD_DEFAULTS, type PPOLog } from '../../ts/methods/ppo.ts';
import { cloneModel, type Candidate } from '../../ts/methods/common.ts';

const world = createWorld({ seed: 3 });
const splits = generateSplits(world, { sft: 400, preference: 0, unlabeled: 64, val: 0, eval: 0 }, { seed: 3 });
const prompts = splits.unlabeled;
let engine: Engine, tok: Tokenizer, sftPolicy: Model, COMMA: number;
const arch = (over: Partial<ModelConfig> = {}): ModelConfig => ({
  vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 160, ...over,
});

test.before(async () => {
  tok = trainBpe(splits.sft.map((r) => formatPrompt(r) + r.output), { vocabSize: 400 });
  COMMA = tok.encode(',')[0];
  engine = await Engine.create({ threads: 2, seed: 1 });
  sftPolicy = engine.createModel(arch({ scalar_head: true }));  // the value head starts at zero
  await sft(engine, sftPolicy, tok, splits.sft, { epochs: 3, lr: 5e-3, batchSize: 16 });
});

const commas = (c: Candidate[]) => c.map((x) => x.response.filter((t) => t === COMMA).length);
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const FAST = { rolloutBatchSize: 32, maxNewTokens: 16, learningRate: 1e-3, warmupSteps: 0 };

test('defaults are AlpacaFarm\'s PPO with simulated feedback', () => {
  const d = PPO_METHOD_DEFAULTS;
  assert.equal([d.rolloutBatchSize, d.temperature, d.initKlCoef, d.adaptiveKl, d.ppoEpochs, d.learningRate, d.cliprange, d.vfCoef, d.gamma, d.lam],
    [512, 1, 0.0067, false, 2, 1e-5, 0.2, 0.1, 1, 1]);
  assert.is(d.whitenRewards, true, 'AlpacaFarm whitens rewards (scaled to unit variance, no length-biasing constant)');
});

test('a hand-built reward rises over a few outer steps; a strong KL penalty keeps the policy near the reference', async () => {
  const run = async (klCoef: number) => {
    const policy = cloneModel(engine, sftPolicy);
    const logs: PPOLog[] = [];
    const r = await ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { ...FAST, steps: 12, initKlCoef: klCoef }, onStep: (l) => { logs.push(l); } });
    assert.is(r.steps, 12);
    assert.is(r.value, policy, 'the policy\'s scalar head is the value function');
    assert.equal(r.history, logs);
    return logs;
  };
  const weak = await run(0.05), strong = await run(1);
  const scores = (l: PPOLog[]) => l.map((x) => x['objective/scores']);
  const kls = (l: PPOLog[]) => l.map((x) => x['objective/kl']);
  if (process.env.DEBUG_METHODS) console.log('weak', scores(weak), kls(weak), '\nstrong', scores(strong), kls(strong));
  for (const l of [...weak, ...strong]) {
    for (const [k, v] of Object.entries(l)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
    assert.ok(l['objective/kl'] >= 0);
    assert.ok(l['policy/clipfrac_avg'] >= 0 && l['policy/clipfrac_avg'] <= 1);
  }
  assert.ok(weak[0]['objective/kl'] < 1e-3, `first batch is sampled from the reference: KL ${weak[0]['objective/kl']}`);
  assert.ok(mean(scores(weak).slice(-3)) > mean(scores(weak).slice(0, 3)) + 1, `weak penalty: scores ${scores(weak).join(' ')}`);
  assert.equal(weak.map((l) => l.episode), weak.map((_, i) => 32 * (i + 1)));
  // β = 1: a comma is worth one nat, so the KL-regularized optimum stays within a few nats of π_ref
  assert.ok(Math.max(...kls(strong)) < 4, `strong penalty: KL ${kls(strong).join(' ')}`);
  assert.ok(mean(kls(strong).slice(-3)) < mean(kls(weak).slice(-3)) / 3);
});

test('no length bias: a reward for long answers makes answers longer, one for short answers shorter', async () => {
  const run = async (sign: number) => {
    const policy = cloneModel(engine, sftPolicy);
    const r = await ppo(engine, { policy, reward: (c) => c.map((x) => sign * x.response.length / 24), tokenizer: tok, prompts,
      config: { ...FAST, maxNewTokens: 24, steps: 10, learningRate: 5e-4 } });
    return r.history.map((l) => l['rollout/response_length']);
  };
  const long = await run(1), short = await run(-1);
  if (process.env.DEBUG_METHODS) console.log('lengths, long reward', long, '\nshort reward', short);
  assert.ok(mean(long.slice(-3)) > mean(long.slice(0, 3)) + 2, `lengths under a reward for long answers: ${long.join(' ')}`);
  assert.ok(mean(short.slice(-3)) < mean(short.slice(0, 3)) - 2, `lengths under a reward for short answers: ${short.join(' ')}`);
});

test('the adaptive controller raises β when the KL exceeds its target', async () => {
  const policy = cloneModel(engine, sftPolicy);
  const r = await ppo(engine, { policy, reward: commas, tokenizer: tok, prompts,
    config: { ...FAST, steps: 6, initKlCoef: 0.05, adaptiveKl: true, klTarget: 0.5, klHorizon: 100 } });
  const betas = r.history.map((l) => l['objective/kl_coef']);
  assert.is(betas[0], 0.05);
  assert.ok(r.klController.value > 0.05 && betas[5] > betas[1], `β ${betas.join(' ')}`);
});

test('sampler log-probs and values as π_old / V_old match recomputing them; runs are deterministic', async () => {
  const run = async (useSamplerLogprobs: boolean) => {
    const policy = cloneModel(engine, sftPolicy);
    const r = await ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { ...FAST, rolloutBatchSize: 16, steps: 2, useSamplerLogprobs } });
    return { log: r.history, w: policy.parameters().map((p) => Array.from(p.data)).flat() };
  };
  const a = await run(true), b = await run(false), a2 = await run(true);
  for (const k of ['objective/kl', 'objective/scores', 'loss/policy_avg', 'loss/value_avg', 'val/mean', 'policy/approxkl_avg', 'advantages/mean'] as const) {
    for (let s = 0; s < 2; s++) assert.ok(Math.abs(a.log[s][k] - b.log[s][k]) < 1e-3 * Math.max(1, Math.abs(b.log[s][k])), `${k} step ${s + 1}: ${a.log[s][k]} vs ${b.log[s][k]}`);
  }
  assert.equal(a.w, a2.w, 'same seeds, same weights');
});

test('a reward model scores the sampled tokens; the value model starts as the reward model with a zero head', async () => {
  const rm = engine.createModel(arch({ num_hidden_layers: 1, lm_head: false, scalar_head: true }), { seed: 9, initStd: 0.2 });
  for (const p of rm.parameters()) if (p.name.startsWith('score.')) p.data.fill(0.3);
  const v = valueModelFromRewardModel(engine, rm);
  const rp = rm.parameters(), vp = v.parameters();
  vp.forEach((p, i) => assert.equal(Array.from(p.data), p.name.startsWith('score.') ? new Array(p.data.length).fill(0) : Array.from(rp[i].data), p.name));
  const policyConfig = arch();  // no scalar head: ppo makes the value model from the reward model
  const run = async (reward: Model | ((c: Candidate[]) => Promise<Float32Array>), value?: Model) => {
    const policy = engine.createModel(policyConfig);
    policy.copyFrom(cloneFromShared());
    return ppo(engine, { policy, value, reward, tokenizer: tok, prompts, config: { ...FAST, rolloutBatchSize: 8, steps: 2 } });
  };
  const viaModel = await run(rm);
  const viaFn = await run((c) => engine.scoreResponses(rm, c.map((x) => ({ prompt: x.prompt, response: x.response })), { padId: tok.padId! }),
    valueModelFromRewardModel(engine, rm));
  assert.ok(viaModel.value !== viaModel.policy && viaModel.value.config.lm_head === false && viaModel.valueOptimizer);
  for (let s = 0; s < 2; s++) for (const k of ['objective/scores', 'loss/value_avg', 'objective/kl'] as const) assert.is(viaModel.history[s][k], viaFn.history[s][k], k);
  assert.ok(viaModel.history[0]['val/mean'] === 0, 'V_old of the first batch comes from the zero head');
  assert.ok(viaModel.history[1]['val/mean'] !== 0, 'the value model trains');
});

// The SFT policy's weights without its scalar head (same parameter names otherwise).
function cloneFromShared(): Model {
  const m = engine.createModel(arch());
  const src = new Map(sftPolicy.parameters().map((p) => [p.name, p.data]));
  for (const p of m.parameters()) p.data.set(src.get(p.name)!);
  return m;
}

test('early stop, missing-EOS penalty, prompt filtering and bad arguments', async () => {
  const policy = cloneModel(engine, sftPolicy);
  const r = await ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { ...FAST, rolloutBatchSize: 8, maxNewTokens: 3, steps: 5, missingEosPenalty: 10 },
    onStep: (l) => l.step < 2 });
  assert.is(r.steps, 2);
  for (const l of r.history) {
    const cut = 8 - l['val/num_eos_tokens'];
    assert.ok(Math.abs(l['objective/scores'] - (l['rollout/raw_scores'] - (10 * cut) / 8)) < 1e-5);
  }
  const plain = engine.createModel(arch());
  await rejects(ppo(engine, { policy: plain, reward: commas, tokenizer: tok, prompts, config: { ...FAST, steps: 1 } }), /no value function/);
  await rejects(ppo(engine, { policy, tokenizer: tok, prompts, config: { ...FAST, steps: 1 } }), /pass a reward/);
  await rejects(ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { steps: 1 } }), /maxNewTokens 300 leaves no room/);
  await rejects(ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { ...FAST, steps: 1, maxPromptLength: 5 } }), /none of the 64 prompts fits/);
  await rejects(ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { steps: 0 } }), /steps must be an integer >= 1/);
  await rejects(ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { cliprange: 2 } }), /cliprange/);
  const long = await ppo(engine, { policy, reward: commas, tokenizer: tok, prompts, config: { ...FAST, rolloutBatchSize: 4, steps: 1, maxPromptLength: 60 } });
  assert.ok(long.skippedPrompts > 0 && long.skippedPrompts < 64);
});

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, `expected a rejection matching ${re}`);
  assert.match((err as Error).message, re);
}

test.run();
