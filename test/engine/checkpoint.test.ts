// Real-checkpoint layouts built by the test itself: sharded safetensors with an index, bf16/fp16 weights,
// tokenizer.json beside the model; and the errors for unsupported configs, missing or misshapen tensors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, configFromHf, type Model } from '../../ts/engine/index.ts';
import { trainBpe, Tokenizer } from '../../ts/tokenizer/index.ts';

const engine = await Engine.create({ threads: 1, seed: 3 });
const hfConfig = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 300, hidden_size: 16, intermediate_size: 24,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32,
  rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: false, hidden_act: 'silu', torch_dtype: 'bfloat16',
};

// Values on a grid of 1/64 in [-2, 2]: exact in bf16 and fp16, so the load must reproduce them bit for bit.
const gridValue = (i: number, salt: number) => ((((i * 2654435761 + salt * 40503) >>> 0) % 257) - 128) / 64;
function toBf16(x: number): number { const f = new Float32Array([x]); return new Uint32Array(f.buffer)[0] >>> 16; }
function toF16(x: number): number {
  if (x === 0) return 0;
  const sign = x < 0 ? 0x8000 : 0; let a = Math.abs(x);
  let e = Math.floor(Math.log2(a)); let m = a / 2 ** e - 1;
  if (e < -14) { m = a / 2 ** -14; e = -15; }  // subnormal
  return sign | ((e + 15) << 10) | Math.round(m * 1024);
}
function writeShard(path: string, tensors: { name: string; shape: number[]; values: number[] }[], dtype: 'BF16' | 'F16' | 'F32') {
  const header: Record<string, unknown> = {};
  const width = dtype === 'F32' ? 4 : 2;
  let off = 0;
  for (const t of tensors) { header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + t.values.length * width] }; off += t.values.length * width; }
  const hb = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + hb.length + off);
  out.writeBigUInt64LE(BigInt(hb.length)); hb.copy(out, 8);
  let pos = 8 + hb.length;
  for (const t of tensors) for (const v of t.values) {
    if (dtype === 'F32') { out.writeFloatLE(v, pos); pos += 4; } else { out.writeUInt16LE(dtype === 'BF16' ? toBf16(v) : toF16(v), pos); pos += 2; }
  }
  writeFileSync(path, out);
}
function expectedTensors(model: Model) {
  return model.parameters().map((p, k) => ({ name: p.name, shape: p.shape, values: Array.from({ length: p.data.length }, (_, i) => gridValue(i, k)) }));
}

for (const dtype of ['BF16', 'F16'] as const) {
  test(`a sharded ${dtype} LLaMA checkpoint (index + 2 shards + tokenizer.json) loads exactly, in fp32`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'farm-hf-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig));
      const shape = engine.createModel(configFromHf(hfConfig));
      const tensors = expectedTensors(shape);
      const half = Math.ceil(tensors.length / 2);
      const shards = [tensors.slice(0, half), tensors.slice(half)];
      const weight_map: Record<string, string> = {};
      shards.forEach((s, k) => {
        const file = `model-0000${k + 1}-of-00002.safetensors`;
        writeShard(join(dir, file), s, dtype);
        for (const t of s) weight_map[t.name] = file;
      });
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map }));
      trainBpe(['hello farm world, hello cows'], { vocabSize: 270 }).save(join(dir, 'tokenizer.json'));

      const model = await engine.loadModel(dir);
      assert.is(model.config.num_key_value_heads, 2);
      assert.is(model.config.rope_theta, 500000);
      for (const [k, p] of model.parameters().entries())
        for (let i = 0; i < p.data.length; i++) if (p.data[i] !== tensors[k].values[i]) assert.unreachable(`${p.name}[${i}] = ${p.data[i]}, expected ${tensors[k].values[i]}`);
      const tok = Tokenizer.load(dir);
      const ids = tok.encode('hello cows', { addBos: true });
      const out = await engine.forward(model, [ids]);
      assert.ok(out.logits!.every(Number.isFinite));
      // export ours in the same layout and load it back
      const again = join(dir, 'export');
      await engine.saveModel(model, again);
      const reloaded = await engine.loadModel(again);
      const y = await engine.forward(reloaded, [ids]);
      assert.equal(Array.from(y.logits!), Array.from(out.logits!));
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
}

test('unsupported configs and broken checkpoints give clear errors', async () => {
  assert.throws(() => configFromHf({ ...hfConfig, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }), /model_type "gpt2" is not supported/);
  assert.throws(() => configFromHf({ ...hfConfig, rope_scaling: { type: 'linear', factor: 2 } }), /rope_scaling/);
  assert.throws(() => configFromHf({ ...hfConfig, hidden_act: 'gelu' }), /hidden_act/);
  assert.throws(() => configFromHf({ ...hfConfig, attention_bias: true }), /attention_bias/);
  const dir = mkdtempSync(join(tmpdir(), 'farm-hf-bad-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig));
    const tensors = expectedTensors(engine.createModel(configFromHf(hfConfig)));
    // a missing tensor
    writeShard(join(dir, 'model.safetensors'), tensors.filter((t) => !t.name.includes('layers.1.mlp.up_proj')), 'F32');
    let err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);
    // a wrong shape
    const bad = tensors.map((t) => t.name === 'model.norm.weight' ? { ...t, shape: [8], values: t.values.slice(0, 8) } : t);
    writeShard(join(dir, 'model.safetensors'), bad, 'F32');
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /"model\.norm\.weight" has shape \[8\], expected \[16\]/);
    // an unsupported dtype: rewrite the dtype of one F32 tensor as I32 (same width, so offsets stay valid)
    writeShard(join(dir, 'model.safetensors'), tensors, 'F32');
    const raw = readFileSync(join(dir, 'model.safetensors'));
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    header['model.norm.weight'].dtype = 'I32';
    const hb = Buffer.from(JSON.stringify(header).padEnd(n, ' '));
    assert.is(hb.length, n);
    hb.copy(raw, 8);
    writeFileSync(join(dir, 'model.safetensors'), raw);
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /model\.norm\.weight.*I32|I32.*model\.norm\.weight/);
    // an unexpected tensor (another architecture)
    writeShard(join(dir, 'model.safetensors'), [...tensors, { name: 'model.layers.0.self_attn.q_proj.bias', shape: [16], values: new Array(16).fill(0) }], 'F32');
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /unexpected tensor model\.layers\.0\.self_attn\.q_proj\.bias/);
    // a corrupt config.json
    writeFileSync(join(dir, 'config.json'), '{"model_type": ');
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /config\.json/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test.run();
