#!/usr/bin/env node
// npm run build:bench: builds build/Release/farm-bench (native/tools/farm_bench.cc), the engine's workloads
// without Node, in the addon's CMake build (configured by `npm install` / `npm run build`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status === 0;
if (spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error('farm: build:bench needs CMake (the node-gyp fallback builds the addon only)');
  process.exit(1);
}
if (!existsSync(join(root, 'build/CMakeCache.txt')) && !run(process.execPath, ['scripts/build-native.mjs', '--force'])) process.exit(1);
const jobs = String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())));
const targets = process.argv.includes('--noprof') ? ['farm-bench', 'farm-bench-noprof'] : ['farm-bench'];
if (!run('cmake', ['--build', 'build', '--target', ...targets, '--parallel', jobs])) process.exit(1);
console.log(`farm: built ${targets.map((t) => join(root, 'build/Release', t)).join(', ')}`);
