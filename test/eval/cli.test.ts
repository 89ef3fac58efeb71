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

test('evaluate --difficulty adds a fitted difficulty term; a table missing instructions is an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-eval-'));
  try {
    const rows = JSON.parse(readFileSync(fx('annotations.json'), 'utf8')) as Array<{ instruction: string }>;
    const table: Record<string, number> = {};
    rows.forEach((r, i) => { table[r.instruction] = (i % 3) - 1; });
    writeFileSync(join(dir, 'difficulty.json'), JSON.stringify(table));
    const r = await farm('evaluate', '--annotations', fx('annotations.json'), '--difficulty', join(dir, 'difficulty.json'), '--json');
    assert.is(r.error, undefined, r.error?.message);
    assert.equal(typeof JSON.parse(r.stdout).metrics.length_control.coefficients.difficulty, 'number');
    delete table[rows[3].instruction];
    writeFileSync(join(dir, 'difficulty.json'), JSON.stringify(table));
    const bad = await farm('evaluate', '--annotations', fx('annotations.json'), '--difficulty', join(dir, 'difficulty.json'));
    assert.match(bad.error?.message ?? '', /difficulty table has no entry for 1 instructions/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('evaluate: usage errors are clear', async () => {
  assert.match((await farm('evaluate')).error?.message ?? '', /pass --model-outputs FILE .* or --annotations FILE/);
  assert.match((await farm('evaluate', '--model-outputs', fx('model.json'))).error?.message ?? '', /--annotator NAME is required/);
  assert.match(
    (await farm('evaluate', '--annotations', fx('annotations.json'), '--annotator', 'x')).error?.message ?? '',
    /do not combine it/,
  );
  assert.match(
    (await farm('evaluate', '--model-outputs', fx('annotations.json'), '--annotator', 'x')).error?.message ?? '',
    /already holds annotations.*use --annotations/,
  );
  assert.match((await farm('evaluate', '--annotations', fx('annotations.json'), '--max-instances', '0')).error?.message ?? '', /positive integer/);
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
