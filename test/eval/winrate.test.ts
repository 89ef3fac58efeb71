import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePreference, parsePreferences, winRate, winRateFromScores, sem, std, mean } from '../../ts/eval/index.ts';

const close = (a: number, b: number, tol = 1e-9, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);

test('preference values map to scores: 0 and 1.5 are draws, 1 loss, 2 win, soft in between', () => {
  assert.equal(parsePreference(0).score, 0.5);
  assert.equal(parsePreference(1).score, 0);
  assert.equal(parsePreference(2).score, 1);
  assert.equal(parsePreference(1.5).score, 0.5);
  close(parsePreference(1.25).score, 0.25);
  assert.equal(parsePreference(null).status, 'missing');
  assert.equal(parsePreference(undefined).status, 'missing');
  assert.equal(parsePreference(NaN).status, 'missing');
  assert.equal(parsePreference('2').score, 1);
  assert.ok(parsePreference('2').fromString);
  assert.equal(parsePreference('NaN').status, 'missing');
  for (const bad of ['output_2', '1 or 2', 3, -1, 0.5, 2.0001, {}, [], true]) {
    assert.equal(parsePreference(bad).status, 'invalid', `value ${JSON.stringify(bad)}`);
  }
});

test('win-rate follows the published formula (mean and ddof=1 standard error, percent)', () => {
  const prefs = [1, 2, 2, 0, 1, 1, 2, null];
  const warnings: string[] = [];
  const m = winRate(prefs, { modelLengths: [1, 2, 3, 4, 5, 6, 7, 8], warn: (w) => warnings.push(w) });
  const scores = [0, 1, 1, 0.5, 0, 0, 1];
  close(m.win_rate, (100 * 3.5) / 7);
  const sd = Math.sqrt(scores.reduce((s, v) => s + (v - 0.5) ** 2, 0) / 6);
  close(m.standard_error, (100 * sd) / Math.sqrt(7));
  assert.equal([m.n_wins, m.n_wins_base, m.n_draws, m.n_total, m.n_missing], [3, 3, 1, 7, 1]);
  assert.equal(m.discrete_win_rate, m.win_rate);
  assert.is(m.is_soft, false);
  close(m.avg_length, 4.5);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /1 of 8 preferences are missing/);
});

test('soft preferences: discrete win-rate rounds to win / draw / loss, exact 1.5 is a draw', () => {
  const m = winRate([1.9, 1.2, 1.5, 1.6, 1.0000001]);
  close(m.win_rate, (100 * (0.9 + 0.2 + 0.5 + 0.6 + 0.0000001)) / 5);
  close(m.discrete_win_rate, (100 * (1 + 0 + 0.5 + 1 + 0)) / 5);
  assert.equal([m.n_wins, m.n_wins_base, m.n_draws], [2, 2, 1]);
  assert.is(m.is_soft, true);
});

test('invalid preferences throw with the row and value, or are dropped and counted on request', () => {
  assert.throws(() => winRate([1, 2, 'abc', 1]), /1 of 4 preferences are not valid.*row 2: "abc"/);
  assert.throws(() => winRate([1, 2, 7]), /row 2: 7/);
  const warnings: string[] = [];
  const m = winRate([1, 2, 'abc', 2, 5], { invalid: 'drop', warn: (w) => warnings.push(w) });
  assert.equal(m.n_invalid, 2);
  assert.equal(m.n_total, 3);
  close(m.win_rate, 200 / 3);
  assert.ok(warnings.some((w) => /2 of 5 preferences are not valid.*dropped/.test(w)));
  const parsed = parsePreferences(['2', 1]);
  assert.equal(parsed.n_from_string, 1);
  assert.ok(parsed.warnings.some((w) => /numeric strings/.test(w)));
});

test('no usable preference is an error, not a NaN win-rate', () => {
  assert.throws(() => winRate([null, null]), /no usable preferences among 2 rows \(2 missing/);
  assert.throws(() => winRateFromScores([0.5, 1.2]), /outside \[0, 1\]/);
});

test('one example: win-rate defined, standard error NaN (ddof=1)', () => {
  const m = winRate([2]);
  assert.equal(m.win_rate, 100);
  assert.ok(Number.isNaN(m.standard_error));
});

test('stats helpers match pandas conventions', () => {
  close(mean([1, 2, 3, 4]), 2.5);
  close(std([1, 2, 3, 4]), Math.sqrt(5 / 3));
  close(std([1, 2, 3, 4], 0), Math.sqrt(5 / 4));
  close(sem([1, 2, 3, 4]), Math.sqrt(5 / 3) / 2);
  assert.ok(Number.isNaN(sem([1])));
});

test.run();
