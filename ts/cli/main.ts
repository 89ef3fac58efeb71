// The `farm` command line. Each file in ./commands registers one command (or a group) on the program,
// so that each layer owns its own commands: `export function register(program: Command): void`.
import { Command } from 'commander';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Engine } from '../engine/index.ts';
import { registerScorerLoader } from '../feedback/index.ts';
import { loadRewardScorer } from '../methods/reward-model.ts';

// `--annotator model:DIR` judges with a reward model; the feedback layer does not import the engine itself.
registerScorerLoader(async (dir) => loadRewardScorer(await Engine.create({ threads: 2 }), dir));

export async function buildProgram(): Promise<Command> {
  const program = new Command('farm')
    .description('alpacafarm-ts: learn from pairwise feedback on an embedded farm world or real checkpoints')
    .version(JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')).version, '-V, --version')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  // .ts under tsx, .js in the compiled package (dist/), never the .d.ts beside them
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  for (const file of readdirSync(dir).filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts')).sort()) {
    const mod = await import(pathToFileURL(join(dir, file)).href);
    if (typeof mod.register !== 'function') throw new Error(`cli/commands/${file} exports no register(program)`);
    mod.register(program);
  }
  return program;
}

const isMain = process.argv[1] && /(?:main\.[tj]s|farm(?:\.mjs)?)$/.test(process.argv[1]);
if (isMain) {
  const program = await buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    console.error(`farm: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
