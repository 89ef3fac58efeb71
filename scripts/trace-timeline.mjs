#!/usr/bin/env node
// Renders a Chrome trace-event file (FARM_TRACE, `farm profile --trace`) as a standalone HTML timeline, one
// row per track, like Perfetto's view of it; with --png (and Debian's chromium installed) also a screenshot.
// For pictures in documents and offline machines; to explore a trace, open it in https://ui.perfetto.dev.
//   node scripts/trace-timeline.mjs trace.json out.html [--from MS --to MS] [--png out.png] [--width 1600]
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const [input, output] = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
if (!input || !output) {
  console.error('usage: node scripts/trace-timeline.mjs trace.json out.html [--from MS --to MS] [--png out.png] [--width 1600]');
  process.exit(2);
}
const trace = JSON.parse(readFileSync(input, 'utf8'));
const events = trace.traceEvents ?? trace;
const names = new Map(), order = new Map();
for (const e of events) {
  if (e.ph === 'M' && e.name === 'thread_name') names.set(e.tid, e.args.name);
  if (e.ph === 'M' && e.name === 'thread_sort_index') order.set(e.tid, e.args.sort_index);
}
// Spans: complete events, and async begin/end pairs (laid out in lanes so that overlapping jobs stay visible).
const spans = [];
const open = new Map();
for (const e of events) {
  if (e.ph === 'X') spans.push({ tid: e.tid, name: e.name, ts: e.ts, dur: e.dur, cat: e.cat, args: e.args });
  else if (e.ph === 'b') open.set(e.id, e);
  else if (e.ph === 'e' && open.has(e.id)) {
    const b = open.get(e.id);
    open.delete(e.id);
    spans.push({ tid: b.tid, name: b.name, ts: b.ts, dur: e.ts - b.ts, cat: 'async' });
  }
}
const t0 = Number(opt('from', 0)) * 1e3;
const t1 = opt('to') !== undefined ? Number(opt('to')) * 1e3 : Math.max(...spans.map((s) => s.ts + s.dur));
const shown = spans.filter((s) => s.ts + s.dur >= t0 && s.ts <= t1);
const width = Number(opt('width', 1600)), left = 250, plot = width - left - 20, rowH = 22;
const x = (us) => left + ((Math.max(t0, Math.min(t1, us)) - t0) / (t1 - t0)) * plot;

// Rows: each track, split into depth levels (nested spans) or lanes (overlapping async spans).
const tracks = [...new Set(shown.map((s) => s.tid))].sort((a, b) => (order.get(a) ?? a) - (order.get(b) ?? b));
const rows = [];
for (const tid of tracks) {
  const list = shown.filter((s) => s.tid === tid).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const levels = [];  // end time of the last span on each level
  for (const s of list) {
    let lv = 0;
    if (s.cat === 'async') { while (lv < levels.length && levels[lv] > s.ts) lv++; }
    else {
      // nested: the deepest level whose span contains this one
      lv = 0;
      while (lv < levels.length && levels[lv] >= s.ts + s.dur - 1e-3 && levels[lv] > s.ts) lv++;
    }
    levels[lv] = Math.max(levels[lv] ?? 0, s.ts + s.dur);
    s.level = lv;
  }
  rows.push({ tid, name: names.get(tid) ?? `track ${tid}`, depth: Math.max(1, levels.length), spans: list });
}
const palette = ['#8fb8e0', '#f7b26b', '#f08a8c', '#9fd3cf', '#94c98b', '#f1dd7a', '#c9a4c2', '#ffc4ca', '#c4a48e', '#d6d0cc', '#b6dcd8', '#e6a2bd'];
const colorOf = new Map();
const color = (name) => {
  const key = name.split(' ')[0];
  if (!colorOf.has(key)) colorOf.set(key, palette[colorOf.size % palette.length]);
  return colorOf.get(key);
};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
let y = 40;
const parts = [];
for (const r of rows) {
  parts.push(`<text x="8" y="${y + 15}" class="track">${esc(r.name)}</text>`);
  parts.push(`<line x1="0" x2="${width}" y1="${y - 2}" y2="${y - 2}" class="sep"/>`);
  for (const s of r.spans) {
    const a = x(s.ts), b = x(s.ts + s.dur), w = Math.max(0.5, b - a), yy = y + s.level * rowH;
    const label = w > 40 ? `<text x="${a + 3}" y="${yy + 14}" class="label">${esc(s.name.length * 6.2 > w ? s.name.slice(0, Math.max(1, Math.floor(w / 6.2) - 1)) + '…' : s.name)}</text>` : '';
    const tip = `${s.name} ${(s.dur / 1e3).toFixed(3)} ms${s.args?.shape ? ` ${s.args.shape}` : ''}${s.args?.['GFLOP/s'] ? ` ${Number(s.args['GFLOP/s']).toFixed(1)} GFLOP/s` : ''}`;
    parts.push(`<g><title>${esc(tip)}</title><rect x="${a}" y="${yy}" width="${w}" height="${rowH - 3}" fill="${color(s.name)}"/>${label}</g>`);
  }
  y += r.depth * rowH + 10;
}
// Time axis
const ticks = 10;
for (let i = 0; i <= ticks; i++) {
  const us = t0 + ((t1 - t0) * i) / ticks, xx = x(us);
  parts.push(`<line x1="${xx}" x2="${xx}" y1="28" y2="${y}" class="grid"/><text x="${xx + 2}" y="22" class="tick">${(us / 1e3).toFixed(1)} ms</text>`);
}
const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(input)}</title><style>
body{margin:0;background:#fff;font-family:"DejaVu Sans",sans-serif}
.track{font-size:12px;fill:#222}.label{font-size:11px;fill:#111}.tick{font-size:11px;fill:#555}
.sep{stroke:#ddd}.grid{stroke:#eee}
</style></head><body><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}">${parts.join('')}</svg></body></html>`;
writeFileSync(output, html);
console.log(`farm: ${shown.length} spans on ${rows.length} tracks -> ${output}`);
const png = opt('png');
if (png) {
  const browser = ['chromium', 'chromium-browser', 'google-chrome'].find((b) => spawnSync(b, ['--version'], { stdio: 'ignore' }).status === 0);
  if (!browser) { console.error('farm: no chromium found for --png (apt-get install chromium)'); process.exit(1); }
  const r = spawnSync(browser, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${width},${y + 10}`,
    `--screenshot=${resolve(png)}`, `file://${resolve(output)}`], { encoding: 'utf8' });
  if (r.status !== 0) { console.error(r.stderr); process.exit(1); }
  console.log(`farm: screenshot -> ${png}`);
}
