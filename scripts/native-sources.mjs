// Lists the engine's C++ sources for binding.gyp (the node-gyp fallback), the same set CMake globs.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'cuda') out.push(...walk(p)); }
    else if (name.endsWith('.cc')) out.push(relative(root, p));
  }
  return out;
}
console.log([...walk(join(root, 'native/src')), ...walk(join(root, 'native/addon'))].join(' '));
