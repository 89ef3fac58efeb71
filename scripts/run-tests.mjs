#!/usr/bin/env node
// Runs every test file under test/ (uvu over TypeScript via tsx), each in its own process so that one
// file's crash cannot hide the others, and ends with the plain line "N passed, N failed".
// Usage: npm test [-- FILTER...]   (FILTER: substrings of test file paths)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const filters = process.argv.slice(2);
function walk(dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' ? [] : walk(p);
    return /\.test\.ts$/.test(name) ? [p] : [];
  });
}
const files = walk(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
let passed = 0, failed = 0, skipped = 0;
const failures = [];
const t0 = Date.now();
for (const file of files) {
  const rel = relative(root, file);
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
    // Engines made with backend 'auto' stay on the CPU (test/cuda asks for CUDA by name); FARM_BACKEND overrides.
    cwd: root, encoding: 'utf8', env: { FARM_BACKEND: 'cpu', ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, maxBuffer: 64 << 20,
  });
  const out = strip((r.stdout ?? '') + (r.stderr ?? ''));
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    failed += 1; failures.push(rel);
    console.log(`✘ ${rel}: no test summary (exit ${r.status}, signal ${r.signal}) [${secs}s]\n${out.trim()}`);
    continue;
  }
  const bad = total - ok;  // uvu counts skipped tests apart from Total
  passed += ok; failed += bad; skipped += skip;
  if (bad > 0 || r.status !== 0) {
    if (bad === 0) failed += 1;
    failures.push(rel);
    console.log(`✘ ${rel}: ${ok} passed, ${Math.max(bad, 1)} failed [${secs}s]\n${out.trim()}`);
  } else {
    const notes = out.split('\n').filter((l) => /^(SKIP|NOTE)\b/.test(l)).map((l) => `    ${l}`).join('\n');
    console.log(`✔ ${rel}: ${ok} passed${skip ? `, ${skip} skipped` : ''} [${secs}s]${notes ? `\n${notes}` : ''}`);
  }
}
console.log(`\n${files.length} files in ${((Date.now() - t0) / 1000).toFixed(1)}s${failures.length ? `; failing: ${failures.join(', ')}` : ''}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
