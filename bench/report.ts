// `farm report` on the quick preset's run folder: the time to read the folder and write the page (no
// browser), the time of the headless-Chromium step (draw, check, every chart as SVG and PNG, full-page
// screenshot), and the sizes (HTML, chart files, screenshot). The reference for the times is the run the report
// describes (its pipeline time); for the size, the inlined plotly.js bundle (the floor of any page).
// --run-dir DIR reports that folder; otherwise runs/quick, made by `farm run --preset quick` first if absent
// (minutes). --quick uses the smoke preset instead (seconds). --reps N repeats the page build (default 5).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findChromium } from '../ts/report/browser.ts';
import { buildReport, writeReport } from '../ts/report/index.ts';
import { plotlyJs } from '../ts/report/page.ts';
import { emit, flag, median, quick, timeit } from './_lib.ts';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const dirArg = process.argv.indexOf('--run-dir');
const preset = quick ? 'smoke' : 'quick';
const runDir = dirArg >= 0 ? process.argv[dirArg + 1] : join(root, 'runs', preset);
if (!existsSync(join(runDir, 'results.json')) && dirArg < 0) {
  process.stderr.write(`bench report: no ${runDir}/results.json; running farm run --preset ${preset} first${preset === 'quick' ? ' (minutes)' : ''}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'ts/cli/main.ts'), 'run', '--preset', preset, '--output-dir', runDir, '--no-report', '--no-progress'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const results = JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8'));
const pipelineSeconds = Number(results.seconds) || NaN;
const out = mkdtempSync(join(tmpdir(), 'farm-bench-report-'));
try {
  const page = join(out, 'report.html');
  const reps = flag('reps', 5);
  const built = buildReport(runDir);
  const config = { run_dir: runDir, preset: results.preset ?? preset, stages: built.run.stages.length, charts: built.figures.length, reps };
  const buildTimes = await timeit(() => writeReport(runDir, { out: page, browser: 'never' }), reps);
  emit({ bench: 'report', figure: 'build_s', value: median(buildTimes), unit: 's', config,
    reference: Number.isFinite(pipelineSeconds) ? { name: 'the pipeline run it reports', value: pipelineSeconds, source: `${runDir}/results.json seconds` } : null });
  const html = statSync(page).size;
  emit({ bench: 'report', figure: 'html_bytes', value: html, unit: 'bytes', config,
    reference: { name: `plotly.js ${plotlyJs().version} basic bundle (inlined)`, value: Buffer.byteLength(plotlyJs().source), source: 'node_modules/plotly.js-basic-dist-min' } });
  emit({ bench: 'report', figure: 'data_bytes', value: html - Buffer.byteLength(plotlyJs().source), unit: 'bytes', config });
  const chromium = findChromium();
  if (!chromium) {
    process.stderr.write('bench report: no Chromium; the browser figures are left out\n');
  } else {
    const r = await writeReport(runDir, { out: page, browser: 'always', chromium });
    const files = r.files.filter((f) => /\.(svg|png)$/.test(f) && f !== r.screenshot);
    emit({ bench: 'report', figure: 'browser_s', value: r.browser!.seconds, unit: 's', config: { ...config, chromium: r.browser!.version, what: 'launch, draw, check, SVG+PNG of every chart, full-page screenshot' } });
    emit({ bench: 'report', figure: 'chart_files_bytes', value: files.reduce((a, f) => a + statSync(f).size, 0), unit: 'bytes', config: { ...config, files: files.length } });
    if (r.screenshot) emit({ bench: 'report', figure: 'screenshot_bytes', value: statSync(r.screenshot).size, unit: 'bytes', config });
    emit({ bench: 'report', figure: 'page_errors', value: r.browser!.consoleErrors.length + r.browser!.externalRequests.length + r.browser!.emptyCharts.length, unit: 'count', config,
      reference: { name: 'target', value: 0, source: 'issue 12: no console error, no request, every chart drawn' } });
  }
} finally { rmSync(out, { recursive: true, force: true }); }
