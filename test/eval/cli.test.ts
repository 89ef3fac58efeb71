// The commands run in-process on a program of their own (no discovery of other commands).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register as registerEvaluate } from '../../ts/cli/commands/evaluate.ts';
import { register as registerLeaderboard } from '../../ts/cli/commands/leaderboard.ts';

const fx = (name: string) => fileURLToPath(new URL(`../fixtures/eval/${name}`, import.meta.url));

async function farm(...args: string[]): Promise<{ stdout: string; stderr: string; error?: Error }> {
  const program = new Command('farm').exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerEvaluate(program);
  registerLeaderboard(program);
  let stdout = '', stderr = '';
  const log = console.log, err = console.error, write = process.stdout.write;
  console.log = (...a: unknown[]) => { stdout += `${a.join(' ')}\n`; };
  console.error = (...a: unknown[]) => { stderr += `${a.join(' ')}\n`; };
  process.stdout.write = ((chunk: string) => { stdout += chunk; return true; }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'farm', ...args]);
    return { stdout, stderr };
  } catch (error) {
    return { stdout, stderr, error: error as Error };
  } finally {
    console.log = log;
    console.error = err;
    process.stdout.write = write;
  }
}

test('evaluate --annotations --json recomputes the metrics', async () => {
  const r = await farm('evaluate', '--annotations', fx('annotations.json'), '--json');
  assert.is(r.error, undefined, r.error?.message);
  const out = JSON.parse(r.stdout);
  assert.equal(out.name, 'alpaca-7b');
  assert.equal(out.reference, 'text_davinci_003');
  assert.equal(out.annotator, 'alpaca_eval_gpt4');
  assert.equal(out.metrics.win_rate, 50);
  assert.equal([out.metrics.n_wins, out.metrics.n_wins_base, out.metrics.n_draws, out.metrics.n_total], [5, 5, 2, 12]);
  assert.ok(typeof out.metrics.length_controlled_winrate === 'number');
});

test('evaluate --annotations prints an alpaca_eval-like table', async () => {
  const r = await farm('evaluate', '--annotations', fx('annotations.json'), '--no-length-control', '--name', 'mine');
  assert.is(r.error, undefined, r.error?.message);
  const [head, row] = r.stdout.split('\n');
  assert.match(head, /win_rate\s+standard_error\s+n_wins\s+n_wins_base\s+n_draws\s+n_total\s+avg_length/);
  assert.not.match(head, /length_controlled/);
  assert.match(row, /^mine\s+50\.00\s+13\.76\s+5\s+5\s+2\s+12\s+397$/);
});

