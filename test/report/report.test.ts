// `farm report`: the page of a smoke `farm run` and `farm validate` (written by those commands at their end)
// opened in headless Chromium (Debian's chromium via playwright-core, never a downloaded browser): no console
// error, no network request, every chart drawn, a screenshot in the run folder, the charts as SVG/PNG files;
// folders missing parts (no PPO, no panel, a lone method run, broken files) still give a page that names
// what is missing; the numbers in the page are the folder's numbers; judge statistics on hand-made pairs.
// The browser checks print a SKIP line and pass where no Chromium is installed (CI installs one).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { CHROMIUM_ARGS, findChromium } from '../../ts/report/browser.ts';
import { buildReport, writeReport } from '../../ts/report/index.ts';
import { farm } from '../methods/cli-helpers.ts';

const D = mkdtempSync(join(tmpdir(), 'farm-report-'));
const RUN = join(D, 'run'), VAL = join(D, 'validate');
const CHROMIUM = findChromium();
if (!CHROMIUM) console.log('SKIP report browser checks: no Chromium found (apt-get install chromium, or set FARM_CHROMIUM); the page itself is still tested');
let browser: Browser | null = null;
let runOut = '', valOut = '';

test.before(async () => {
  const a = farm(['run', '--preset', 'smoke', '--output-dir', RUN, '--no-progress']);
  assert.is(a.code, 0, a.err);
  runOut = a.out;
  // Its page is checked by the test's own browser below; farm run's covers the export of chart files.
  const b = farm(['validate', '--preset', 'smoke', '--output-dir', VAL, '--no-progress'], { FARM_CHROMIUM: join(D, 'no-chromium') });
  assert.is(b.code, 0, b.err);
  valOut = b.out;
  if (CHROMIUM) {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  }
});
test.after(async () => {
  await browser?.close();
  rmSync(D, { recursive: true, force: true });
});

interface Opened { errors: string[]; requests: string[]; charts: Array<{ id: string; svgs: number; marks: number }>; sectionsMissing: string[] }

/** Opens a page from disk in the test's own Chromium, independently of farm report's export code. */
async function open(file: string, screenshot?: string): Promise<Opened> {
  const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [], requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  const url = pathToFileURL(file).href;
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.body.getAttribute('data-charts') !== 'pending', null, { timeout: 60_000 });
  const charts = await page.evaluate(() => Array.from(document.querySelectorAll<HTMLElement>('.farm-chart')).map((el) => ({
    id: el.id,
    svgs: el.querySelectorAll('svg').length,
    // Drawn marks: marker, line, bar and error-bar paths with real geometry inside trace groups.
    marks: Array.from(el.querySelectorAll('svg g.trace path')).filter((p) => /[LAHVCZ]/i.test((p.getAttribute('d') ?? '').slice(1))).length,
  })));
  const sectionsMissing = await page.evaluate(() => Array.from(document.querySelectorAll('[data-missing]')).map((e) => e.getAttribute('data-missing') ?? ''));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
  await page.close();
  return { errors, requests: requests.filter((u) => u !== url && !u.startsWith('blob:') && !u.startsWith('data:')), charts, sectionsMissing };
}

const isPng = (f: string) => readFileSync(f).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
const pngWidth = (f: string) => readFileSync(f).readUInt32BE(16);

function checkPage(o: Opened, what: string) {
  assert.equal(o.errors, [], `${what}: console errors`);
  assert.equal(o.requests, [], `${what}: network requests`);
  assert.ok(o.charts.length > 0, `${what}: no chart`);
  for (const c of o.charts) assert.ok(c.svgs > 0 && c.marks > 0, `${what}: chart ${c.id} has nothing drawn (${JSON.stringify(c)})`);
}

