#!/usr/bin/env node
// npm run bench [-- NAME [--quick] ...]: runs bench/NAME.ts (or every bench when no name is given).
// Each bench prints one JSON line per figure on stdout (DESIGN.md section 8).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const all = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
// Bench names are the arguments before the first flag; everything from the first flag on (values included,
// as in `--reps 9`) goes to each bench.
const firstFlag = args.findIndex((a) => a.startsWith('-'));
const names = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
const chosen = names.length ? names : all;
let status = 0;
for (const name of chosen) {
  const file = join(root, 'bench', `${name}.ts`);
  if (!existsSync(file)) { console.error(`unknown bench "${name}"; known: ${all.join(', ')}`); process.exit(2); }
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...flags], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
