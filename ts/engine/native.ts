// Loads the native addon (build/Release/farm.node, built by `npm install`).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// FARM_NATIVE points at another build of the addon (a side build directory, a CUDA build).
const candidates = process.env.FARM_NATIVE ? [resolve(process.env.FARM_NATIVE)]
  : [join(root, 'build/Release/farm.node'), join(root, 'build/Debug/farm.node')];

function load(): any {
  const path = candidates.find((p) => existsSync(p));
  if (!path) throw new Error(`native addon not built (looked for ${candidates.join(', ')}); run \`npm install\` or \`npm run build\``);
  return createRequire(import.meta.url)(path);
}

/** The raw addon. Prefer the typed facade in ./engine.ts; this is for bindings' own tests and benches. */
export const native: any = load();
