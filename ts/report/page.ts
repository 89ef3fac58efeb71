// The page: one HTML file with plotly.js, the styles, the figures (JSON) and a small bootstrap inlined. Its
// Content-Security-Policy allows nothing but inline code and data: images, so the page cannot reach the
// network even by accident (a blocked request is a console error, which the tests look for).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Figure } from './figures.ts';
import { esc } from './markup.ts';
import type { Section } from './sections.ts';

const require = createRequire(import.meta.url);
let plotlySource: string | null = null;
/** plotly.js (basic bundle: scatter, bar, pie) from node_modules; read once per process. */
export function plotlyJs(): { source: string; version: string } {
  if (plotlySource === null) plotlySource = readFileSync(require.resolve('plotly.js-basic-dist-min/plotly-basic.min.js'), 'utf8');
  const version = /plotly\.js v([\d.]+)/.exec(plotlySource.slice(0, 400))?.[1] ?? JSON.parse(readFileSync(require.resolve('plotly.js-basic-dist-min/package.json'), 'utf8')).version;
  return { source: plotlySource, version };
}

/** Text for a <script> element: "</script" and "<!--" cannot end or confuse it. */
const scriptText = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
/** JSON for an inline <script type="application/json">: no "<" at all. */
const jsonText = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'";

const CSS = `
:root { --fg:#1d1d1f; --muted:#666; --line:#e3e3e3; --bg:#fafafa; --accent:#1a66c2; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; color:var(--fg); background:#fff; }
header.top { padding:18px 28px 10px; border-bottom:1px solid var(--line); background:var(--bg); }
header.top h1 { margin:0 0 4px; font-size:21px; }
header.top .sub { color:var(--muted); }
nav { position:sticky; top:0; z-index:10; background:#fff; border-bottom:1px solid var(--line); padding:6px 28px; display:flex; flex-wrap:wrap; gap:4px 14px; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; } nav a.absent { color:#aaa; text-decoration:line-through; }
main { padding:8px 28px 40px; max-width:1280px; }
section { margin:22px 0 30px; } section > h2 { font-size:18px; border-bottom:2px solid var(--line); padding-bottom:4px; margin:0 0 12px; }
h3 { font-size:15px; margin:18px 0 8px; }
.table-wrap { overflow-x:auto; margin:8px 0 14px; }
table { border-collapse:collapse; font-size:13px; }
th, td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; white-space:nowrap; }
th { background:var(--bg); font-weight:600; white-space:normal; min-width:60px; } td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.member { padding-left:14px; color:#444; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:2px 16px; margin:6px 0 12px; } dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; }
code { font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; background:#f2f2f2; padding:0 3px; border-radius:3px; }
figure.chart { margin:14px 0 22px; } .farm-chart { width:100%; min-height:200px; }
figcaption { color:#444; font-size:12.5px; max-width:980px; margin-top:2px; }
.missing { border:1px dashed #c9a227; background:#fffbea; padding:8px 12px; margin:8px 0; border-radius:4px; font-size:13px; }
.note { color:var(--muted); }
details { margin:8px 0; } summary { cursor:pointer; color:var(--accent); }
.problems li { color:#a33; }
.sample { border:1px solid var(--line); border-radius:6px; margin:12px 0 18px; }
.sample .prompt { background:var(--bg); padding:8px 12px; border-bottom:1px solid var(--line); }
.sample .instruction { font-weight:600; }
.tag { display:inline-block; font-size:11px; background:#e9eef7; color:#234; border-radius:3px; padding:0 6px; margin-right:8px; }
pre { margin:4px 0 0; white-space:pre-wrap; word-break:break-word; font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
pre.input { color:#333; }
.outs { display:grid; grid-template-columns:repeat(auto-fill,minmax(230px,1fr)); gap:10px; padding:10px 12px; }
.out { border:1px solid var(--line); border-top:3px solid #999; border-radius:4px; padding:6px 8px; min-width:0; }
.out.ref { border-top-color:#000; background:#fcfcfc; }
.out .who { font-weight:600; font-size:12.5px; }
.badges { margin:3px 0; display:flex; flex-wrap:wrap; gap:3px; }
.badge { font-size:11px; border-radius:3px; padding:0 5px; }
.badge.win { background:#dff3e3; color:#17602a; } .badge.loss { background:#fbe3e3; color:#8a1d1d; } .badge.draw, .badge.none { background:#eee; color:#555; }
footer { color:var(--muted); font-size:12px; padding:12px 28px 30px; border-top:1px solid var(--line); }
@media print { nav { display:none; } .farm-chart { break-inside:avoid; } }
`;

