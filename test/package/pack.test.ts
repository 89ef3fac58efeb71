// Issue 14, item 3: the package as users get it. `npm pack`, install the tarball into a fresh project (which
// builds the native addon there), then run a plain .mjs script and a type-checked .ts script that create an
// engine, train a step and sample, and the `farm` binary. The tarball ships compiled JavaScript with .d.ts
// files and an exports map, and no build/ (a stale CMake cache or .node from here would be reused there).
// Slow (an npm install and a native compile, ~1-2 minutes); FARM_CUDA=0 keeps the CUDA backend out of it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.cwd();
const tmp = mkdtempSync(join(tmpdir(), 'farm-pack-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const env = { ...process.env, FARM_CUDA: '0', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
const sh = (cmd: string, args: string[], cwd: string, timeout = 600_000) => spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
const NETWORK = /ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENOTCACHED|ENETUNREACH|network/;

test('npm pack -> install into a new project -> .mjs and type-checked .ts scripts train a step and sample', () => {
  // 1. the tarball (prepack compiles ts/ to dist/ afresh)
  const pack = sh(npm, ['pack', '--json', '--pack-destination', tmp], root);
  assert.is(pack.status, 0, pack.stderr);
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('[')))[0] as { filename: string; files: { path: string }[] };
  const files = info.files.map((f) => f.path);
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/engine/index.js', 'dist/engine/index.d.ts', 'dist/cli/main.js', 'dist/eval/data/alpaca_eval_2/instruction_difficulty.csv',
    'bin/farm.mjs', 'CMakeLists.txt', 'native/src/cpu/kernels.cc', 'proto/farm.proto', 'prompts/pairwise_batch.txt', 'scripts/build-native.mjs', 'package.json']) {
    assert.ok(files.includes(f), `the tarball lacks ${f}`);
  }
  const unwanted = files.filter((f) => /^(build|build-emu|ts|test|bench|runs|node_modules)\//.test(f) || f.endsWith('.node'));
  assert.equal(unwanted, [], 'no build outputs, sources of the compiled code, tests or runs in the tarball');

  // 2. a fresh project that installs it
  const project = join(tmp, 'consumer');
  spawnSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const install = sh(npm, ['install', '--prefer-offline', '--no-package-lock', join(tmp, info.filename)], project);
  if (install.status !== 0 && NETWORK.test(install.stderr)) {
    console.log(`SKIP pack: npm install of the tarball's dependencies needs the registry or its cache (${install.stderr.match(NETWORK)?.[0]})`);
    return;
  }
  assert.is(install.status, 0, `${install.stdout}\n${install.stderr}`);
  // built by CMake (the primary build: CUDA where nvcc is), not the CPU-only node-gyp fallback, although npm
  // hoists cmake-js out of the package's own node_modules
  const installed = join(project, 'node_modules', 'alpacafarm-ts');
  assert.ok(existsSync(join(installed, 'build', 'CMakeCache.txt')), `the addon was not built by CMake:\n${install.stdout}\n${install.stderr}`);

  // 3. plain Node: subpath and root imports, an engine, one SFT step, samples
  writeFileSync(join(project, 'plain.mjs'), `
import { Engine } from 'alpacafarm-ts/engine';
import { createWorld } from 'alpacafarm-ts/world';
import * as farm from 'alpacafarm-ts';
const engine = await Engine.create({ threads: 1, seed: 1 });
const model = engine.createModel({ vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 32 });
const optimizer = engine.createOptimizer(model, { lr: 1e-3 });
const step = await engine.sftStep(model, [{ prompt: [1, 2, 3], response: [4, 5, 6] }], optimizer);
const samples = await engine.generate(model, [[1, 2, 3]], { n: 2, maxNewTokens: 5 });
const task = createWorld({ seed: 1 }).sampleTask(new farm.world.Rng(1));
console.log(JSON.stringify({ loss: step.loss, samples: samples[0].length, tokens: samples[0][0].tokens.length, root: typeof farm.Engine, task: typeof task.instruction }));
`);
  const plain = sh(process.execPath, ['plain.mjs'], project, 120_000);
  assert.is(plain.status, 0, plain.stderr);
  const p = JSON.parse(plain.stdout.trim().split('\n').pop()!);
  assert.ok(Number.isFinite(p.loss) && p.loss > 0, plain.stdout);
  assert.equal([p.samples, p.root, p.task], [2, 'function', 'string']);
  assert.ok(p.tokens >= 1 && p.tokens <= 5);

  // 4. TypeScript: the same through the package's declarations, type-checked by tsc, then run
  const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, outDir: 'out', types: [] } };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['main.ts'] }));
  writeFileSync(join(project, 'main.ts'), `
import { Engine, type StepStats, type Sample } from 'alpacafarm-ts/engine';
import { sft } from 'alpacafarm-ts/methods';
const engine: Engine = await Engine.create({ threads: 1, seed: 2 });
const model = engine.createModel({ vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 32 });
const optimizer = engine.createOptimizer(model, { lr: 1e-3, warmupSteps: 1, totalSteps: 10, kind: 'cosine' });
const step: StepStats = await engine.sftStep(model, [{ prompt: [1, 2, 3], response: [7, 8] }], optimizer);
const samples: Sample[][] = await engine.generate(model, [[1, 2]], { maxNewTokens: 4, temperature: 0 });
const lossIsNumber: number = step.loss;
console.log(JSON.stringify({ loss: lossIsNumber, finish: samples[0][0].finishReason, sft: typeof sft }));
`);
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const check = sh(process.execPath, [tsc, '-p', 'tsconfig.json'], project, 120_000);
  assert.is(check.status, 0, `tsc: ${check.stdout}${check.stderr}`);
  const typed = sh(process.execPath, [join('out', 'main.js')], project, 120_000);
  assert.is(typed.status, 0, typed.stderr);
  const t = JSON.parse(typed.stdout.trim().split('\n').pop()!);
  assert.ok(Number.isFinite(t.loss) && ['stop', 'length'].includes(t.finish) && t.sft === 'function', typed.stdout);
  // the declarations are real types, not any: a misuse fails to type-check
  writeFileSync(join(project, 'bad.ts'), `import { Engine } from 'alpacafarm-ts/engine';\nconst e = await Engine.create({ threads: 1 });\nconst s: string = e.threads;\nexport {};\n`);
  writeFileSync(join(project, 'tsconfig.bad.json'), JSON.stringify({ ...tsconfig, include: ['bad.ts'] }));
  const bad = sh(process.execPath, [tsc, '-p', 'tsconfig.bad.json', '--noEmit'], project, 120_000);
  assert.is.not(bad.status, 0);
  assert.match(bad.stdout + bad.stderr, /TS2322/);

  // 5. the CLI from the installed package (compiled JavaScript, no tsx)
  const cli = sh(process.execPath, [join(project, 'node_modules', '.bin', 'farm'), 'judges', 'list', '--json'], project, 60_000);
  assert.is(cli.status, 0, cli.stderr);
  assert.ok(JSON.parse(cli.stdout).farm.length > 0);
});

test.run();
