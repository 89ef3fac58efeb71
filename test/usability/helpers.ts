// The `farm` command run in this process (fast: no tsx start-up per call) with its output captured, and
// small farm-world fixtures for the usability tests of issue 14.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../ts/cli/main.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits, writeSplits, type SplitSizes } from '../../ts/data/splits.ts';

export interface FarmResult { code: number; out: string; err: string }

function quiet(cmd: Command): void {
  cmd.exitOverride().configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  for (const c of cmd.commands) quiet(c);
}

/** Runs `farm ...args` in this process; code 1 when it throws (as bin/farm.mjs exits), with the message on err. */
export async function farm(args: string[], env: Record<string, string | undefined> = {}): Promise<FarmResult> {
  const program = await buildProgram();
  quiet(program);
  let out = '', err = '';
  const wOut = process.stdout.write, wErr = process.stderr.write;
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) { saved[k] = process.env[k]; if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  process.stdout.write = ((c: string | Uint8Array) => { out += String(c); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { err += String(c); return true; }) as typeof process.stderr.write;
  let code = 0;
  try {
    await program.parseAsync(['node', 'farm', ...args]);
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number; message: string };
    code = ce.code?.startsWith('commander.') ? (ce.exitCode ?? 1) : 1;
    // commander printed its own parse errors already; errors thrown by actions are printed as bin/farm.mjs does
    if (!err.includes(ce.message)) err += `farm: ${ce.message}\n`;
  } finally {
    process.stdout.write = wOut;
    process.stderr.write = wErr;
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  }
  return { code, out, err };
}

export const SMALL: SplitSizes = { sft: 40, preference: 30, unlabeled: 10, val: 0, eval: 30 };

/** A farm data folder (splits + manifest) of world `seed`. */
export function farmData(dir: string, seed: number, sizes: SplitSizes = SMALL) {
  mkdirSync(dir, { recursive: true });
  const splits = generateSplits(createWorld({ seed }), sizes, { seed });
  writeSplits(dir, splits, { seed, preset: 'test' });
  return { splits, file: (s: string) => join(dir, `${s}.jsonl`) };
}

export const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
export function writeJsonl(file: string, rows: object[]): string {
  writeFileSync(file, jsonl(rows));
  return file;
}
