// `farm generate`: sample from a checkpoint folder (config.json + safetensors + tokenizer.json) with the
// KV-cache sampler. Prompts come from --prompt / --prompt-ids or a JSONL file; results go to stdout or JSONL.
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Engine } from '../../engine/index.ts';
import { generate, type Sample } from '../../engine/generate.ts';
import { Tokenizer } from '../../tokenizer/index.ts';
import { formatPrompt } from '../../data/template.ts';
import { writeFileAtomic } from '../../data/json.ts';
import { checkInputFile, nameFromPath } from '../../eval/cli-support.ts';
import { terminalProgress } from '../progress.ts';
import { checkOutputFile, outputFormat } from './annotate.ts';

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
    .option('--out <file>', 'write the samples here instead of printing: .jsonl (one record per sample) or .json (a JSON array)')
    .addOption(new Option('--output <file>', 'old spelling of --out').hideHelp())
    .option('--template', 'wrap --prompt / "prompt" texts in the Alpaca prompt template', false)
    .option('--n <n>', 'samples per prompt', int('--n', 1), 1)
    .option('--max-new-tokens <n>', 'new tokens per sample at most', int('--max-new-tokens', 1), 64)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', (v: string) => { const t = num('--temperature')(v); if (t < 0) throw new InvalidArgumentError(`--temperature must be >= 0, got ${JSON.stringify(v)}`); return t; }, 1)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', (v: string) => { const p = num('--top-p')(v); if (!(p > 0 && p <= 1)) throw new InvalidArgumentError(`--top-p must be in (0, 1], got ${JSON.stringify(v)}`); return p; }, 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', int('--top-k', 0), 0)
    .option('--stop <ids>', 'extra stop token ids, comma-separated', (v: string) => ids('--stop')(v)[0])
    .option('--no-eos', 'do not stop at the tokenizer\'s EOS token')
    .option('--no-bos', 'do not prepend the tokenizer\'s BOS token')
    .option('--seed <n>', 'RNG seed', int('--seed', 0), 1)
    .option('--threads <n>', 'native threads', int('--threads', 1), 2)
    .addOption(new Option('--json', 'print a JSON array (one object per sample) instead of text').default(false))
    .option('--no-progress', 'no progress bar (log lines only)')
    .action(async (opts) => {
      const dir: string = opts.model;
      const outFile: string | undefined = opts.out ?? opts.output;
      if (opts.out && opts.output) throw new InvalidArgumentError('--output is the old spelling of --out: give one');
      if (outFile) { outputFormat(outFile); checkOutputFile(outFile, '--out'); }
      checkInputFile('--input', opts.input);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--model ${dir}: no such folder`);
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
      const progress = terminalProgress({ bar: opts.progress, tty: process.stderr.isTTY });
      progress.start('generate (sequences done)', prompts.length * opts.n);
      let out;
      try {
        out = await generate(engine, model, prompts, {
          n: opts.n, maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topP: opts.topP, topK: opts.topK,
          stopTokens: opts.stop ?? [], eosTokenId: eos, seed: opts.seed,
          onProgress: (p) => progress.update(p.finishedSequences, { tokens: p.newTokens }),
        });
      } finally {
        progress.stop();
      }
      const secs = (performance.now() - t0) / 1000;
      const decode = (s: Sample) => (tok ? tok.decode(s.tokens, { skipSpecialTokens: true }) : s.tokens.join(' '));
      const records = items.flatMap((item, p) => out[p].map((s, j) => ({
        ...(item.record ?? {}), prompt_index: p, sample: j, ...(item.text !== undefined ? { prompt: item.text } : { prompt_ids: prompts[p] }),
        // the model's name, not its path (runs/sft/model -> sft): evaluation names runs and folders after it
        output: decode(s), tokens: s.tokens, logprob: s.logprobs.reduce((a, b) => a + b, 0), finish_reason: s.finishReason, generator: nameFromPath(resolve(dir)),
      })));
      if (outFile) {
        writeFileAtomic(outFile, outputFormat(outFile) === 'json' ? `${JSON.stringify(records, null, 2)}\n` : records.map((r) => JSON.stringify(r)).join('\n') + '\n');
        const n = records.reduce((a, r) => a + r.tokens.length, 0);
        console.error(`wrote ${records.length} samples to ${outFile} (${n} tokens in ${secs.toFixed(2)} s, ${(n / secs).toFixed(0)} tokens/s)`);
      } else if (opts.json) {
        console.log(JSON.stringify(records, null, 2));
      } else {
        for (const r of records) console.log(`--- prompt ${r.prompt_index}, sample ${r.sample} (${r.finish_reason}, logprob ${r.logprob.toFixed(2)})\n${r.output}`);
      }
    });
}
