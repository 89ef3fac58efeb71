// The report in a real browser: the system's Chromium (Debian's `chromium`; never a downloaded one) driven by
// playwright-core. Opens the page from disk with every network request refused and recorded, waits for the
// charts, counts each chart's drawn marks, exports each chart as SVG and PNG through plotly's own renderer
// in that page, and takes a full-page screenshot.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Where a Chromium may be: $FARM_CHROMIUM first, then the usual system paths. */
export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable', '/snap/bin/chromium'];

export function findChromium(): string | null {
  const env = process.env.FARM_CHROMIUM;
  if (env) return existsSync(env) ? env : null;
  return CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null;
}

/** Flags for a closed network: no background connections, no GPU, no first-run or sync traffic. */
export const CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--no-default-browser-check', '--mute-audio'];

export interface ChartCheck { id: string; marks: number; width: number; height: number }
export interface BrowserResult {
  chromium: string;
  version: string;
  /** console.error messages and uncaught page errors. */
  consoleErrors: string[];
  /** Requests the page tried to make other than its own file (refused). */
  externalRequests: string[];
  charts: ChartCheck[];
  /** Files written: chart SVG/PNG and the screenshot. */
  files: string[];
  seconds: number;
}

export interface BrowserOptions {
  chromium?: string | null;
  /** Write each chart as <id>.svg and <id>.png here (null: no chart files). */
  chartsDir?: string | null;
  formats?: Array<'svg' | 'png'>;
  /** PNG scale factor (2: print quality). */
  pngScale?: number;
  /** Full-page screenshot file (null: none). */
  screenshot?: string | null;
  timeoutMs?: number;
  viewport?: { width: number; height: number };
}

/** Counts the drawn marks of every chart: paths with geometry inside plotly's trace groups (points, lines, bars, error bars). */
function countMarks(): Array<{ id: string; marks: number; width: number; height: number }> {
  return Array.from(document.querySelectorAll<HTMLElement>('.farm-chart')).map((el) => {
    const marks = Array.from(el.querySelectorAll('g.trace path, g.trace text')).filter((p) => {
      if (p.tagName.toLowerCase() === 'text') return (p.textContent ?? '').trim().length > 0;
      const d = p.getAttribute('d') ?? '';
      return d.length > 2 && d !== 'M0,0Z' && !/^M[^LHVCSQTAZ]*Z?$/i.test(d);
    }).length;
    const r = el.getBoundingClientRect();
    return { id: el.dataset.chart ?? el.id, marks, width: r.width, height: r.height };
  });
}

export async function renderInBrowser(htmlFile: string, opts: BrowserOptions = {}): Promise<BrowserResult> {
  const t0 = performance.now();
  const executablePath = opts.chromium ?? findChromium();
  if (!executablePath) throw new Error('no Chromium found (install Debian\'s chromium, or set FARM_CHROMIUM to a Chromium executable)');
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: opts.timeoutMs ?? 60_000 });
  const files: string[] = [];
  try {
    const page = await browser.newPage({ viewport: opts.viewport ?? { width: 1280, height: 900 } });
    const consoleErrors: string[] = [];
    const externalRequests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
    const url = pathToFileURL(resolve(htmlFile)).href;
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u === url) return route.continue();
      externalRequests.push(u);
      return route.abort();
    });
    page.on('request', (r) => { const u = r.url(); if (u !== url && !u.startsWith('data:') && !u.startsWith('blob:') && !externalRequests.includes(u)) externalRequests.push(u); });
    await page.goto(url, { waitUntil: 'load', timeout: opts.timeoutMs ?? 60_000 });
    await page.waitForFunction(() => document.body.getAttribute('data-charts') !== 'pending', null, { timeout: opts.timeoutMs ?? 60_000 });
    const charts = await page.evaluate(countMarks);
    if (opts.chartsDir && charts.length) {
      mkdirSync(opts.chartsDir, { recursive: true });
      const jobs = charts.flatMap((c) => (opts.formats ?? ['svg', 'png']).map((format) => ({ id: c.id, format, scale: format === 'png' ? opts.pngScale ?? 2 : 1 })));
      // One round trip: plotly renders every image in the page, in order.
      const urls = await page.evaluate(async (list) => {
        const api = (window as unknown as { farmReport: { exportChart(i: string, f: string, s: number): Promise<string> } }).farmReport;
        const out: string[] = [];
        for (const j of list) out.push(await api.exportChart(j.id, j.format, j.scale));
        return out;
      }, jobs);
      jobs.forEach((j, i) => {
        const dataUrl = urls[i];
        const comma = dataUrl.indexOf(',');
        const head = dataUrl.slice(0, comma), payload = dataUrl.slice(comma + 1);
        const bytes = head.endsWith(';base64') ? Buffer.from(payload, 'base64') : Buffer.from(decodeURIComponent(payload), 'utf8');
        const file = join(opts.chartsDir!, `${j.id}.${j.format}`);
        writeFileSync(file, bytes);
        files.push(file);
      });
    }
    if (opts.screenshot) {
      await page.screenshot({ path: opts.screenshot, fullPage: true });
      files.push(opts.screenshot);
    }
    return { chromium: executablePath, version: browser.version(), consoleErrors, externalRequests, charts, files, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await browser.close();
  }
}
