// Shared fixtures of the method CLI tests: tiny farm splits as JSONL files and a `farm` runner.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits } from '../../ts/data/splits.ts';

export const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

/** A model small enough that every command runs in about a second. */
export const TINY = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true };

export function writeSplits(dir: string, seed = 3, sizes = { sft: 160, preference: 40, unlabeled: 16, val: 0, eval: 8 }) {
  mkdirSync(dir, { recursive: true });
  const splits = generateSplits(createWorld({ seed }), sizes, { seed });
  const files: Record<string, string> = {};
  for (const [k, rows] of Object.entries(splits)) {
    files[k] = join(dir, `${k}.jsonl`);
    writeFileSync(files[k], rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  return files as Record<'sft' | 'preference' | 'unlabeled' | 'val' | 'eval', string>;
}

export function farm(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'ts/cli/main.ts'), ...args],
    { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** Parses the --json summary of a command (the last stdout line). */
export function summary(r: { out: string; err: string; code: number | null }) {
  const lines = r.out.trim().split('\n');
  try { return JSON.parse(lines[lines.length - 1]); } catch { throw new Error(`no JSON summary (exit ${r.code}):\n${r.out}\n${r.err}`); }
}

export const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
export const readLines = (f: string) => readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

/** Metrics lines without the time-dependent fields, for run-to-run comparisons. */
export function timeless(lines: Record<string, number>[]) {
  return lines.map((l) => Object.fromEntries(Object.entries(l).filter(([k]) => !k.startsWith('time/'))));
}
