// A tiny SFT policy of the farm world for method tests: 400 demonstrations, BPE 400, hidden 32, 2 layers.
import { Engine, type Model, type ModelConfig } from '../../ts/engine/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits, type Splits } from '../../ts/data/splits.ts';
import { trainBpe, type Tokenizer } from '../../ts/tokenizer/index.ts';
import { formatPrompt } from '../../ts/data/template.ts';
import { sft } from '../../ts/methods/sft.ts';

export interface TinyFarm { engine: Engine; tok: Tokenizer; policy: Model; splits: Splits; arch: (o?: Partial<ModelConfig>) => ModelConfig }

export async function tinyFarm(seed = 3, sizes: Partial<Record<keyof Splits, number>> = {}, over: Partial<ModelConfig> = {}): Promise<TinyFarm> {
  const world = createWorld({ seed });
  const splits = generateSplits(world, { sft: 400, preference: 0, unlabeled: 64, val: 0, eval: 0, ...sizes }, { seed });
  const tok = trainBpe(splits.sft.map((r) => formatPrompt(r) + r.output), { vocabSize: 400 });
  const engine = await Engine.create({ threads: 2, seed: 1 });
  const arch = (o: Partial<ModelConfig> = {}): ModelConfig => ({
    vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 160, ...over, ...o,
  });
  const policy = engine.createModel(arch());
  await sft(engine, policy, tok, splits.sft, { epochs: 3, lr: 5e-3, batchSize: 16 });
  return { engine, tok, policy, splits, arch };
}

export const mean = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0) / a.length;