/**
 * Draws every figure, then exposes `window.farmReport` (ready, charts, exportChart) for the headless export,
 * and marks <body data-charts="ready"> (or "error").
 */
const BOOT = `
(function () {
  var figs = JSON.parse(document.getElementById('farm-figures').textContent);
  var config = { displaylogo: false, responsive: true, toImageButtonOptions: { format: 'svg' } };
  var byId = {};
  figs.forEach(function (f) { byId[f.id] = f; });
  function draw(f) {
    var el = document.getElementById('chart-' + f.id);
    var layout = Object.assign({}, f.layout, { height: f.height, autosize: true });
    return Plotly.newPlot(el, f.data, layout, config);
  }
  var ready = figs.reduce(function (p, f) { return p.then(function () { return draw(f); }); }, Promise.resolve());
  window.farmReport = {
    charts: figs.map(function (f) { return f.id; }),
    ready: ready,
    exportChart: function (id, format, scale) {
      var f = byId[id];
      return Plotly.toImage(document.getElementById('chart-' + id), { format: format, width: f.width, height: f.height, scale: scale || 1 });
    }
  };
  ready.then(function () { document.body.setAttribute('data-charts', 'ready'); },
    function (e) { document.body.setAttribute('data-charts', 'error'); console.error('farm report: a chart failed to draw: ' + (e && e.message || e)); });
})();
`;

export interface PageInput {
  title: string;
  subtitle: string;
  sections: Section[];
  generated: string;
}

export function renderPage(p: PageInput): string {
  const { source, version } = plotlyJs();
  const figures: Figure[] = p.sections.flatMap((s) => s.figures);
  const nav = p.sections.map((s) => {
    return `<a href="#${s.id}"${s.absent ? ' class="absent" title="not in this run folder"' : ''}>${esc(s.title)}</a>`;
  }).join('');
  const missing = p.sections.flatMap((s) => s.missing.map((m) => `<li><a href="#${s.id}">${esc(s.title)}</a>: ${esc(m.what)}</li>`));
  const body = p.sections.map((s) => `<section id="${s.id}"><h2>${esc(s.title)}</h2>${s.html}${s.id === 'overview' && missing.length ? `<h3>Not in this run folder</h3><ul class="missing-list">${missing.join('')}</ul>` : ''}</section>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="alpacafarm-ts farm report; plotly.js ${esc(version)}">
<title>${esc(p.title)}</title>
<style>${CSS}</style>
<script>${scriptText(source)}</script>
</head><body data-charts="pending">
<header class="top"><h1>${esc(p.title)}</h1><div class="sub">${esc(p.subtitle)}</div></header>
<nav>${nav}</nav>
<main>
${body}
</main>
<footer>Written by <code>farm report</code> (alpacafarm-ts) on ${esc(p.generated)}. Self-contained: charts drawn by plotly.js ${esc(version)} (inlined), no network access. Each chart's menu saves it as SVG; <code>farm report</code> also writes every chart as SVG, PNG and Plotly JSON beside this page.</footer>
<script type="application/json" id="farm-figures">${jsonText(figures.map((f) => ({ id: f.id, data: f.data, layout: f.layout, width: f.width, height: f.height })))}</script>
<script>${scriptText(BOOT)}</script>
</body></html>
`;
}
