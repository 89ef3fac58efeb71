// `farm generate`: sample from a checkpoint folder (config.json + safetensors + tokenizer.json) with the
// KV-cache sampler. Prompts come from --prompt / --prompt-ids or a JSONL file; results go to stdout or JSONL.
import { Command, Option } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../engine/index.ts';
import { generate, type Sample } from '../../engine/generate.ts';
import { Tokenizer } from '../../tokenizer/index.ts';
import { formatPrompt } from '../../data/template.ts';

const int = (flag: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
};
const num = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
};
const ids = (flag: string) => (v: string, prev: number[][] = []) => {
  const xs = v.split(/[\s,]+/).filter(Boolean).map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${flag} must be comma-separated token ids, got ${JSON.stringify(v)}`);
  return [...prev, xs];
};
const collect = (v: string, prev: string[] = []) => [...prev, v];

interface PromptItem { text?: string; ids?: number[]; record?: Record<string, unknown> }

function readInput(file: string, template: boolean): PromptItem[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const items: PromptItem[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let r: Record<string, unknown>;
    try { r = JSON.parse(line); } catch (e) { throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`); }
    if (Array.isArray(r.prompt_ids)) items.push({ ids: r.prompt_ids as number[], record: r });
    else if (typeof r.prompt === 'string') items.push({ text: template ? formatPrompt({ instruction: r.prompt }) : r.prompt, record: r });
    else if (typeof r.instruction === 'string')
      items.push({ text: formatPrompt({ instruction: r.instruction, input: (r.input as string | undefined) ?? '' }), record: r });
    else throw new Error(`${file}:${i + 1}: a record needs "prompt", "instruction" (Alpaca) or "prompt_ids"`);
  });
  if (items.length === 0) throw new Error(`${file}: no prompts`);
  return items;
}

export function register(program: Command): void {
  program.command('generate')
    .description('sample continuations from a checkpoint folder with the KV-cache sampler')
    .requiredOption('--model <dir>', 'checkpoint folder (config.json, model.safetensors or shards, tokenizer.json)')
    .option('--prompt <text>', 'a prompt (repeatable)', collect)
    .option('--prompt-ids <ids>', 'a prompt as comma-separated token ids, no tokenizer needed (repeatable)', ids('--prompt-ids'))
    .option('--input <file>', 'JSONL prompts: {"prompt"} | {"instruction", "input"} (Alpaca template) | {"prompt_ids"}')
    .option('--output <file>', 'write one JSONL record per sample here instead of printing')
    .option('--template', 'wrap --prompt / "prompt" texts in the Alpaca prompt template', false)
    .option('--n <n>', 'samples per prompt', int('--n', 1), 1)
    .option('--max-new-tokens <n>', 'new tokens per sample at most', int('--max-new-tokens', 1), 64)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', num('--temperature'), 1)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', num('--top-p'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', int('--top-k', 0), 0)
    .option('--stop <ids>', 'extra stop token ids, comma-separated', (v: string) => ids('--stop')(v)[0])
    .option('--no-eos', 'do not stop at the tokenizer\'s EOS token')
    .option('--no-bos', 'do not prepend the tokenizer\'s BOS token')
    .option('--seed <n>', 'RNG seed', int('--seed', 0), 1)
    .option('--threads <n>', 'native threads', int('--threads', 1), 2)
    .addOption(new Option('--json', 'print a JSON array (one object per sample) instead of text').default(false))
    .action(async (opts) => {
      const dir: string = opts.model;
      if (!existsSync(join(dir, 'config.json'))) throw new Error(`--model ${dir}: no config.json there`);
      const tokFile = join(dir, 'tokenizer.json');
      const tok = existsSync(tokFile) ? Tokenizer.load(dir) : null;
      const items: PromptItem[] = [
        ...((opts.prompt ?? []) as string[]).map((t) => ({ text: opts.template ? formatPrompt({ instruction: t }) : t })),
        ...((opts.promptIds ?? []) as number[][]).map((x) => ({ ids: x })),
        ...(opts.input ? readInput(opts.input, opts.template) : []),
      ];
      if (items.length === 0) throw new Error('no prompts: give --prompt, --prompt-ids or --input');
      if (items.some((i) => i.text !== undefined) && !tok) throw new Error(`${tokFile} not found: text prompts need a tokenizer (or use --prompt-ids)`);
      const prompts = items.map((i) => i.ids ?? tok!.encode(i.text!, { addBos: opts.bos && tok!.bosId !== null }));
      const engine = await Engine.create({ threads: opts.threads, seed: opts.seed });
      const model = await engine.loadModel(dir);
      const eos = opts.eos && tok?.eosId != null ? tok.eosId : null;
      const t0 = performance.now();
      const tty = process.stderr.isTTY;
      const out = await generate(engine, model, prompts, {
        n: opts.n, maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topP: opts.topP, topK: opts.topK,
        stopTokens: opts.stop ?? [], eosTokenId: eos, seed: opts.seed,
        onProgress: tty ? (p) => process.stderr.write(`\r${p.newTokens} tokens, ${p.finishedSequences}/${p.totalSequences} sequences done`) : undefined,
      });
      if (tty) process.stderr.write('\n');
      const secs = (performance.now() - t0) / 1000;
      const decode = (s: Sample) => (tok ? tok.decode(s.tokens, { skipSpecialTokens: true }) : s.tokens.join(' '));
      const records = items.flatMap((item, p) => out[p].map((s, j) => ({
        ...(item.record ?? {}), prompt_index: p, sample: j, ...(item.text !== undefined ? { prompt: item.text } : { prompt_ids: prompts[p] }),
        output: decode(s), tokens: s.tokens, logprob: s.logprobs.reduce((a, b) => a + b, 0), finish_reason: s.finishReason, generator: dir,
      })));
      if (opts.output) {
        writeFileSync(opts.output, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
        const n = records.reduce((a, r) => a + r.tokens.length, 0);
        console.error(`wrote ${records.length} samples to ${opts.output} (${n} tokens in ${secs.toFixed(2)} s, ${(n / secs).toFixed(0)} tokens/s)`);
      } else if (opts.json) {
        console.log(JSON.stringify(records, null, 2));
      } else {
        for (const r of records) console.log(`--- prompt ${r.prompt_index}, sample ${r.sample} (${r.finish_reason}, logprob ${r.logprob.toFixed(2)})\n${r.output}`);
      }
    });
}
