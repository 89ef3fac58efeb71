// `farm report`: one self-contained HTML page for a run folder of `farm run`, `farm validate` or a method
// command, and each chart as SVG, PNG and Plotly JSON beside it (drawn by the same headless Chromium).
// Reads files only; knows no engine.
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { findChromium, renderInBrowser, type BrowserResult } from './browser.ts';
import type { Figure } from './figures.ts';
import { renderPage } from './page.ts';
import { readRunFolder, type RunFolder } from './read.ts';
import { buildSections, type Section } from './sections.ts';

export { findChromium, renderInBrowser } from './browser.ts';
export { readRunFolder } from './read.ts';

export interface BuiltReport {
  html: string;
  run: RunFolder;
  sections: Section[];
  figures: Figure[];
}

function titleOf(run: RunFolder): { title: string; subtitle: string } {
  const where = basename(resolve(run.dir));
  if (run.kind === 'run' || run.kind === 'validate') {
    const t = `${run.kind === 'run' ? 'farm run' : 'farm validate'}${run.preset ? ` · ${run.preset} preset` : ''}${run.seed !== null ? ` · world seed ${run.seed}` : ''}`;
    return { title: t, subtitle: run.kind === 'run' ? `The AlpacaFarm pipeline on the farm world with simulated feedback: ${where}` : `AlpacaFarm's validation of the simulator on the farm world: ${where}` };
  }
  if (run.kind === 'method') return { title: `farm ${run.command ?? 'method'} · ${where}`, subtitle: 'A single method run: configuration, training curves and outputs' };
  return { title: `farm report · ${where}`, subtitle: 'No run files recognised in this folder' };
}

/** Reads the folder and renders the page (no browser). */
export function buildReport(dir: string, now = new Date()): BuiltReport {
  const run = readRunFolder(dir);
  const sections = buildSections(run);
  const { title, subtitle } = titleOf(run);
  const html = renderPage({ title, subtitle, sections, generated: now.toISOString().replace('T', ' ').slice(0, 19) + ' UTC' });
  return { html, run, sections, figures: sections.flatMap((s) => s.figures) };
}

export interface ReportOptions {
  /** The page (default RUN_DIR/report.html); charts go to <page name>-charts/ beside it. */
  out?: string;
  /** Chart files and screenshot: 'auto' when a Chromium is found, 'always' (error without one), 'never'. */
  browser?: 'auto' | 'always' | 'never';
  /** Also a full-page screenshot <page name>.png beside the page (default true when the browser runs). */
  screenshot?: boolean;
  chromium?: string | null;
}

export interface ReportResult {
  html: string;
  bytes: number;
  kind: RunFolder['kind'];
  sections: Array<{ id: string; title: string; absent: boolean; missing: Section['missing'] }>;
  charts: string[];
  /** Seconds to read the folder and write the page. */
  buildSeconds: number;
  chartsDir: string | null;
  /** Plotly JSON of each chart (always written), and the SVG/PNG files and screenshot when the browser ran. */
  files: string[];
  screenshot: string | null;
  browser: (Omit<BrowserResult, 'files'> & { emptyCharts: string[] }) | null;
  /** Why the browser step did not run, when it did not. */
  browserSkipped: string | null;
  problems: string[];
}

export async function writeReport(dir: string, opts: ReportOptions = {}): Promise<ReportResult> {
  const t0 = performance.now();
  const built = buildReport(dir);
  const out = opts.out ?? join(dir, 'report.html');
  const stem = basename(out, extname(out));
  const chartsDir = join(dirname(out), `${stem}-charts`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, built.html);
  rmSync(chartsDir, { recursive: true, force: true });  // no stale charts of an earlier report
  const files: string[] = [];
  if (built.figures.length) {
    mkdirSync(chartsDir, { recursive: true });
    for (const f of built.figures) {
      const file = join(chartsDir, `${f.id}.json`);
      writeFileSync(file, `${JSON.stringify({ data: f.data, layout: { ...f.layout, title: { text: f.title }, width: f.width, height: f.height } })}\n`);
      files.push(file);
    }
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  let browser: ReportResult['browser'] = null;
  let browserSkipped: string | null = null;
  let screenshot: string | null = null;
  const mode = opts.browser ?? 'auto';
  const chromium = opts.chromium ?? findChromium();
  if (mode === 'never') browserSkipped = 'not asked for';
  else if (!chromium) {
    if (mode === 'always') throw new Error('farm report: no Chromium found for the chart files and the screenshot (install Debian\'s chromium, or set FARM_CHROMIUM)');
    browserSkipped = 'no Chromium found (install Debian\'s chromium, or set FARM_CHROMIUM); the page itself is complete';
  } else {
    const shot = opts.screenshot === false ? null : join(dirname(out), `${stem}.png`);
    try {
      const r = await renderInBrowser(out, { chromium, chartsDir: built.figures.length ? chartsDir : null, screenshot: shot });
      files.push(...r.files);
      const { files: _f, ...rest } = r;
      browser = { ...rest, emptyCharts: r.charts.filter((c) => c.marks === 0).map((c) => c.id) };
      screenshot = shot;
    } catch (e) {
      // The page is written and complete; a Chromium that does not start costs only the image files.
      if (mode === 'always') throw e;
      browserSkipped = `Chromium (${chromium}) failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return {
    html: out, bytes: statSync(out).size, kind: built.run.kind,
    sections: built.sections.map((s) => ({ id: s.id, title: s.title, absent: s.absent, missing: s.missing })),
    charts: built.figures.map((f) => f.id), buildSeconds, chartsDir: built.figures.length ? chartsDir : null, files, screenshot, browser, browserSkipped,
    problems: built.run.problems,
  };
}

/** Lines for a terminal: where the page is, what is missing, what the browser found. */
export function describeReport(r: ReportResult): string[] {
  const lines = [`report: ${r.html} (${(r.bytes / 1024).toFixed(0)} KiB, ${r.charts.length} charts)`];
  const missing = r.sections.flatMap((s) => s.missing.map((m) => `${s.title}: ${m.what}`));
  if (missing.length) lines.push(`  not in this run folder: ${missing.join('; ')}`);
  if (r.browser) {
    lines.push(`  charts as SVG and PNG in ${r.chartsDir}${r.screenshot ? `; screenshot ${r.screenshot}` : ''} (Chromium ${r.browser.version}, ${r.browser.seconds.toFixed(1)} s)`);
    if (r.browser.consoleErrors.length) lines.push(`  page errors: ${r.browser.consoleErrors.join(' | ')}`);
    if (r.browser.externalRequests.length) lines.push(`  the page tried the network (refused): ${r.browser.externalRequests.join(', ')}`);
    if (r.browser.emptyCharts.length) lines.push(`  charts with nothing drawn: ${r.browser.emptyCharts.join(', ')}`);
  } else if (r.browserSkipped) lines.push(`  chart image files: skipped, ${r.browserSkipped}`);
  if (r.problems.length) lines.push(`  ${r.problems.length} problem(s) reading the folder, listed in the page`);
  return lines;
}
