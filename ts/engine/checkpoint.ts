// Checkpoints in the Hugging Face layout: config.json + model.safetensors (or sharded safetensors with
// model.safetensors.index.json), tensor names as transformers' LlamaForCausalLM. Loading is kept apart
// from computing: files are validated here, then streamed into the model's parameter buffers.
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { AdamW, createModel, Model, type ModelBackend, type ModelConfig, type ResolvedConfig } from './model.ts';
import { readHeader, readTensors, writeSafetensors, type SafetensorsHeader } from './safetensors.ts';

const exists = (p: string) => access(p).then(() => true, () => false);

/** Maps a Hugging Face config.json to ours, refusing what the engine does not implement. */
export function configFromHf(hf: Record<string, any>, source = 'config.json'): ModelConfig {
  const arch: string[] = Array.isArray(hf.architectures) ? hf.architectures : [];
  const type = hf.model_type;
  if (type !== undefined && type !== 'llama')
    throw new Error(`${source}: model_type "${type}" is not supported (only LLaMA-architecture models: model_type "llama")`);
  if (type === undefined && !arch.some((a) => a.startsWith('Llama')))
    throw new Error(`${source}: not a LLaMA-architecture config (architectures ${JSON.stringify(arch)})`);
  const unsupported: [string, (v: any) => boolean, string][] = [
    ['hidden_act', (v) => v === undefined || v === 'silu', 'only "silu" (SwiGLU) is implemented'],
    ['attention_bias', (v) => !v, 'attention biases are not implemented'],
    ['mlp_bias', (v) => !v, 'MLP biases are not implemented'],
    ['rope_scaling', (v) => v === undefined || v === null, 'rope_scaling is not implemented'],
    ['head_dim', (v) => v === undefined || v === null || v * hf.num_attention_heads === hf.hidden_size, 'head_dim must equal hidden_size / num_attention_heads'],
  ];
  for (const [k, ok, why] of unsupported) if (!ok(hf[k])) throw new Error(`${source}: ${k} = ${JSON.stringify(hf[k])}: ${why}`);
  const farm = hf.farm ?? {};
  const seqCls = arch.some((a) => a.endsWith('ForSequenceClassification'));
  const cfg: ModelConfig = {
    vocab_size: hf.vocab_size,
    hidden_size: hf.hidden_size,
    intermediate_size: hf.intermediate_size,
    num_hidden_layers: hf.num_hidden_layers,
    num_attention_heads: hf.num_attention_heads,
    num_key_value_heads: hf.num_key_value_heads ?? hf.num_attention_heads,
    max_position_embeddings: hf.max_position_embeddings,
    rms_norm_eps: hf.rms_norm_eps ?? 1e-6,
    rope_theta: hf.rope_theta ?? 10000,
    tie_word_embeddings: hf.tie_word_embeddings ?? false,
    lm_head: farm.lm_head ?? !seqCls,
    scalar_head: farm.scalar_head ?? seqCls,
  };
  for (const [k, v] of Object.entries(cfg))
    if (v === undefined || (typeof v === 'number' && !Number.isFinite(v))) throw new Error(`${source}: ${k} is missing or not a number`);
  return cfg;
}

export function configToHf(c: ResolvedConfig): Record<string, unknown> {
  return {
    architectures: [c.lm_head ? 'LlamaForCausalLM' : 'LlamaForSequenceClassification'],
    model_type: 'llama',
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    max_position_embeddings: c.max_position_embeddings,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    tie_word_embeddings: c.tie_word_embeddings,
    hidden_act: 'silu',
    attention_bias: false,
    torch_dtype: 'float32',
    ...(c.lm_head ? {} : { num_labels: 1 }),
    farm: { lm_head: c.lm_head, scalar_head: c.scalar_head },
  };
}

export async function saveModel(model: Model, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(configToHf(model.config), null, 2) + '\n');
  await writeSafetensors(join(dir, 'model.safetensors'), model.parameters().map(({ name, shape, data }) => ({ name, shape, data })),
    { format: 'pt' });
}

// Tensors that checkpoints may carry and that the engine recomputes or does not use.
const IGNORED = [/\.rotary_emb\.inv_freq$/, /^lm_head\.weight$/];

