// Issue 14, item 2: every code block of README.md is a tested example. TypeScript blocks are type-checked and
// run as written, importing the package by name (alpacafarm-ts/...) from a project outside the repository.
// Shell blocks: every `farm` command runs in a workspace whose input files (sft.jsonl, pairs.jsonl, ...) are a
// small farm data set; the long training commands (ppo, quark, dpo, expert-iteration, best-of-n) run with
// --dry-run, which checks every input, model and setting but trains nothing; npm commands must name existing
// scripts (and benches, test folders), with `npm start`'s stages listed by the real CLI. Layout blocks (text)
// must name folders that exist. Console blocks (a command and what it printed): each `$ ` command runs, and
// the headers of the tables shown (a line over a line of dashes) are the ones it prints today. A block in
// any other language fails the test until it is handled here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createWorld } from '../../ts/world/index.ts';
import { farmPairs } from '../../ts/feedback/index.ts';
import { farm, farmData, writeJsonl } from '../usability/helpers.ts';

const root = process.cwd();
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const blocks = [...readme.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2], line: readme.slice(0, m.index).split('\n').length }));
const tmp = mkdtempSync(join(tmpdir(), 'farm-readme-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('every block is one of the kinds this test runs', () => {
  assert.ok(blocks.length >= 6);
  for (const b of blocks) assert.ok(['ts', 'sh', 'text', 'console'].includes(b.lang), `README.md:${b.line}: a \`\`\`${b.lang || '(no language)'} block is not tested`);
});

test('TypeScript blocks type-check and run, importing alpacafarm-ts by name', () => {
  // the package as a dependency of a separate project (its exports map leads to dist/, built by npm install)
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-ts.mjs'), '--quiet'], { cwd: root, encoding: 'utf8' });
  assert.is(build.status, 0, build.stderr);
  const project = join(tmp, 'ts-project');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  symlinkSync(root, join(project, 'node_modules', 'alpacafarm-ts'), 'dir');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'readme-examples', private: true, type: 'module' }));
  const ts = blocks.filter((b) => b.lang === 'ts');
  assert.ok(ts.length >= 2);
  const files = ts.map((b, i) => {
    const f = `block${i + 1}-line${b.line}.ts`;
    writeFileSync(join(project, f), b.code);
    return f;
  });
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
      types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
    files,
  }));
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
  assert.is(tsc.status, 0, `README TypeScript does not type-check:\n${tsc.stdout}${tsc.stderr}`);
  const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')).href;
  for (const f of files) {
    const r = spawnSync(process.execPath, ['--import', tsx, f], { cwd: project, encoding: 'utf8', timeout: 300_000, env: { ...process.env, FARM_BACKEND: 'cpu' } });
    assert.is(r.status, 0, `README.md ${f} failed:\n${r.stdout}\n${r.stderr}`);
  }
  assert.ok(existsSync(join(project, 'runs', 'sft', 'model', 'model.safetensors')), 'the library example saves its model');
});

