import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Leaderboard, parseCsv, rowFromMetrics, winRateFromScores, type LeaderboardRow } from '../../ts/eval/index.ts';

const row = (name: string, win_rate: number, extra: Partial<LeaderboardRow> = {}): LeaderboardRow => ({
  name, win_rate, standard_error: 1, n_wins: 1, n_wins_base: 2, n_draws: 0, n_total: 3, annotator: 'j', reference: 'ref', ...extra,
});

test('CSV parser handles quotes, commas, newlines and CRLF', () => {
  assert.equal(parseCsv('a,b\r\n"x,1","say ""hi"""\n"multi\nline",2\n'), [['a', 'b'], ['x,1', 'say "hi"'], ['multi\nline', '2']]);
  assert.throws(() => parseCsv('"open'), /unterminated/);
});

test('sorted best first, CSV in alpaca_eval layout, round trip keeps every value', () => {
  const b = new Leaderboard([row('low', 10), row('high, "quoted"', 90, { length_controlled_winrate: 80 }), row('mid', 50)]);
  assert.equal(b.sorted().map((r) => r.name), ['high, "quoted"', 'mid', 'low']);
  const csv = b.toCsv();
  assert.ok(csv.startsWith(',win_rate,standard_error,'));
  const back = Leaderboard.fromCsv(csv);
  assert.equal(back.size, 3);
  assert.equal(back.get('high, "quoted"')!.length_controlled_winrate, 80);
  assert.equal(back.get('mid')!.n_total, 3);
  assert.equal(back.get('mid')!.length_controlled_winrate, undefined);
  assert.equal(back.toCsv(), csv);
  // sort by LC: rows without it go last
  assert.equal(b.sorted('length_controlled_winrate')[0].name, 'high, "quoted"');
});

test('Markdown table ranks rows and names the annotator and reference', () => {
  const b = new Leaderboard([row('a', 10.123), row('b|pipe', 20)]);
  const md = b.toMarkdown();
  const lines = md.split('\n');
  assert.match(lines[0], /^\| # \| model \| win rate \| ± s\.e\. \|/);
  assert.match(lines[2], /^\| 1 \| b\\\|pipe \| 20\.00 \| 1\.00 \|/);
  assert.match(lines[3], /^\| 2 \| a \| 10\.12 \|/);
  assert.match(md, /annotator: j; reference: ref; sorted by win_rate/);
});

test('rows from another annotator or reference are refused unless forced; same name replaces', () => {
  const b = new Leaderboard([row('a', 10)]);
  assert.throws(() => b.upsert(row('b', 20, { annotator: 'other' })), /mixes annotators: b has other, a has j/);
  assert.throws(() => b.upsert(row('b', 20, { reference: 'gpt4' })), /mixes references/);
  b.upsert(row('a', 30));
  assert.equal(b.get('a')!.win_rate, 30);
  assert.equal(b.size, 1);
  b.upsert(row('b', 20, { annotator: 'other' }), { force: true });
  assert.equal(b.size, 2);
  assert.throws(() => b.upsert(row('c', NaN)), /win_rate NaN is not a number/);
});

test('persists across runs: a new model is added without touching the old rows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-lb-'));
  try {
    const path = join(dir, 'board.csv');
    const first = Leaderboard.loadOrCreate(path);
    assert.equal(first.size, 0);
    first.upsert(rowFromMetrics('m1', winRateFromScores([1, 0, 0.5, 1], { avgLength: 12.7 }), { annotator: 'j', reference: 'ref' }));
    const files = first.save(path);
    assert.equal(files.markdown, join(dir, 'board.md'));
    const before = readFileSync(path, 'utf8');
    const second = Leaderboard.load(path);
    second.upsert(rowFromMetrics('m2', winRateFromScores([1, 1, 1, 0]), { annotator: 'j', reference: 'ref' }));
    second.save(path);
    const third = Leaderboard.load(path);
    assert.equal(third.sorted().map((r) => r.name), ['m2', 'm1']);
    assert.equal(third.get('m1'), Leaderboard.fromCsv(before).get('m1'));
    assert.equal(third.get('m1')!.avg_length, 12);
    assert.match(readFileSync(join(dir, 'board.md'), 'utf8'), /\| 1 \| m2 \| 75\.00 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad CSV files are clear errors', () => {
  assert.throws(() => Leaderboard.fromCsv(',score\na,1\n', 'x.csv'), /x\.csv: header has no win_rate column/);
  assert.throws(() => Leaderboard.fromCsv(',win_rate\na,1,2\n', 'x.csv'), /line 2 has 3 cells, header has 2/);
  assert.throws(() => Leaderboard.fromCsv(',win_rate\na,abc\n', 'x.csv'), /line 2 column win_rate is not a number: "abc"/);
  assert.throws(() => Leaderboard.fromCsv(',win_rate\na,1\na,2\n', 'x.csv'), /"a" appears twice/);
  assert.throws(() => Leaderboard.fromCsv(',win_rate\n,1\n', 'x.csv'), /no model name/);
});

test('unknown columns (alpaca_eval mode) are kept verbatim', () => {
  const b = Leaderboard.fromCsv(',win_rate,standard_error,mode,avg_length\nx,12.5,1.5,minimal,300\n');
  assert.equal(b.get('x')!.extra, { mode: 'minimal' });
  assert.match(b.toCsv(), /^,win_rate,standard_error,avg_length,mode\nx,12\.5,1\.5,300,minimal\n$/);
});

test.run();
