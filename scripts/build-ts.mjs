#!/usr/bin/env node
// Compiles ts/ to dist/ (JavaScript with .d.ts beside each module) so that plain Node and TypeScript users can
// import the package; copies the data files the modules read at run time. Runs on `npm install` / `npm ci`
// (prepare) and before `npm pack` (prepack, with --force: a tarball never ships a stale dist/). Skips the work
// when dist/ is newer than every source. TypeScript 7 has no JavaScript API, so its tsc binary is run.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const dist = join(root, 'dist');
const stamp = join(dist, '.built');
const force = process.argv.includes('--force');
// Files the compiled modules read beside themselves (paths relative to ts/ and dist/).
const ASSETS = ['eval/data'];

function newest(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}
const sources = Math.max(newest(join(root, 'ts')), ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(root, f)).mtimeMs));
if (!force && existsSync(stamp) && statSync(stamp).mtimeMs >= sources) {
  if (!process.argv.includes('--quiet')) console.log('farm: dist/ is up to date');
  process.exit(0);
}

let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  // Installed from a tarball (dist/ shipped inside) nothing needs compiling; a git checkout needs the dev tools.
  if (existsSync(stamp)) process.exit(0);
  console.error('farm: cannot compile ts/ to dist/: the typescript package is not installed (npm install installs it)');
  process.exit(1);
}
rmSync(dist, { recursive: true, force: true });  // no JavaScript left over from a deleted or renamed module
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('farm: compiling ts/ to dist/ failed (see above)');
  process.exit(1);
}
for (const a of ASSETS) cpSync(join(root, 'ts', a), join(dist, a), { recursive: true });
mkdirSync(dist, { recursive: true });
writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.log('farm: compiled ts/ to dist/');