/** Command lines of a shell block: comments and blank lines dropped, continuations joined. */
function commands(code: string): string[][] {
  return code.replace(/\\\n/g, ' ').split('\n').map((l) => l.replace(/(^|\s)#.*$/, '').trim()).filter(Boolean)
    .map((l) => l.split(/\s+/).map((w) => w.replace(/^'(.*)'$/, '$1')));
}

// commands whose training takes minutes at the README's settings: run with --dry-run here
const HEAVY = new Set(['ppo', 'quark', 'dpo', 'expert-iteration', 'best-of-n']);

test('shell blocks: npm commands exist, every farm command runs', async () => {
  // the input files the commands name, as a small farm data set (world seed 1 recorded in every record)
  const work = join(tmp, 'work');
  const data = farmData(join(work, 'data'), 1, { sft: 60, preference: 24, unlabeled: 16, val: 0, eval: 24 });
  for (const s of ['sft', 'preference', 'unlabeled', 'eval']) copyFileSync(data.file(s), join(work, `${s}.jsonl`));
  writeJsonl(join(work, 'pairs.jsonl'), farmPairs(createWorld({ seed: 1 }), { n: 40, seed: 3 }).map((p) => ({ ...p, world_seed: 1 })));
  writeFileSync(join(work, 'outputs.json'), JSON.stringify(data.splits.eval.map((r) => ({ instruction: r.instruction, input: r.input, output: r.output.split(' ').slice(0, 6).join(' '), generator: 'short', world_seed: 1 })), null, 2));
  copyFileSync(join(root, 'test', 'fixtures', 'eval', 'annotations.json'), join(work, 'annotations.json'));
  const env = { FARM_REFERENCE_OUTPUTS: join(work, 'eval.jsonl'), FARM_CACHE_DIR: join(tmp, 'cache') };

  const ran: string[] = [];
  const home = process.cwd();
  process.chdir(work);
  try {
    for (const b of blocks.filter((x) => x.lang === 'sh')) {
      for (const words of commands(b.code)) {
        const where = `README.md:${b.line}: ${words.join(' ')}`;
        if (words[0] === 'npm') {
          const [, verb, ...rest] = words;
          const script = verb === 'run' ? rest[0] : verb === 'install' || verb === 'ci' ? 'install' : verb;
          const args = verb === 'run' ? rest.slice(1) : rest;
          assert.ok(pkg.scripts[script], `${where}: no npm script "${script}"`);
          const after = args.includes('--') ? args.slice(args.indexOf('--') + 1) : [];
          if (script === 'bench') for (const n of after.filter((a) => !a.startsWith('-'))) assert.ok(existsSync(join(root, 'bench', `${n}.ts`)), `${where}: no bench ${n}`);
          if (script === 'test') for (const p of after) assert.ok(existsSync(join(root, p)), `${where}: no ${p}`);
          if (script === 'start') {
            const cli = pkg.scripts.start.split(/\s+/);
            const r = await farm([...cli.slice(cli.findIndex((w) => w.endsWith('main.ts')) + 1), '--list-stages', '--json'], env);
            assert.is(r.code, 0, `${where}: ${r.err}`);
          }
          ran.push(where);
          continue;
        }
        const args = words[0] === 'npx' ? words.slice(2) : words.slice(1);
        assert.ok(words[0] === 'farm' || (words[0] === 'npx' && words[1] === 'farm'), `${where}: not a farm or npm command`);
        const r = await farm(HEAVY.has(args[0]) ? [...args, '--dry-run'] : args, env);
        assert.is(r.code, 0, `${where}\nexit ${r.code}\n${r.err.slice(-3000)}`);
        ran.push(where);
      }
    }
  } finally {
    process.chdir(home);
  }
  assert.ok(ran.some((w) => / farm ppo /.test(w)) && ran.some((w) => / farm evaluate /.test(w)), ran.join('\n'));
});

test('console blocks: the commands run and print the table headers shown', async () => {
  const consoles = blocks.filter((b) => b.lang === 'console');
  const norm = (l: string) => l.trim().split(/\s+/).join(' ');
  const home = process.cwd();
  process.chdir(tmp);
  try {
    for (const b of consoles) {
      const lines = b.code.split('\n');
      const cmds = lines.filter((l) => l.startsWith('$ ')).map((l) => l.slice(2).trim().split(/\s+/));
      assert.ok(cmds.length > 0, `README.md:${b.line}: a console block without a $ command`);
      const headers = lines.filter((l, i) => /^-[-\s]*$/.test(lines[i + 1] ?? '') && l.trim()).map(norm);
      let printed = '';
      for (const words of cmds) {
        assert.ok(words[0] === 'farm' || (words[0] === 'npx' && words[1] === 'farm'), `README.md:${b.line}: ${words.join(' ')}: not a farm command`);
        const r = await farm(words[0] === 'npx' ? words.slice(2) : words.slice(1));
        assert.is(r.code, 0, `README.md:${b.line}: ${words.join(' ')}\nexit ${r.code}\n${r.err.slice(-3000)}`);
        printed += r.out;
      }
      const real = printed.split('\n').map(norm);
      for (const h of headers) assert.ok(real.includes(h), `README.md:${b.line}: the table header "${h}" is not what the command prints now:\n${printed.slice(0, 2000)}`);
    }
  } finally {
    process.chdir(home);
  }
});

test('layout blocks name folders that exist', () => {
  for (const b of blocks.filter((x) => x.lang === 'text')) {
    for (const line of b.code.split('\n')) {
      const first = line.split(/\s+/)[0];
      if (first && first.endsWith('/')) assert.ok(existsSync(join(root, first)), `README.md:${b.line}: ${first} does not exist`);
    }
  }
});

test.run();
