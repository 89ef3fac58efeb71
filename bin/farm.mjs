#!/usr/bin/env node
// The `farm` command. In a checkout (ts/ present, tsx installed) it runs the TypeScript sources through tsx, so
// edits take effect at once; an installed package ships only the compiled dist/ and runs that with plain Node.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let tsx = null;
if (existsSync(fileURLToPath(new URL('../ts/cli/main.ts', import.meta.url)))) {
  try { tsx = await import('tsx/esm/api'); } catch { /* no dev tools: the compiled modules below */ }
}
if (tsx) {
  tsx.register();
  await import('../ts/cli/main.ts');
} else {
  await import('../dist/cli/main.js');
}
