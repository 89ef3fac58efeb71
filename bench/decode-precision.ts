// What bf16 decoding (decodePrecision: 'bf16': weights and KV cache in bfloat16) does to a trained model's
// outputs: greedy continuations compared with fp32 on every evaluation instruction, and per-token log-probs of
// fp32 samples scored under both (teacher forcing). Uses the SFT model and evaluation split of the quick
// pipeline (`npm start` writes runs/quick), or --model DIR with --data FILE.jsonl (Alpaca records).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../ts/engine/index.ts';
import { generate } from '../ts/engine/generate.ts';
import { Tokenizer } from '../ts/tokenizer/index.ts';
import { formatPrompt } from '../ts/data/template.ts';
import { emit, quick } from './_lib.ts';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : def; };
/** The first path under `root` for which `ok` holds (depth-first, sorted). */
function find(root: string, ok: (p: string) => boolean): string | null {
  if (!existsSync(root)) return null;
  if (ok(root)) return root;
  if (!statSync(root).isDirectory()) return null;
  for (const name of readdirSync(root).sort()) {
    const hit = find(join(root, name), ok);
    if (hit) return hit;
  }
  return null;
}
const dir = arg('model', find('runs/quick/stages/sft', (p) => existsSync(join(p, 'config.json')) && existsSync(join(p, 'tokenizer.json'))) ?? 'runs/quick/stages/sft');
const data = arg('data', find('runs/quick/stages/data', (p) => p.endsWith('eval.jsonl')) ?? 'runs/quick/stages/data/eval.jsonl');
if (!existsSync(join(dir, 'config.json')) || !existsSync(data)) {
  console.error(`decode-precision: SKIP: no trained model at ${dir} or no ${data} (run \`npm start\` first, or pass --model DIR --data FILE)`);
  process.exit(0);
}
const engine = await Engine.create({ threads: 2, seed: 1 });
const model = await engine.loadModel(dir);
const tok = Tokenizer.load(dir);
const records = readFileSync(data, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).slice(0, quick ? 50 : 200);
const prompts = records.map((r) => tok.encode(formatPrompt(r), { addBos: tok.bosId !== null }));
const maxNewTokens = 64, eosTokenId = tok.eosId;
const config = { model: dir, prompts: prompts.length, maxNewTokens, params: model.numParameters };

// Greedy: the whole continuation equal, and where the first difference falls.
const g32 = await generate(engine, model, prompts, { temperature: 0, maxNewTokens, eosTokenId });
const g16 = await generate(engine, model, prompts, { temperature: 0, maxNewTokens, eosTokenId, decodePrecision: 'bf16' });
let same = 0, tokensSame = 0, tokensAll = 0;
for (let i = 0; i < prompts.length; i++) {
  const a = g32[i][0].tokens, b = g16[i][0].tokens;
  if (a.join() === b.join()) same++;
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  tokensSame += k;
  tokensAll += a.length;
}
emit({ bench: 'decode-precision', figure: 'greedy_equal_fraction', value: same / prompts.length, unit: 'fraction', config });
emit({ bench: 'decode-precision', figure: 'greedy_tokens_before_first_difference', value: tokensSame / tokensAll, unit: 'fraction', config });

// Log-probs of fp32 samples (temperature 1) under both precisions, teacher-forced.
const samples = await generate(engine, model, prompts, { temperature: 1, maxNewTokens, eosTokenId, seed: 7 });
const score = async (precision: 'fp32' | 'bf16') => {
  const s = engine.session(model, { maxSequences: 1, maxLength: model.config.max_position_embeddings, decodePrecision: precision });
  const out: Float32Array[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const [slot] = await s.addPrompts([prompts[i]]);
    out.push((await s.extend(slot, samples[i][0].tokens)).logprob);
    s.release([slot]);
  }
  s.dispose();
  return out;
};
const a = await score('fp32'), b = await score('bf16');
const diffs: number[] = [], seqDiffs: number[] = [];
for (let i = 0; i < a.length; i++) {
  let sa = 0, sb = 0;
  for (let j = 0; j < a[i].length; j++) { diffs.push(Math.abs(a[i][j] - b[i][j])); sa += a[i][j]; sb += b[i][j]; }
  seqDiffs.push(Math.abs(sa - sb));
}
diffs.sort((x, y) => x - y);
seqDiffs.sort((x, y) => x - y);
const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const c2 = { ...config, tokens: diffs.length };
emit({ bench: 'decode-precision', figure: 'logprob_abs_diff_mean', value: diffs.reduce((s, x) => s + x, 0) / diffs.length, unit: 'nats', config: c2 });
emit({ bench: 'decode-precision', figure: 'logprob_abs_diff_p99', value: q(diffs, 0.99), unit: 'nats', config: c2 });
emit({ bench: 'decode-precision', figure: 'logprob_abs_diff_max', value: diffs[diffs.length - 1], unit: 'nats', config: c2 });
emit({ bench: 'decode-precision', figure: 'sequence_logprob_abs_diff_median', value: q(seqDiffs, 0.5), unit: 'nats', config: c2 });
emit({ bench: 'decode-precision', figure: 'sequence_logprob_abs_diff_max', value: seqDiffs[seqDiffs.length - 1], unit: 'nats', config: c2 });
