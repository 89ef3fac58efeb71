#!/usr/bin/env node
// Builds the native addon with cmake-js (the primary build); falls back to node-gyp (CPU only)
// when CMake is missing. Skips the build when the addon is newer than every native source.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const addon = join(root, 'build/Release/farm.node');
const force = process.argv.includes('--force');

function newestSource(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newestSource(p) : s.mtimeMs);
  }
  return t;
}
const sourcesTime = Math.max(newestSource(join(root, 'native')), statSync(join(root, 'CMakeLists.txt')).mtimeMs);
// FARM_CUDA=0|1|AUTO chooses the CUDA backend when CMake configures; a value that differs from the last
// build's re-configures (cmake-js only configures an empty build directory).
const cudaRequest = process.env.FARM_CUDA ?? '';
const cudaMarker = join(root, 'build/.farm-cuda');
const reconfigure = cudaRequest !== '' && (existsSync(cudaMarker) ? readFileSync(cudaMarker, 'utf8') : 'AUTO') !== cudaRequest;
if (!force && !reconfigure && existsSync(addon) && statSync(addon).mtimeMs >= sourcesTime) {
  console.log('farm: native addon is up to date');
  process.exit(0);
}

const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: false }).status === 0;
const hasCmake = spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
// Resolved as Node resolves it: installed as a dependency, npm hoists cmake-js beside this package.
const cmakeJs = (() => {
  try { return join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin', 'cmake-js'); } catch { return ''; }
})();
const jobs = String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())));
if (hasCmake && existsSync(cmakeJs) && process.env.FARM_BUILD !== 'node-gyp') {
  if (reconfigure && existsSync(join(root, 'build/CMakeCache.txt')) && !run(process.execPath, [cmakeJs, 'configure'])) process.exit(1);
  if (run(process.execPath, [cmakeJs, 'compile', '--parallel', jobs])) {
    if (cudaRequest !== '') { mkdirSync(join(root, 'build'), { recursive: true }); writeFileSync(cudaMarker, cudaRequest); }
    process.exit(0);
  }
  // A compile error would fail under node-gyp too, and its `rebuild` would wipe build/: stop here.
  console.error('farm: the cmake-js build failed (see above); set FARM_BUILD=node-gyp to try the CPU-only node-gyp build');
  if (process.env.FARM_BUILD !== 'node-gyp') process.exit(1);
}
// npm tells lifecycle scripts where its bundled node-gyp is; otherwise look beside this Node.
const gyp = [process.env.npm_config_node_gyp,
  join(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find((p) => p && existsSync(p));
const ok = gyp ? run(process.execPath, [gyp, 'rebuild']) : false;
if (!gyp) console.error('farm: neither cmake nor node-gyp is available to build the native addon');
process.exit(ok ? 0 : 1);