export async function loadModel(dir: string, opts: { config?: Partial<ModelConfig>; backend?: ModelBackend } = {}): Promise<Model> {
  const cfgPath = join(dir, 'config.json');
  if (!(await exists(cfgPath))) throw new Error(`no config.json in ${dir} (expected a Hugging Face model folder)`);
  let hf: Record<string, any>;
  try { hf = JSON.parse(await readFile(cfgPath, 'utf8')); } catch (err) { throw new Error(`${cfgPath}: ${(err as Error).message}`); }
  const config = { ...configFromHf(hf, cfgPath), ...opts.config };
  const model = createModel(config, { seed: 0, initStd: 0, backend: opts.backend });

  // Which file holds each tensor: one model.safetensors, or shards listed by the index.
  const single = join(dir, 'model.safetensors'), index = join(dir, 'model.safetensors.index.json');
  const fileOf = new Map<string, string>();
  if (await exists(single)) {
    for (const name of (await readHeader(single)).tensors.keys()) fileOf.set(name, single);
  } else if (await exists(index)) {
    let idx: any;
    try { idx = JSON.parse(await readFile(index, 'utf8')); } catch (err) { throw new Error(`${index}: ${(err as Error).message}`); }
    if (!idx || typeof idx.weight_map !== 'object') throw new Error(`${index}: no weight_map`);
    for (const [name, file] of Object.entries(idx.weight_map)) fileOf.set(name, join(dir, String(file)));
  } else {
    throw new Error(`no model.safetensors or model.safetensors.index.json in ${dir}`);
  }

  const params = model.parameters();
  const expected = new Set(params.map((p) => p.name));
  const missing = params.filter((p) => !fileOf.has(p.name)).map((p) => p.name);
  // A reward/value model may start from a causal LM: a missing scalar head starts at zero.
  const optional = new Set(['score.weight', 'score.bias']);
  const reallyMissing = missing.filter((n) => !optional.has(n));
  if (reallyMissing.length) throw new Error(`${dir}: missing tensor${reallyMissing.length > 1 ? 's' : ''} ${reallyMissing.slice(0, 5).join(', ')}${reallyMissing.length > 5 ? ` and ${reallyMissing.length - 5} more` : ''}`);
  const unexpected = [...fileOf.keys()].filter((n) => !expected.has(n) && !IGNORED.some((r) => r.test(n)));
  if (unexpected.length) throw new Error(`${dir}: unexpected tensor${unexpected.length > 1 ? 's' : ''} ${unexpected.slice(0, 5).join(', ')} (not part of this architecture)`);

  const byFile = new Map<string, Map<string, Float32Array>>();
  const headers = new Map<string, SafetensorsHeader>();
  for (const p of params) {
    const file = fileOf.get(p.name);
    if (!file) continue;
    if (!headers.has(file)) headers.set(file, await readHeader(file));
    const e = headers.get(file)!.tensors.get(p.name);
    if (!e) throw new Error(`${file}: missing tensor "${p.name}" (listed in the index)`);
    if (e.shape.length !== p.shape.length || e.shape.some((d, i) => d !== p.shape[i]))
      throw new Error(`${file}: tensor "${p.name}" has shape ${JSON.stringify(e.shape)}, expected ${JSON.stringify(p.shape)}`);
    if (!byFile.has(file)) byFile.set(file, new Map());
    byFile.get(file)!.set(p.name, p.data);
  }
  for (const [file, want] of byFile) {
    await readTensors(file, headers.get(file)!, want);
    for (const [name, data] of want) checkFinite(data, `${file}: tensor "${name}"`);
  }
  return model;
}

/**
 * Refuses NaN and Inf in loaded weights: they do not always surface as NaN outputs (a clamped exp or a
 * max that skips NaN can turn them into finite, wrong numbers), so they are caught where they enter.
 */
export function checkFinite(data: Float32Array, what: string): void {
  let nan = 0, inf = 0, first = -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {  // NaN or +-Inf (cheaper than two calls per element)
      if (first < 0) first = i;
      if (v !== v) nan++;
      else inf++;
    }
  }
  if (first >= 0) {
    throw new Error(`${what} holds ${nan} NaN and ${inf} infinite value${nan + inf > 1 ? 's' : ''} (first at flat index ${first}): refusing non-finite weights`);
  }
}

/** Optimizer state for resuming: moments per parameter tensor (exp_avg / exp_avg_sq) and the step count. */
export async function saveOptimizer(opt: AdamW, path: string): Promise<void> {
  const { m, v, step } = opt.state();
  const tensors = opt.model.parameters().flatMap((p) => {
    const off = p.data.byteOffset / 4;
    return [
      { name: `exp_avg.${p.name}`, shape: p.shape, data: m.subarray(off, off + p.data.length) },
      { name: `exp_avg_sq.${p.name}`, shape: p.shape, data: v.subarray(off, off + p.data.length) },
    ];
  });
  await writeSafetensors(path, tensors, { step: String(step), options: JSON.stringify(opt.options) });
}

export async function loadOptimizer(opt: AdamW, path: string): Promise<void> {
  const header = await readHeader(path);
  const step = Number(header.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: metadata.step is missing or invalid`);
  const { m, v } = opt.state();
  const want = new Map<string, Float32Array>();
  for (const p of opt.model.parameters()) {
    const off = p.data.byteOffset / 4;
    for (const [prefix, buf] of [['exp_avg', m], ['exp_avg_sq', v]] as const) {
      const name = `${prefix}.${p.name}`;
      const e = header.tensors.get(name);
      if (!e) throw new Error(`${path}: missing tensor "${name}" (optimizer state of another model?)`);
      if (e.shape.join(',') !== p.shape.join(',')) throw new Error(`${path}: tensor "${name}" has shape ${JSON.stringify(e.shape)}, expected ${JSON.stringify(p.shape)}`);
      want.set(name, buf.subarray(off, off + p.data.length));
    }
  }
  await readTensors(path, header, want);
  for (const [name, data] of want) checkFinite(data, `${path}: tensor "${name}"`);
  opt.setStepCount(step);
}