test('farm run writes report.html at its end and prints the path; the page is self-contained', () => {
  const page = join(RUN, 'report.html');
  assert.ok(runOut.includes(`report: ${page}`), runOut.slice(-600));
  const html = readFileSync(page, 'utf8');
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'/);
  assert.not.match(html, /<(script|img|link|iframe)[^>]+(src|href)\s*=/i, 'no external script, image or stylesheet');
  assert.not.match(html, /url\(\s*['"]?(https?:)?\/\//i);
  for (const id of ['overview', 'leaderboard', 'training', 'overoptimization', 'ranking', 'judges', 'samples', 'stages']) assert.ok(html.includes(`<section id="${id}">`), id);
  const figs = JSON.parse(/<script type="application\/json" id="farm-figures">([\s\S]*?)<\/script>/.exec(html)![1]);
  for (const f of figs) assert.ok(f.data.some((t: { x?: unknown[]; y?: unknown[] }) => (t.x ?? t.y ?? []).some((v) => v !== null)), `figure ${f.id} has no data`);
});

test('the page shows the folder\'s numbers: leaderboard cells from results.json, judges and samples from the annotations', () => {
  const results = JSON.parse(readFileSync(join(RUN, 'results.json'), 'utf8'));
  const html = readFileSync(join(RUN, 'report.html'), 'utf8');
  for (const row of results.leaderboard.filter((r: { method: string }) => r.method !== 'reference')) {
    const p = row.evaluations.pool, g = row.gold;
    const cells = `<td>${row.label}</td><td class="num">${p.win_rate.toFixed(1)} ± ${p.standard_error.toFixed(1)}</td>`;
    assert.ok(html.includes(cells), `leaderboard row of ${row.method}: ${cells}`);
    assert.ok(html.includes(`${g.mean.toFixed(3)} ± ${g.standard_error.toFixed(3)}`), `gold of ${row.method}`);
  }
  // 16 eval instructions x every method judged by the pool and by the panel.
  const judged = 16 * results.leaderboard.filter((r: { method: string }) => r.method !== 'reference').length;
  assert.ok(html.includes(`<td>pool (all members)</td><td class="num">${judged}</td>`), `${judged} pool judgments`);
  assert.match(html, /class="sample"/);
});

test('the report of a smoke farm run opens in Chromium: no console error, no request, every chart drawn, screenshot in the run folder', async () => {
  if (!browser) return;
  const shot = join(RUN, 'report-test.png');
  const o = await open(join(RUN, 'report.html'), shot);
  checkPage(o, 'farm run');
  const ids = o.charts.map((c) => c.id);
  for (const id of ['leaderboard-winrate', 'leaderboard-gold', 'training-sft', 'training-ppo', 'training-dpo', 'ranking-evaluators', 'stages']) assert.ok(ids.includes(`chart-${id}`), id);
  assert.ok(isPng(shot) && pngWidth(shot) === 1200);
  // farm run's own export: the screenshot and every chart as SVG and PNG beside the page.
  assert.ok(isPng(join(RUN, 'report.png')));
  const files = readdirSync(join(RUN, 'report-charts'));
  for (const id of ids.map((x) => x.slice('chart-'.length))) {
    assert.ok(files.includes(`${id}.svg`) && files.includes(`${id}.png`) && files.includes(`${id}.json`), `chart files of ${id}`);
    const svg = readFileSync(join(RUN, 'report-charts', `${id}.svg`), 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.includes('class="trace'), `${id}.svg has traces`);
    assert.ok(isPng(join(RUN, 'report-charts', `${id}.png`)));
  }
  assert.not.ok(o.sectionsMissing.includes('leaderboard'));
});

test('farm validate: every section, the over-optimization curves and the ranking scatter with its Spearman', async () => {
  const page = join(VAL, 'report.html');
  assert.ok(valOut.includes(`report: ${page}`));
  const html = readFileSync(page, 'utf8');
  const results = JSON.parse(readFileSync(join(VAL, 'results.json'), 'utf8'));
  assert.ok(html.includes(`<dt>Spearman (ranks)</dt><dd>${results.ranking.spearman.toFixed(3)}</dd>`));
  assert.not.match(html, /data-missing=/, 'a smoke validate folder has every part');
  if (!browser) return;
  const o = await open(page);
  checkPage(o, 'farm validate');
  const ids = o.charts.map((c) => c.id.slice('chart-'.length));
  for (const id of ['leaderboard-winrate', 'leaderboard-gold', 'training-ppo', 'training-reward-model', 'overopt-ppo-step', 'overopt-ppo-kl', 'overopt-bon', 'ranking', 'judges', 'stages']) assert.ok(ids.includes(id), id);
});

test('a run folder without PPO and without the panel still gives a page, with the missing parts named', async () => {
  const T = join(D, 'trimmed');
  cpSync(RUN, T, { recursive: true });
  for (const f of ['report.html', 'report.png', 'report-test.png']) rmSync(join(T, f), { force: true });
  rmSync(join(T, 'report-charts'), { recursive: true, force: true });
  const pipeline = JSON.parse(readFileSync(join(T, 'pipeline.json'), 'utf8'));
  pipeline.stages = pipeline.stages.filter((s: { name: string }) => !s.name.includes('ppo'));
  for (const s of pipeline.stages) if (s.result && typeof s.result === 'object') delete s.result.panel;
  writeFileSync(join(T, 'pipeline.json'), JSON.stringify(pipeline));
  const results = JSON.parse(readFileSync(join(T, 'results.json'), 'utf8'));
  results.leaderboard = results.leaderboard.filter((r: { method: string }) => r.method !== 'ppo');
  for (const r of results.leaderboard) delete r.evaluations.panel;
  writeFileSync(join(T, 'results.json'), JSON.stringify(results));
  rmSync(join(T, 'stages', 'ppo'), { recursive: true });
  for (const d of readdirSync(join(T, 'stages', 'evaluate'), { recursive: true }) as string[]) if (d.endsWith('annotations_panel.json')) rmSync(join(T, 'stages', 'evaluate', d));

  const r = await writeReport(T, { browser: 'never' });
  const missing = r.sections.flatMap((s) => s.missing.map((m) => m.what));
  for (const m of ['panel (human) evaluation', 'agreement with the human panel', 'win-rate and gold against PPO step and KL', 'best-of-n against n', 'simulated vs human ranking']) assert.ok(missing.includes(m), `${m} in ${missing.join(' | ')}`);
  assert.not.ok(r.charts.includes('training-ppo'), 'no PPO curves');
  assert.ok(r.charts.includes('training-dpo') && r.charts.includes('leaderboard-winrate'));
  const html = readFileSync(r.html, 'utf8');
  assert.match(html, /<h3>Not in this run folder<\/h3>/);
  assert.not.match(html, /<td>PPO<\/td>/);
  if (!browser) return;
  const o = await open(r.html);
  checkPage(o, 'trimmed folder');
  assert.ok(o.sectionsMissing.includes('panel (human) evaluation'));
});

test('farm report on a single method run folder (PPO): configuration and training curves; no leaderboard, said so', async () => {
  const stage = readdirSync(join(RUN, 'stages', 'ppo', 'pool-train'))[0];
  const M = join(D, 'ppo-run');
  cpSync(join(RUN, 'stages', 'ppo', 'pool-train', stage, 'run'), M, { recursive: true });
  const c = farm(['report', M, '--browser', 'never', '--json']);
  assert.is(c.code, 0, c.err);
  const r = JSON.parse(c.out.trim().split('\n').pop()!);
  assert.is(r.kind, 'method');
  assert.is(r.html, join(M, 'report.html'));
  assert.equal(r.charts, ['training-ppo', 'overopt-proxy']);
  const html = readFileSync(r.html, 'utf8');
  assert.match(html, /<title>farm ppo/);
  assert.match(html, /data-missing="leaderboard"/);
  assert.match(html, /initKlCoef/);
  for (const key of ['objective/scores', 'objective/kl', 'policy/entropy_avg', 'rollout/response_length', 'policy/clipfrac_avg', 'loss/policy_avg']) assert.ok(html.includes(key), key);
  if (!browser) return;
  checkPage(await open(r.html), 'method folder');
});

test('broken files: an unreadable results.json and a torn metrics line give a page that lists the problems', () => {
  const B = join(D, 'broken');
  cpSync(RUN, B, { recursive: true });
  writeFileSync(join(B, 'results.json'), '{"leaderboard": [');
  const sft = readdirSync(join(B, 'stages', 'sft'))[0];
  const metrics = join(B, 'stages', 'sft', sft, 'run', 'metrics.jsonl');
  writeFileSync(metrics, `${readFileSync(metrics, 'utf8')}{"step": 99, "lo`);
  const built = buildReport(B);
  assert.ok(built.run.problems.some((p) => p.includes('results.json')));
  assert.ok(built.run.problems.some((p) => p.includes('1 unreadable line')));
  assert.match(built.html, /Rebuilt from the finished evaluate stages/);
  assert.ok(built.figures.some((f) => f.id === 'training-sft'));
  assert.throws(() => buildReport(join(D, 'nope')), /no such folder/);
});

test('judge statistics on hand-made annotations: agreement with the panel, P(prefer longer), P(prefer first), cost', () => {
  const F = join(D, 'judges');
  const stage = join(F, 'stages', 'evaluate', 'sft', 'k1');
  mkdirSync(stage, { recursive: true });
  const long = 'x'.repeat(60), short = 'y';
  const pair = (i: number, o1: string, o2: string) => ({ instruction: `q${i}`, input: '', output_1: o1, output_2: o2, generator_1: 'reference', generator_2: 'sft' });
  // Four pairs; the pool (judges a and b) picks the longer output three times; pairs 1 and 3 were shown swapped.
  const pool = [
    { ...pair(0, long, short), preference: 1, annotator: 'a', price_per_example: 0.002, time_per_example: 0.5 },
    { ...pair(1, short, long), preference: 2, annotator: 'a', swapped: true, price_per_example: 0.002, time_per_example: 0.5 },
    { ...pair(2, long, short), preference: 1, annotator: 'b', price_per_example: 0.002, time_per_example: 0.5 },
    { ...pair(3, long, short), preference: 2, annotator: 'b', swapped: true, price_per_example: 0.002, time_per_example: 0.5 },
  ];
  const panel = [1, 2, 2, 2].map((p, i) => ({ ...pool[i], swapped: undefined, annotator: 'panel', preference: p, price_per_example: 0.3, time_per_example: 36.8 }));
  writeFileSync(join(stage, 'annotations_pool.json'), JSON.stringify(pool));
  writeFileSync(join(stage, 'annotations_panel.json'), JSON.stringify(panel));
  writeFileSync(join(stage, 'stage.json'), JSON.stringify({ name: 'evaluate/sft', kind: 'evaluate', key: 'k1', result: { method: 'sft', feedback: null, pool: { win_rate: 25, standard_error: 25, n: 4 } } }));
  const { html, sections } = buildReport(F);
  const row = (name: string) => new RegExp(`<td>${name}</td>${'<td class="num">([^<]*)</td>'.repeat(8)}`).exec(html)!.slice(1);
  // Panel labels 1, 2, 2, 2: agreement on pairs 0, 1, 3 = 75%. The pool chose the longer output in pairs 0, 1, 2 = 0.75.
  // Shown first: pair 0 (label 1, not swapped) yes; 1 (label 2, swapped: shown first) yes; 2 yes; 3 (label 2, swapped) yes = 1.0.
  assert.equal(row('pool \\(all members\\)'), ['4', '', '75.0% (4)', '0.750', '–', '1.000', '2.00', '500.0']);
  assert.equal(row('<span class="member">a</span>').slice(0, 6), ['2', '50.0%', '100.0% (2)', '1.000', '–', '1.000']);
  // The panel saw the reference first every time: its P(first) would be P(prefers the reference), so it is left out.
  assert.equal(row('panel \\(majority of the raters; the reference\\)'), ['4', '', '–', '0.500', '–', '–', '300.00', '36800.0']);
  const missing = sections.flatMap((s) => s.missing.map((m) => m.what));
  for (const m of ['training curves', 'sample outputs']) assert.ok(missing.includes(m), m);
});

test.run();