test('evaluate --difficulty: a table of your own adds the difficulty term; a table missing instructions is an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  try {
    const rows = JSON.parse(readFileSync(fx('annotations.json'), 'utf8')) as Array<{ instruction: string }>;
    const table: Record<string, number> = {};
    rows.forEach((r, i) => { table[r.instruction] = (i % 3) - 1; });
    writeFileSync(join(dir, 'difficulty.json'), JSON.stringify(table));
    const r = await farm('evaluate', '--annotations', fx('annotations.json'), '--difficulty', join(dir, 'difficulty.json'), '--json');
    assert.is(r.error, undefined, r.error?.message);
    const lc = JSON.parse(r.stdout).metrics.length_control;
    // these are AlpacaEval instructions, but 12 entries cannot give the gamed rows theirs: no gamed rows, said so
    assert.equal(lc.variant, 'length_controlled_noreg');
    assert.equal(lc.difficulty_lookup, 'instruction');
    assert.equal(typeof lc.coefficients.difficulty, 'number');
    assert.match(r.stderr, /no entry for the gamed rows' instruction.*length_controlled_noreg/);
    const forced = await farm('evaluate', '--annotations', fx('annotations.json'), '--difficulty', join(dir, 'difficulty.json'), '--lc-variant', 'length_controlled_v1');
    assert.match(forced.error?.message ?? '', /length_controlled_v1 needs it/);
    delete table[rows[3].instruction];
    writeFileSync(join(dir, 'difficulty.json'), JSON.stringify(table));
    const bad = await farm('evaluate', '--annotations', fx('annotations.json'), '--difficulty', join(dir, 'difficulty.json'));
    assert.match(bad.error?.message ?? '', /difficulty table .*difficulty\.json has no entry for 1 of 12 instructions/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluate: which length-control variant was used is printed; --json warnings also go to stderr', async () => {
  let r = await farm('evaluate', '--annotations', fx('annotations.json'));
  assert.is(r.error, undefined, r.error?.message);
  assert.match(r.stdout, /\(length control: alpaca_eval's length_controlled_v1 \(AlpacaEval instructions; alpaca_eval applies it whatever the baseline, here text_davinci_003\)/);
  r = await farm('evaluate', '--annotations', fx('annotations.json'), '--json');
  const out = JSON.parse(r.stdout);
  assert.ok(out.warnings.some((w: string) => /not at alpaca_eval's position/.test(w)));
  for (const w of out.warnings) assert.ok(r.stderr.includes(`warning: ${w}`), `stderr lacks: ${w}`);
  r = await farm('evaluate', '--annotations', fx('annotations.json'), '--json', '--lc-variant', 'length_controlled_minimal');
  assert.equal(JSON.parse(r.stdout).metrics.length_control.variant, 'length_controlled_minimal');
  assert.match((await farm('evaluate', '--annotations', fx('annotations.json'), '--lc-variant', 'v2')).error?.message ?? '', /--lc-variant must be auto or one of/);
  assert.match((await farm('evaluate', '--annotations', fx('annotations.json'), '--difficulty-lookup', 'x')).error?.message ?? '', /position or instruction/);
  // a file of instructions alpaca_eval does not know: no table, the minimal variant, and the output says so
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  try {
    const rows = JSON.parse(readFileSync(fx('annotations.json'), 'utf8')) as Array<Record<string, unknown>>;
    rows.forEach((x, i) => { x.instruction = `farm task ${i}`; });
    writeFileSync(join(dir, 'farm.json'), JSON.stringify(rows));
    r = await farm('evaluate', '--annotations', join(dir, 'farm.json'));
    assert.match(r.stdout, /length control: length_controlled_minimal: length term only, no difficulty table/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('annotations with a repeated instruction: an error, or the first kept with --allow-duplicates', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  try {
    const rows = JSON.parse(readFileSync(fx('annotations.json'), 'utf8')) as unknown[];
    writeFileSync(join(dir, 'dup.json'), JSON.stringify([...rows, rows[0]]));
    let r = await farm('evaluate', '--annotations', join(dir, 'dup.json'));
    assert.match(r.error?.message ?? '', /1 rows repeat an instruction.*--allow-duplicates/);
    r = await farm('evaluate', '--annotations', join(dir, 'dup.json'), '--allow-duplicates', '--json', '--no-length-control');
    assert.is(r.error, undefined, r.error?.message);
    assert.equal(JSON.parse(r.stdout).metrics.n_total, 12);
    r = await farm('leaderboard', 'add', join(dir, 'b.csv'), join(dir, 'dup.json'), '--no-length-control');
    assert.match(r.error?.message ?? '', /1 rows repeat an instruction/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Annotation files of several synthetic models on farm-like instructions, with a difficulty per instruction. */
function farmBoard(dir: string): string[] {
  const files: string[] = [];
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const hard = Array.from({ length: 40 }, (_, k) => (k % 5) - 2);
  for (let m = 0; m < 4; m++) {
    const rows = hard.map((h, k) => {
      const len = 100 + Math.floor(200 * rand()) + 40 * m;
      const p = 1 / (1 + Math.exp(-(0.5 * (m - 1.5) + h - 0.003 * (100 - len))));
      return { instruction: `task ${k}`, output_1: 'r'.repeat(150), output_2: 'm'.repeat(len), generator_1: 'farm-reference', generator_2: `model-${m}`, preference: 1 + p };
    });
    const f = join(dir, `model-${m}.json`);
    writeFileSync(f, JSON.stringify(rows));
    files.push(f);
  }
  return files;
}

test('leaderboard difficulty estimates a table from a board\'s annotations; add --estimate-difficulty uses it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-lb-'));
  try {
    const files = farmBoard(dir);
    let r = await farm('leaderboard', 'difficulty', join(dir, 'd.json'), ...files, '--json');
    assert.is(r.error, undefined, r.error?.message);
    const summary = JSON.parse(r.stdout);
    assert.equal([summary.n_instructions, summary.models.length], [40, 4]);
    const table = JSON.parse(readFileSync(join(dir, 'd.json'), 'utf8')) as Array<{ instruction: string; difficulty: number }>;
    // the harder tasks (k % 5 small) get the lower coefficients
    const byClass = [0, 1, 2, 3, 4].map((c) => table.filter((_, k) => k % 5 === c).reduce((a, x) => a + x.difficulty, 0) / 8);
    for (let c = 1; c < 5; c++) assert.ok(byClass[c] > byClass[c - 1], byClass.join(' '));
    // the table feeds --difficulty, and add --estimate-difficulty does both in one go
    r = await farm('evaluate', '--annotations', files[0], '--difficulty', join(dir, 'd.json'), '--json');
    assert.equal(JSON.parse(r.stdout).metrics.length_control.variant, 'length_controlled_noreg');
    r = await farm('leaderboard', 'add', join(dir, 'board.csv'), ...files, '--estimate-difficulty', '--json');
    assert.is(r.error, undefined, r.error?.message);
    assert.ok(existsSync(join(dir, 'board.difficulty.json')));
    const rows = JSON.parse(r.stdout).rows as Array<{ name: string; lc_variant: string; length_controlled_winrate: number }>;
    assert.equal(rows.map((x) => x.lc_variant), ['length_controlled_noreg', 'length_controlled_noreg', 'length_controlled_noreg', 'length_controlled_noreg']);
    assert.match(readFileSync(join(dir, 'board.md'), 'utf8'), /LC: length_controlled_noreg/);
    assert.match((await farm('leaderboard', 'difficulty', join(dir, 'x.json'), files[0])).error?.message ?? '', /at least 2 models/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluate: usage errors are clear', async () => {
  assert.match((await farm('evaluate')).error?.message ?? '', /pass --model-outputs FILE .* or --annotations FILE/);
  assert.match((await farm('evaluate', '--model-outputs', fx('model.json'))).error?.message ?? '', /--annotator NAME is required/);
  assert.match(
    (await farm('evaluate', '--annotations', fx('annotations.json'), '--annotator', 'x')).error?.message ?? '',
    /--annotations recomputes metrics from a file; --annotator belong to annotating/,
  );
  assert.match(
    (await farm('evaluate', '--model-outputs', fx('annotations.json'), '--annotator', 'x')).error?.message ?? '',
    /already holds annotations.*use --annotations/,
  );
  assert.match((await farm('evaluate', '--annotations', fx('annotations.json'), '--max-instances', '0')).error?.message ?? '', /--max-instances must be an integer >= 1/);
});

test('evaluate --model-outputs: the annotator comes from the feedback registry, with a clear error when it cannot', async () => {
  const r = await farm('evaluate', '--model-outputs', fx('model.json'), '--reference-outputs', fx('reference.json'), '--annotator', 'no-such-annotator-xyz');
  assert.ok(r.error, 'an unknown annotator must fail');
  if (!existsSync(fileURLToPath(new URL('../../ts/feedback/index.ts', import.meta.url)))) {
    assert.match(r.error!.message, /annotator registry \(ts\/feedback\/index\.ts, issue #6\) is not present/);
  }
});

test('evaluate: mismatched outputs fail before any annotation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  try {
    const model = JSON.parse(readFileSync(fx('model.json'), 'utf8')) as Array<{ instruction: string }>;
    model[0].instruction += ' (edited)';
    writeFileSync(join(dir, 'model.json'), JSON.stringify(model));
    const r = await farm('evaluate', '--model-outputs', join(dir, 'model.json'), '--reference-outputs', fx('reference.json'), '--annotator', 'x');
    assert.match(r.error?.message ?? '', /1 model instructions are not in the reference .*1 of 12 reference instructions have no model output/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leaderboard add / show / compare / remove', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-lb-'));
  try {
    const csv = join(dir, 'board.csv');
    const other = JSON.parse(readFileSync(fx('annotations.json'), 'utf8')) as Array<Record<string, unknown>>;
    for (const r of other) {
      r.generator_2 = 'always-wins';
      r.preference = 2;
    }
    writeFileSync(join(dir, 'other.json'), JSON.stringify(other));
    let r = await farm('leaderboard', 'add', csv, fx('annotations.json'), join(dir, 'other.json'));
    assert.is(r.error, undefined, r.error?.message);
    assert.ok(existsSync(join(dir, 'board.md')));
    r = await farm('leaderboard', 'show', csv, '--format', 'csv');
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[1], /^always-wins,100,0,12,0,0,12,/);
    assert.match(lines[2], /^alpaca-7b,50,/);
    r = await farm('leaderboard', 'show', csv, '--json');
    assert.equal(JSON.parse(r.stdout).rows.length, 2);
    // a second board where the order flips: spearman -1
    const flipped = readFileSync(csv, 'utf8').replace(/^always-wins,100,/m, 'always-wins,1,');
    writeFileSync(join(dir, 'b.csv'), flipped);
    r = await farm('leaderboard', 'compare', csv, join(dir, 'b.csv'), '--json');
    assert.is(r.error, undefined, r.error?.message);
    assert.equal(JSON.parse(r.stdout).spearman, -1);
    r = await farm('leaderboard', 'remove', csv, 'always-wins');
    assert.is(r.error, undefined, r.error?.message);
    assert.not.match(readFileSync(csv, 'utf8'), /always-wins/);
    r = await farm('leaderboard', 'remove', csv, 'nobody');
    assert.match(r.error?.message ?? '', /not on the board: nobody/);
    r = await farm('leaderboard', 'show', csv, '--sort-by', 'nonsense');
    assert.ok(r.error);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluate --annotations --leaderboard adds a row without annotating', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-lb-'));
  try {
    const csv = join(dir, 'lb.csv');
    const r = await farm('evaluate', '--annotations', fx('annotations.json'), '--leaderboard', csv, '--json');
    assert.is(r.error, undefined, r.error?.message);
    assert.equal(JSON.parse(r.stdout).leaderboard, csv);
    assert.match(readFileSync(csv, 'utf8'), /\nalpaca-7b,50,/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluate and leaderboard build with an annotator from a registry module (FARM_ANNOTATOR_REGISTRY)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  const before = process.env.FARM_ANNOTATOR_REGISTRY;
  process.env.FARM_ANNOTATOR_REGISTRY = fx('fake-registry.ts');
  try {
    const registry = (await import(pathToFileURL(fx('fake-registry.ts')).href)) as { calls: { pairs: number } };
    let r = await farm('evaluate', '--model-outputs', fx('model.json'), '--reference-outputs', fx('reference.json'),
      '--annotator', 'longer', '--output-dir', dir, '--json');
    assert.is(r.error, undefined, r.error?.message);
    const out = JSON.parse(r.stdout);
    assert.equal(out.name, 'alpaca-7b');
    assert.equal(out.annotator, 'longer');
    assert.equal(out.alignment.n_matched, 12);
    assert.equal(out.metrics.n_total, 12);
    assert.ok(out.warnings.some((w: string) => /2 reference outputs are empty/.test(w)));
    const written = join(dir, 'alpaca-7b', 'longer', 'annotations.json');
    assert.ok(existsSync(written));
    r = await farm('evaluate', '--annotations', written, '--json');
    assert.equal(JSON.parse(r.stdout).metrics.win_rate, out.metrics.win_rate);

    r = await farm('evaluate', '--model-outputs', fx('model.json'), '--reference-outputs', fx('reference.json'), '--annotator', 'nope');
    assert.match(r.error?.message ?? '', /unknown annotator "nope"/);

    // build: the second run adds only the new model
    const csv = join(dir, 'board.csv');
    const farmModel = join(dir, 'farm-model.json');
    writeFileSync(farmModel, readFileSync(fx('eval_farm.json'), 'utf8'));
    registry.calls.pairs = 0;
    r = await farm('leaderboard', 'build', csv, fx('model.json'), '--annotator', 'longer', '--reference-outputs', fx('reference.json'));
    assert.is(r.error, undefined, r.error?.message);
    assert.equal(registry.calls.pairs, 12);
    r = await farm('leaderboard', 'build', csv, fx('model.json'), farmModel, '--annotator', 'longer', '--reference-outputs', fx('reference.json'), '--json');
    assert.is(r.error, undefined, r.error?.message);
    assert.equal(registry.calls.pairs, 24, 'alpaca-7b was not annotated again');
    const board = JSON.parse(r.stdout).rows as Array<{ name: string; annotator: string; reference: string }>;
    assert.equal(board.map((x) => x.name).sort(), ['alpaca-7b', 'gpt-3.5-turbo-0301']);
    assert.ok(board.every((x) => x.annotator === 'longer' && x.reference === 'text_davinci_003'));
    // another judge on the same board is refused
    r = await farm('leaderboard', 'build', csv, farmModel, '--force', '--annotator', 'longer', '--annotator-options', '{"name":"other"}',
      '--reference-outputs', fx('reference.json'));
    assert.is(r.error, undefined, 'force allows it');
    r = await farm('evaluate', '--model-outputs', fx('model.json'), '--reference-outputs', fx('reference.json'),
      '--annotator', 'longer', '--annotator-options', '{"name":"third"}', '--leaderboard', csv);
    assert.match(r.error?.message ?? '', /mixes annotators/);
  } finally {
    if (before === undefined) delete process.env.FARM_ANNOTATOR_REGISTRY;
    else process.env.FARM_ANNOTATOR_REGISTRY = before;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
