// The report's sections, each built from a read run folder: its HTML body, its figures, and the parts it
// cannot show (named, with the reason). Order: overview, leaderboard, training curves, over-optimization,
// simulated vs human ranking, judges, sample outputs, stage timings.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { agreementScore, containsList, pairIdentity, toUnit } from '../feedback/analysis.ts';
import type { Annotation } from '../feedback/types.ts';
import { pearson, spearman } from '../eval/ranking.ts';
import {
  axis, clean, EVALUATOR_COLORS, feedbackColor, feedbackDash, feedbackLabel, feedbackShort, figure, methodColor, methodLabel, subplotGrid, type Figure,
} from './figures.ts';
import { definitions, esc, fmt, isNum, missingBox, pct, pm, raw, seconds, table, type Html } from './markup.ts';
import { readAnnotations, readJsonArray, type Gold, type Json, type MetricRow, type RunFolder, type TrainingRun, type WinRate } from './read.ts';

export interface Section {
  id: string;
  title: string;
  html: string;
  figures: Figure[];
  /** Parts this folder cannot give (the whole section, or a piece of it), with the reason. */
  missing: Array<{ what: string; reason: string }>;
  /** Nothing of the section could be shown. */
  absent: boolean;
}

const METHOD_ORDER = ['sft', 'reward-model', 'best-of-n', 'expert-iteration', 'feedme', 'reward-conditioning', 'ppo', 'quark', 'dpo', 'treebon', 'rlp-uml', 'rlp-spg'];
const byMethodOrder = (a: string, b: string) => (METHOD_ORDER.indexOf(a) + 1 || 99) - (METHOD_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b);

export function chartHtml(f: Figure): string {
  return `<figure class="chart" id="fig-${esc(f.id)}"><div class="farm-chart" id="chart-${esc(f.id)}" data-chart="${esc(f.id)}" style="height:${f.height}px"></div>`
    + `<figcaption><b>${esc(f.title)}.</b> ${esc(f.caption)}</figcaption></figure>`;
}

function section(id: string, title: string, parts: { html?: string; figures?: Figure[]; missing?: Section['missing'] }): Section {
  const missing = parts.missing ?? [];
  const boxes = missing.map((m) => missingBox(m.what, m.reason)).join('');
  return { id, title, html: boxes + (parts.html ?? ''), figures: parts.figures ?? [], missing, absent: !parts.html && !parts.figures?.length };
}

/** Does every step of a folder (files only) - a bound helper to keep the section builders short. */
class Ctx {
  private cache = new Map<string, Annotation[]>();
  constructor(readonly run: RunFolder) {}
  annotations(file: string): Annotation[] {
    let a = this.cache.get(file);
    if (!a) { a = readAnnotations(file, this.run.problems); this.cache.set(file, a); }
    return a;
  }
  /** Feedback sources in the order they appear (simulated first). */
  feedbackOrder(): string[] {
    const seen: string[] = [];
    for (const s of this.run.stages) if (s.feedback && !seen.includes(s.feedback)) seen.push(s.feedback);
    return seen.sort((a, b) => (a === 'pool-train' ? -1 : b === 'pool-train' ? 1 : a === 'panel' ? -1 : b === 'panel' ? 1 : 0));
  }
}

// ---------------------------------------------------------------------------------------------- overview

const VALIDATE_FIGURES: Array<{ key: string; label: string; unit: 'frac' | 'pts' | 'corr' | 's' | 'int'; target?: string; paper?: string }> = [
  { key: 'spearman_sim_vs_human', label: 'Spearman, simulated vs human ranking', unit: 'corr', target: '≥ 0.9', paper: '0.98' },
  { key: 'pearson_sim_vs_human', label: 'Pearson, simulated vs human win-rates', unit: 'corr' },
  { key: 'pool_panel_agreement', label: 'pool vs panel majority (leave-one-out)', unit: 'frac', paper: '65%' },
  { key: 'panel_rater_agreement', label: 'a panel rater vs the other raters', unit: 'frac', paper: '66%' },
  { key: 'rm_gold_agreement', label: 'reward model vs gold (held-out pairs)', unit: 'frac', target: '≥ 65%' },
  { key: 'rm_panel_agreement', label: 'reward model vs panel majority', unit: 'frac' },
  { key: 'sft_panel_winrate', label: 'SFT panel win-rate', unit: 'pts', paper: '44.3 (human)' },
  { key: 'ppo_panel_gain', label: 'PPO − SFT, panel win-rate points', unit: 'pts', target: '≥ +8', paper: '+10.8' },
  { key: 'bon_panel_gain', label: 'best-of-n − SFT, panel win-rate points', unit: 'pts', target: '≥ +4', paper: '+6.4' },
  { key: 'expiter_panel_gain', label: 'expert iteration − SFT', unit: 'pts', paper: '+1.4' },
  { key: 'dpo_panel_gain', label: 'DPO − SFT', unit: 'pts' },
  { key: 'ppo_gold_gain', label: 'PPO − SFT, gold quality', unit: 'corr' },
  { key: 'overopt_peak_step', label: 'over-optimization: PPO peak step (noisy pool, by panel)', unit: 'int' },
  { key: 'validate_s', label: 'wall time of farm validate', unit: 's' },
];

function versionsOf(run: RunFolder): Json | null {
  if (run.runJson?.versions) return run.runJson.versions as Json;
  for (const t of run.training) if (t.runJson?.versions) return t.runJson.versions as Json;
  return null;
}

function flatten(obj: unknown, prefix = '', out: Array<[string, string]> = []): Array<[string, string]> {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj as Json)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, typeof obj === 'number' ? String(Number(obj.toPrecision(6))) : JSON.stringify(obj)]);
  return out;
}

function overview(ctx: Ctx): Section {
  const { run } = ctx;
  const rows: Array<[string, string | number | Html | null]> = [];
  const what = run.kind === 'run' ? 'farm run: the AlpacaFarm pipeline with simulated feedback'
    : run.kind === 'validate' ? 'farm validate: every method trained with simulated and with human feedback, evaluated by both'
      : run.kind === 'method' ? `a single method run (farm ${run.command ?? '?'})` : 'unrecognised folder';
  rows.push(['folder', raw(`<code>${esc(run.dir)}</code>`)], ['what', what]);
  if (run.preset) rows.push(['preset', run.preset]);
  if (run.seed !== null) rows.push(['seed', run.seed]);
  if (run.stages.length) {
    const ran = run.stages.filter((s) => !s.cached).length;
    const total = run.stages.reduce((a, s) => a + s.seconds, 0);
    rows.push(['stages', `${run.stages.length} (${ran} ran in the last invocation, ${run.stages.length - ran} cached); ${seconds(total)} of stage time in all`]);
  }
  const v = versionsOf(run);
  if (v) {
    const eng = v.engine as Json | undefined;
    rows.push(['versions', `alpacafarm-ts ${v['alpacafarm-ts'] ?? '?'}, Node ${v.node ?? '?'}${eng ? `, engine ${eng.version ?? '?'} (gemm ${eng.gemm ?? '?'}, OpenMP ${eng.openmp ? 'on' : 'off'}, CUDA build ${eng.cuda ? 'yes' : 'no'})` : ''}${v.git_commit ? `, commit ${String(v.git_commit).slice(0, 10)}` : ''}`]);
  }
  let html = definitions(rows);
  if (run.kind === 'method' && run.runJson) {
    const r = run.runJson;
    const info: Array<[string, string | number | Html | null]> = [['status', String(r.status ?? '?')], ['started', String(r.started ?? '–')], ['updated', String(r.updated ?? '–')]];
    const warnings = Array.isArray(r.warnings) ? (r.warnings as unknown[]) : [];
    if (warnings.length) info.push(['warnings', raw(warnings.map((w) => esc(typeof w === 'string' ? w : JSON.stringify(w))).join('<br>'))]);
    if (Array.isArray(r.resumes) && r.resumes.length) info.push(['resumes', r.resumes.length]);
    html += `<h3>Run</h3>${definitions(info)}`;
    if (r.inputs && typeof r.inputs === 'object') {
      html += `<h3>Inputs</h3>${table(['input', 'path', 'sha256'], Object.entries(r.inputs as Json).map(([k, x]) => {
        const o = (x ?? {}) as Json;
        return [k, raw(`<code>${esc(o.path ?? '')}</code>`), raw(`<code>${esc(String(o.sha256 ?? '').slice(0, 16))}</code>`)];
      }))}`;
    }
    if (r.config) html += `<details><summary>Configuration (${flatten(r.config).length} values)</summary>${table(['key', 'value'], flatten(r.config).map(([k, x]) => [raw(`<code>${esc(k)}</code>`), x]))}</details>`;
    if (r.summary) html += `<details><summary>Summary</summary>${table(['key', 'value'], flatten(r.summary).map(([k, x]) => [raw(`<code>${esc(k)}</code>`), x]))}</details>`;
  }
  const figs = run.results?.figures as Json | undefined;
  if (run.kind === 'validate' && figs) {
    const val = (k: string, unit: string) => {
      const x = figs[k];
      if (!isNum(x)) return '–';
      return unit === 'frac' ? pct(x) : unit === 'pts' ? `${x >= 0 && k.includes('gain') ? '+' : ''}${x.toFixed(1)}` : unit === 's' ? seconds(x) : unit === 'int' ? String(x) : x.toFixed(3);
    };
    html += `<h3>Headline figures</h3>${table(['figure', 'this run', 'target (DESIGN.md)', 'AlpacaFarm paper'],
      VALIDATE_FIGURES.filter((f) => f.key in figs).map((f) => [raw(`${esc(f.label)} <code>${esc(f.key)}</code>`), val(f.key, f.unit), f.target ?? '', f.paper ?? '']), { numeric: [false, true, true, true] })}`;
  }
  if (run.kind === 'run' && run.results) {
    const rm = run.results.rewardModel as Json | null, ann = run.results.annotation as Json | null;
    const r2: Array<[string, string]> = [];
    if (rm) r2.push(['reward model held-out accuracy (on the pool\'s labels)', pct(rm.eval_accuracy)]);
    if (ann) r2.push(['training labels (pool, 25% flips) that agree with gold', pct(ann.label_gold_agreement)]);
    if (r2.length) html += `<h3>Feedback and reward model</h3>${definitions(r2)}`;
  }
  if (run.problems.length) html += `<details open class="problems"><summary>${run.problems.length} problem${run.problems.length === 1 ? '' : 's'} reading this folder</summary><ul>${run.problems.map((p) => `<li><code>${esc(p)}</code></li>`).join('')}</ul></details>`;
  const missing = run.kind === 'unknown' ? [{ what: 'any run files', reason: 'no pipeline.json, results.json, stages/, run.json, metrics.jsonl or model_outputs.json: not a folder written by farm run, farm validate or a method command' }] : [];
  return section('overview', 'Overview', { html, missing });
}

// ---------------------------------------------------------------------------------------------- leaderboard

interface Row {
  method: string;
  label: string;
  feedback: string | null;
  evaluations: Record<string, WinRate>;
  gold: Gold | null;
  avg_length: number;
  paper: { simulated: number | null; human: number | null };
}

function asRow(x: Json): Row {
  const paper = (x.paper ?? {}) as Json;
  return {
    method: String(x.method), label: String(x.label ?? methodLabel(String(x.method))), feedback: (x.feedback as string | null) ?? null,
    evaluations: (x.evaluations ?? {}) as Record<string, WinRate>, gold: (x.gold ?? null) as Gold | null, avg_length: isNum(x.avg_length) ? x.avg_length : NaN,
    paper: { simulated: isNum(paper.simulated) ? paper.simulated : null, human: isNum(paper.human) ? paper.human : null },
  };
}

/** Leaderboards by training feedback: from results.json, else rebuilt from the evaluate stages (no paper numbers then). */
function leaderboards(ctx: Ctx): { boards: Map<string, Row[]>; fromStages: boolean } {
  const r = ctx.run.results;
  const boards = new Map<string, Row[]>();
  const lb = r?.leaderboard;
  if (Array.isArray(lb)) boards.set('pool-train', lb.map((x) => asRow(x as Json)));
  else if (lb && typeof lb === 'object') {
    const o = lb as Json;
    if (Array.isArray(o.simulated)) boards.set('pool-train', (o.simulated as Json[]).map(asRow));
    if (Array.isArray(o.human)) boards.set('panel', (o.human as Json[]).map(asRow));
  }
  if (boards.size) return { boards, fromStages: false };
  const sources = [...new Set(ctx.run.evaluations.map((e) => e.feedback).filter((x): x is string => x !== null))];
  if (!sources.length) sources.push('pool-train');
  for (const e of ctx.run.evaluations) {
    const evals: Record<string, WinRate> = {};
    for (const [k, v] of Object.entries(e.result)) if (v && typeof v === 'object' && isNum((v as Json).win_rate)) evals[k] = v as WinRate;
    const row: Row = { method: e.method, label: methodLabel(e.method), feedback: e.feedback, evaluations: evals, gold: (e.result.gold ?? null) as Gold | null,
      avg_length: Number(e.result.avg_length), paper: { simulated: null, human: null } };
    for (const fb of e.feedback === null ? sources : [e.feedback]) {  // SFT belongs to every board
      if (!boards.has(fb)) boards.set(fb, []);
      boards.get(fb)!.push({ ...row });
    }
  }
  for (const rows of boards.values()) rows.sort((a, b) => (b.evaluations[Object.keys(b.evaluations)[0]]?.win_rate ?? 0) - (a.evaluations[Object.keys(a.evaluations)[0]]?.win_rate ?? 0));
  return { boards, fromStages: true };
}

function evaluatorNames(rows: Row[]): string[] {
  const names = new Set<string>();
  for (const r of rows) if (r.method !== 'reference') for (const k of Object.keys(r.evaluations)) names.add(k);
  return [...names].sort((a, b) => (a === 'pool' ? -1 : b === 'pool' ? 1 : a === 'panel' ? -1 : b === 'panel' ? 1 : a.localeCompare(b)));
}
const evaluatorLabel = (e: string) => (e === 'pool' ? 'pool (simulated evaluation)' : e === 'panel' ? 'panel (human evaluation)' : e);

/** Rows of a horizontal dot plot: numeric y with a small offset per series, so series of one method sit side by side. */
function rowAxis(labels: string[]): Json {
  return axis('', { tickmode: 'array', tickvals: labels.map((_, i) => i), ticktext: labels, range: [labels.length - 0.5, -0.5], zeroline: false, showgrid: false });
}
const offset = (k: number, count: number) => (count <= 1 ? 0 : (k - (count - 1) / 2) * Math.min(0.18, 0.7 / count));

function winRateChart(id: string, title: string, caption: string, methods: Row[], traces: Array<{ name: string; color: string; get: (r: Row) => WinRate | null; symbol?: string }>, papers: Array<{ name: string; get: (r: Row) => number | null; symbol: string }>): Figure {
  const labels = methods.map((r) => r.label);
  const shownPapers = papers.filter((p) => methods.some((r) => p.get(r) !== null));
  const count = traces.length + shownPapers.length;
  const data: Json[] = traces.map((t, k) => {
    const w = methods.map(t.get);
    return { type: 'scatter', mode: 'markers', name: t.name, y: labels.map((_, i) => i + offset(k, count)), x: clean(w.map((v) => v?.win_rate ?? NaN)), text: labels,
      error_x: { type: 'data', array: clean(w.map((v) => v?.standard_error ?? NaN)), visible: true, color: t.color, thickness: 1.5, width: 3 },
      marker: { color: t.color, size: 8, symbol: t.symbol ?? 'circle' },
      hovertemplate: `%{text}<br>${t.name}: %{x:.1f} ± %{error_x.array:.1f}<extra></extra>` };
  });
  shownPapers.forEach((p, j) => {
    const x = methods.map(p.get);
    data.push({ type: 'scatter', mode: 'markers', name: p.name, y: labels.map((_, i) => i + offset(traces.length + j, count)), x: x.map((v) => v ?? null), text: labels,
      marker: { color: EVALUATOR_COLORS.paper, size: 9, symbol: p.symbol, line: { width: 1.5, color: '#666' } }, hovertemplate: `%{text}<br>${p.name}: %{x:.1f}<extra></extra>` });
  });
  const height = Math.max(260, 80 + 30 * methods.length * Math.max(1, count / 3));
  const top = Math.max(50, ...methods.flatMap((r) => [...traces.map((t) => (t.get(r)?.win_rate ?? 0) + (t.get(r)?.standard_error ?? 0)), ...papers.map((p) => p.get(r) ?? 0)]).filter(isNum));
  return figure(id, title, caption, data, {
    xaxis: axis('win-rate vs the reference outputs (%)', { range: [0, Math.min(100, top * 1.06 + 1)] }), yaxis: rowAxis(labels),
    shapes: [{ type: 'line', xref: 'x', yref: 'paper', x0: 50, x1: 50, y0: 0, y1: 1, line: { color: '#999', width: 1, dash: 'dot' } },
      ...labels.slice(1).map((_, i) => ({ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: i + 0.5, y1: i + 0.5, line: { color: '#eee', width: 1 } }))],
    margin: { l: 190, r: 20, t: 20, b: 60 },
  }, { width: 820, height });
}

function goldChart(id: string, methods: Row[], series: Array<{ name: string; color: string; get: (r: Row) => Gold | null }>, reference: number | null): Figure {
  const labels = methods.map((r) => r.label);
  const data: Json[] = series.map((s, k) => {
    const g = methods.map(s.get);
    return { type: 'scatter', mode: 'markers', name: s.name, y: labels.map((_, i) => i + offset(k, series.length)), x: clean(g.map((v) => v?.mean ?? NaN)), text: labels,
      error_x: { type: 'data', array: clean(g.map((v) => v?.standard_error ?? NaN)), visible: true, color: s.color, thickness: 1.5, width: 3 },
      marker: { color: s.color, size: 8 }, hovertemplate: `%{text}<br>${s.name}: %{x:.3f} ± %{error_x.array:.3f}<extra></extra>` };
  });
  // The reference outputs' gold (near 1 on the farm) is named in the caption, not drawn: on one axis it would hide the methods' differences.
  return figure(id, 'Gold quality', `Mean gold-standard quality of each method's outputs on the eval split (the farm world's hidden grader, 0-1), ± one standard error${isNum(reference) ? `; the reference outputs score ${reference.toFixed(3)}` : ''}.`,
    data, { xaxis: axis('gold quality (0-1)'), yaxis: rowAxis(labels), margin: { l: 190, r: 20, t: 20, b: 60 }, showlegend: series.length > 1 },
    { width: 820, height: Math.max(240, 80 + 28 * methods.length) });
}

function leaderboard(ctx: Ctx): Section {
  const { boards, fromStages } = leaderboards(ctx);
  if (!boards.size) {
    const reason = ctx.run.kind === 'method'
      ? 'a single method run is not evaluated; evaluate its model_outputs.json with `farm evaluate`, or run the pipeline (`farm run`, `farm validate`)'
      : 'no results.json leaderboard and no finished evaluate stage';
    return section('leaderboard', 'Leaderboard', { missing: [{ what: 'leaderboard', reason }] });
  }
  const missing: Section['missing'] = [];
  const figures: Figure[] = [];
  let html = '';
  if (fromStages) html += '<p class="note">Rebuilt from the finished evaluate stages (results.json is absent: the pipeline did not finish); the paper\'s numbers are not in these files.</p>';
  const sim = boards.get('pool-train') ?? [...boards.values()][0];
  const human = boards.get('panel');
  const allEvaluators = evaluatorNames([...boards.values()].flat());
  if (!allEvaluators.includes('panel')) missing.push({ what: 'panel (human) evaluation', reason: 'the methods were evaluated by the pool only; the win-rates by the human panel are not in this folder' });
  const referenceGold = [...boards.values()].flat().map((r) => r.gold?.reference).find(isNum) ?? [...boards.values()].flat().find((r) => r.method === 'reference')?.gold?.mean ?? null;
  const methodsOnly = (rows: Row[]) => rows.filter((r) => r.method !== 'reference');
  const hasPaper = [...boards.values()].flat().some((r) => r.paper.simulated !== null || r.paper.human !== null);
  if (ctx.run.kind === 'validate' && human) {
    const byMethod = new Map(human.map((r) => [r.method, r]));
    const rows = methodsOnly(sim);
    html += `<p>The paper's table: methods trained with simulated feedback and evaluated by the simulated pool ("simulated"), trained with human feedback and evaluated by the human panel ("human"), the cross cell, and the hidden gold quality. Win-rates in % against the reference outputs, ± one standard error.</p>`;
    html += table(['method', 'simulated (pool fb, pool eval)', 'human (panel fb, panel eval)', 'pool fb, panel eval', 'gold, pool fb', 'gold, panel fb', 'avg length', 'paper simulated', 'paper human'],
      [...rows.map((r) => {
        const h = byMethod.get(r.method);
        return [r.label, pm(r.evaluations.pool?.win_rate, r.evaluations.pool?.standard_error), pm(h?.evaluations.panel?.win_rate, h?.evaluations.panel?.standard_error),
          pm(r.evaluations.panel?.win_rate, r.evaluations.panel?.standard_error), pm(r.gold?.mean, r.gold?.standard_error, 3), pm(h?.gold?.mean, h?.gold?.standard_error, 3),
          fmt(r.avg_length, 1), fmt(r.paper.simulated), fmt(r.paper.human)];
      }), ['Davinci003 (reference)', '50.0', '50.0', '50.0', fmt(referenceGold, 3), fmt(referenceGold, 3), '–', '50.0', '50.0']],
      { numeric: [false, true, true, true, true, true, true, true, true] });
    figures.push(winRateChart('leaderboard-winrate', 'Win-rate against the reference outputs',
      'Each method trained with simulated feedback and evaluated by the pool (simulated), and trained with human feedback and evaluated by the panel (human), ± one standard error; grey diamonds and squares are AlpacaFarm\'s published simulated and human win-rates. The dotted line is 50%.',
      rows, [
        { name: 'simulated (pool feedback, pool eval)', color: EVALUATOR_COLORS.pool, get: (r) => r.evaluations.pool ?? null },
        { name: 'human (panel feedback, panel eval)', color: EVALUATOR_COLORS.panel, get: (r) => byMethod.get(r.method)?.evaluations.panel ?? null },
        { name: 'pool feedback, panel eval', color: '#f2a0a0', get: (r) => r.evaluations.panel ?? null, symbol: 'circle-open' },
      ], [{ name: 'paper simulated', get: (r) => r.paper.simulated, symbol: 'diamond-open' }, { name: 'paper human', get: (r) => r.paper.human, symbol: 'square-open' }]));
    figures.push(goldChart('leaderboard-gold', rows, [
      { name: 'trained with simulated feedback', color: EVALUATOR_COLORS.pool, get: (r) => r.gold },
      { name: 'trained with human feedback', color: EVALUATOR_COLORS.panel, get: (r) => byMethod.get(r.method)?.gold ?? null },
    ], referenceGold));
  } else {
    for (const [fb, rows] of boards) {
      const evs = evaluatorNames(rows);
      const m = methodsOnly(rows);
      if (boards.size > 1) html += `<h3>Trained with ${esc(feedbackLabel(fb))}</h3>`;
      html += table(['method', ...evs.map(evaluatorLabel), 'gold (0-1)', 'avg length', ...(hasPaper ? ['paper simulated', 'paper human'] : [])],
        rows.map((r) => [r.label, ...evs.map((e) => (r.method === 'reference' ? '50.0' : pm(r.evaluations[e]?.win_rate, r.evaluations[e]?.standard_error))),
          r.method === 'reference' ? fmt(r.gold?.mean ?? referenceGold, 3) : pm(r.gold?.mean, r.gold?.standard_error, 3), fmt(r.avg_length, 1),
          ...(hasPaper ? [fmt(r.paper.simulated), fmt(r.paper.human)] : [])]),
        { numeric: [false, ...evs.map(() => true), true, true, true, true] });
      const sfx = boards.size > 1 ? `-${fb}` : '';
      figures.push(winRateChart(`leaderboard-winrate${sfx}`, `Win-rate against the reference outputs${boards.size > 1 ? ` (${feedbackShort(fb)} feedback)` : ''}`,
        'Win-rate of each method\'s outputs against the reference outputs on the eval split, by each evaluator, ± one standard error (draws count half); grey markers are AlpacaFarm\'s published simulated and human numbers. The dotted line is 50%.',
        m, evs.map((e) => ({ name: evaluatorLabel(e), color: EVALUATOR_COLORS[e] ?? '#555', get: (r: Row) => r.evaluations[e] ?? null })),
        [{ name: 'paper simulated', get: (r) => r.paper.simulated, symbol: 'diamond-open' }, { name: 'paper human', get: (r) => r.paper.human, symbol: 'square-open' }]));
      figures.push({ ...goldChart(`leaderboard-gold${sfx}`, m, [{ name: 'gold', color: EVALUATOR_COLORS.gold, get: (r) => r.gold }], referenceGold) });
    }
  }
  return section('leaderboard', 'Leaderboard', { html: html + figures.map(chartHtml).join(''), figures, missing });
}

// ---------------------------------------------------------------------------------------------- training

interface Quantity { id: string; title: string; keys: string[] }
/** The issue's six quantities first (loss, reward, KL, entropy, response length, clip fraction), then extras. */
const QUANTITIES: Quantity[] = [
  { id: 'loss', title: 'loss', keys: ['loss', 'loss/total', 'loss/policy_avg'] },
  { id: 'reward', title: 'reward', keys: ['objective/scores', 'rewards/margins', 'margin'] },
  { id: 'kl', title: 'KL', keys: ['objective/kl'] },
  { id: 'entropy', title: 'entropy', keys: ['policy/entropy_avg', 'objective/entropy'] },
  { id: 'length', title: 'response length', keys: ['rollout/response_length', 'bon/response_length'] },
  { id: 'clipfrac', title: 'clip fraction', keys: ['policy/clipfrac_avg'] },
  { id: 'accuracy', title: 'accuracy', keys: ['accuracy', 'rewards/accuracies'] },
  { id: 'value-loss', title: 'value loss', keys: ['loss/value_avg'] },
];
const MAX_POINTS = 1500;

function series(rows: MetricRow[], key: string): { x: number[]; y: number[] } {
  const x: number[] = [], y: number[] = [];
  rows.forEach((r, i) => {
    const v = r[key];
    if (typeof v === 'number' && Number.isFinite(v)) { x.push(isNum(r.step) ? r.step : i + 1); y.push(v); }
  });
  if (x.length <= MAX_POINTS) return { x, y };
  const k = Math.ceil(x.length / MAX_POINTS);  // thin long runs evenly, keep the last point
  const keep = (_: number, i: number) => i % k === 0 || i === x.length - 1;
  return { x: x.filter(keep), y: y.filter(keep) };
}

function runLabel(t: TrainingRun): string {
  const long = t.name.startsWith('overopt-ppo/');
  const fb = feedbackShort(t.feedback);
  return `${long ? 'long run (over-optimization)' : methodLabel(t.method)}${fb ? `, ${fb} feedback` : ''}`;
}

function training(ctx: Ctx): Section {
  const runs = ctx.run.training;
  if (!runs.length) {
    return section('training', 'Training curves', { missing: [{ what: 'training curves', reason: ctx.run.kind === 'method' ? 'this run folder has no metrics.jsonl' : 'no training stage with a metrics.jsonl (run/metrics.jsonl in each training stage)' }] });
  }
  const order = ctx.feedbackOrder();
  const methods = [...new Set(runs.map((r) => r.method))].sort(byMethodOrder);
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const m of methods) {
    const group = runs.filter((r) => r.method === m);
    const quantities = QUANTITIES.map((q) => ({ q, key: q.keys.find((k) => group.some((g) => g.metrics.some((row) => isNum(row[k])))) })).filter((x): x is { q: Quantity; key: string } => Boolean(x.key));
    if (!quantities.length) continue;
    if (quantities.length === 1) notes.push(`${methodLabel(m)} logs only its ${quantities[0].q.title}`);
    const columns = quantities.length <= 4 ? quantities.length : 3;
    const maxStep = Math.max(...group.flatMap((g) => g.metrics.map((r, i) => (isNum(r.step) ? r.step : i + 1))));
    const grid = subplotGrid(quantities.map(({ q, key }) => `${q.title} <span style="font-weight:normal;color:#666">(${key})</span>`), columns,
      quantities.map(() => ({ x: axis('step', maxStep <= 12 ? { dtick: 1 } : {}), y: axis('') })));
    const data: Json[] = [];
    group.forEach((t, ti) => {
      const long = t.name.startsWith('overopt-ppo/');
      const color = group.length === 1 ? methodColor(m) : feedbackColor(t.feedback, order);
      quantities.forEach(({ key }, qi) => {
        const s = series(t.metrics, key);
        if (!s.x.length) return;
        data.push({ type: 'scatter', mode: s.x.length < 25 ? 'lines+markers' : 'lines', name: runLabel(t), legendgroup: t.name, showlegend: qi === 0 || !data.some((d) => d.legendgroup === t.name),
          x: s.x, y: clean(s.y), xaxis: grid.ref[qi].xaxis, yaxis: grid.ref[qi].yaxis,
          line: { color, width: 1.8, dash: long ? 'dot' : feedbackDash(t.feedback) }, marker: { size: 4, color },
          hovertemplate: `${esc(runLabel(t))}<br>step %{x}: %{y:.4g}<extra>${esc(key)}</extra>` });
      });
      void ti;
    });
    const rowsN = Math.ceil(quantities.length / columns);
    figures.push(figure(`training-${m}`, `${methodLabel(m)}: training curves`,
      `Per-step metrics from metrics.jsonl (TRL's names in brackets)${group.length > 1 ? `; one line per training run (its feedback source${group.some((g) => g.name.startsWith('overopt-ppo/')) ? '; dotted: the longer PPO runs of the over-optimization sweep' : ''})` : ''}.`,
      data, { ...grid.layout, showlegend: group.length > 1, margin: { l: 56, r: 16, t: 30, b: group.length > 1 ? 70 : 40 } },
      { width: Math.max(420, 330 * columns), height: 250 * rowsN + (group.length > 1 ? 70 : 20) }));
  }
  const html = `<p>Per-step metrics of every training run in the folder, one chart per method: of loss, reward, KL, entropy, response length and clip fraction (and accuracy, value loss), what the method logs${notes.length ? esc(` (${notes.join('; ')})`) : ''}.</p>${figures.map(chartHtml).join('')}`;
  return section('training', 'Training curves', { html, figures });
}

// ---------------------------------------------------------------------------------------------- over-optimization

interface OverPoint { step?: number; n?: number; kl?: number; rm_score?: number; pool?: WinRate; panel?: WinRate; gold?: Gold }
interface OverCurve { ppo: OverPoint[]; bestOfN: OverPoint[]; peak_step_panel?: number; peak_step_gold?: number }

function overoptCurves(ctx: Ctx): Map<string, OverCurve> {
  const out = new Map<string, OverCurve>();
  const res = ctx.run.results?.overoptimization;
  if (res && typeof res === 'object') {
    for (const [fb, c] of Object.entries(res as Json)) {
      const cc = c as Json;
      out.set(fb, { ppo: Array.isArray(cc.ppo) ? (cc.ppo as OverPoint[]) : [], bestOfN: Array.isArray(cc.bestOfN) ? (cc.bestOfN as OverPoint[]) : [],
        peak_step_panel: cc.peak_step_panel as number | undefined, peak_step_gold: cc.peak_step_gold as number | undefined });
    }
    return out;
  }
  // An unfinished validate: the sweep stages' own files.
  for (const s of ctx.run.stages) {
    if (s.kind !== 'overopt-ppo' && s.kind !== 'overopt-bon') continue;
    const fb = s.feedback ?? '?';
    if (!out.has(fb)) out.set(fb, { ppo: [], bestOfN: [] });
    if (s.kind === 'overopt-ppo') {
      const pts = Array.isArray(s.result.points) ? (s.result.points as OverPoint[]) : readJsonArray<OverPoint>(join(s.dir, 'points.jsonl'), ctx.run.problems);
      out.get(fb)!.ppo = pts;
    } else out.get(fb)!.bestOfN = Array.isArray(s.result.points) ? (s.result.points as OverPoint[]) : [];
  }
  return out;
}

function overoptFigure(id: string, title: string, caption: string, curves: Map<string, OverCurve>, pick: (c: OverCurve) => OverPoint[], x: (p: OverPoint) => number, xTitle: string, xExtra: Json, order: string[]): Figure {
  const grid = subplotGrid(['reward-model score (proxy)', 'win-rate vs reference (%) <span style="font-weight:normal;color:#666">pool ●—, panel ■ - -</span>', 'gold quality (0-1)'], 3,
    [{ x: axis(xTitle, xExtra), y: axis('') }, { x: axis(xTitle, xExtra), y: axis('') }, { x: axis(xTitle, xExtra), y: axis('') }]);
  const data: Json[] = [];
  for (const [fb, c] of curves) {
    const pts = pick(c).filter((p) => isNum(x(p)));
    if (!pts.length) continue;
    const color = feedbackColor(fb, order);
    const name = feedbackShort(fb) === fb ? `${fb} (noise-free judge)` : feedbackLabel(fb);
    const xs = pts.map(x);
    const mode = 'lines+markers';
    data.push({ type: 'scatter', mode, name, legendgroup: fb, showlegend: true, x: xs, y: clean(pts.map((p) => p.rm_score ?? NaN)), xaxis: grid.ref[0].xaxis, yaxis: grid.ref[0].yaxis,
      line: { color, width: 2 }, marker: { color, size: 6 }, hovertemplate: `${esc(name)}<br>${esc(xTitle)} %{x:.3g}: RM %{y:.4g}<extra></extra>` });
    for (const ev of ['pool', 'panel'] as const) {
      if (!pts.some((p) => p[ev])) continue;
      data.push({ type: 'scatter', mode, name: `${name}: ${ev} win-rate`, legendgroup: fb, showlegend: false, x: xs, y: clean(pts.map((p) => p[ev]?.win_rate ?? NaN)),
        error_y: { type: 'data', array: clean(pts.map((p) => p[ev]?.standard_error ?? NaN)), visible: true, color, thickness: 1, width: 3 },
        xaxis: grid.ref[1].xaxis, yaxis: grid.ref[1].yaxis, line: { color, width: 2, dash: ev === 'panel' ? 'dash' : 'solid' }, marker: { color, size: 6, symbol: ev === 'panel' ? 'square' : 'circle' },
        hovertemplate: `${esc(name)}, ${ev}<br>${esc(xTitle)} %{x:.3g}: %{y:.1f} ± %{error_y.array:.1f}<extra></extra>` });
    }
    data.push({ type: 'scatter', mode, name: `${name}: gold`, legendgroup: fb, showlegend: false, x: xs, y: clean(pts.map((p) => p.gold?.mean ?? NaN)),
      error_y: { type: 'data', array: clean(pts.map((p) => p.gold?.standard_error ?? NaN)), visible: true, color, thickness: 1, width: 3 },
      xaxis: grid.ref[2].xaxis, yaxis: grid.ref[2].yaxis, line: { color, width: 2 }, marker: { color, size: 6, symbol: 'diamond' },
      hovertemplate: `${esc(name)}, gold<br>${esc(xTitle)} %{x:.3g}: %{y:.3f} ± %{error_y.array:.3f}<extra></extra>` });
  }
  return figure(id, title, caption, data, { ...grid.layout, margin: { l: 56, r: 16, t: 30, b: 80 }, legend: { orientation: 'h', y: -0.25, x: 0, font: { size: 11 }, title: { text: 'reward model trained on: ' } } }, { width: 1050, height: 380 });
}

function overoptimization(ctx: Ctx): Section {
  const curves = overoptCurves(ctx);
  const order = ctx.feedbackOrder();
  const hasPpo = [...curves.values()].some((c) => c.ppo.length > 0);
  const hasBon = [...curves.values()].some((c) => c.bestOfN.length > 0);
  const missing: Section['missing'] = [];
  const why = ctx.run.kind === 'validate' ? 'the sweep did not run (PPO or best-of-n left out with --methods/--only, or the run was interrupted before it)'
    : 'the over-optimization sweeps are stages of `farm validate` (overopt-ppo, overopt-bon), which evaluate checkpoints by the pool, the panel and gold';
  if (!hasPpo) missing.push({ what: 'win-rate and gold against PPO step and KL', reason: why });
  if (!hasBon) missing.push({ what: 'best-of-n against n', reason: why });
  const figures: Figure[] = [];
  if (hasPpo) {
    figures.push(overoptFigure('overopt-ppo-step', 'Over-optimization: PPO step', 'A longer PPO run per feedback source, evaluated at checkpoints on the first eval instructions: the proxy (reward-model score) against what it stands for (win-rates by the pool and the panel, gold quality), ± one standard error. AlpacaFarm: the proxy keeps rising while human win-rate peaks and falls.',
      curves, (c) => c.ppo, (p) => p.step ?? NaN, 'PPO step', {}, order));
    figures.push(overoptFigure('overopt-ppo-kl', 'Over-optimization: KL from the SFT policy', 'The same checkpoints against the KL to the initial (SFT) policy, in nats per sequence, the x-axis of Gao et al. and AlpacaFarm\'s Figure 4.',
      curves, (c) => c.ppo, (p) => p.kl ?? NaN, 'KL (nats)', {}, order));
  }
  if (hasBon) {
    figures.push(overoptFigure('overopt-bon', 'Over-optimization: best-of-n', 'Best-of-n for each n from one sampling pass (best-of-n\'s samples are the first n of best-of-N): the reward-model score of the choices against win-rates and gold.',
      curves, (c) => c.bestOfN, (p) => p.n ?? NaN, 'n (samples per instruction)', { type: 'log', dtick: Math.log10(2) }, order));
  }
  if (!hasPpo) {
    // Without the sweep, the training logs still give the proxy side of the picture: reward-model score against KL.
    const runs = ctx.run.training.filter((t) => (t.method === 'ppo' || t.method === 'quark') && t.metrics.some((r) => isNum(r['objective/kl']) && isNum(r['objective/scores'])));
    if (runs.length) {
      const data: Json[] = runs.map((t) => {
        const rows = t.metrics.filter((r) => isNum(r['objective/kl']) && isNum(r['objective/scores']));
        return { type: 'scatter', mode: 'lines+markers', name: runLabel(t), x: rows.map((r) => r['objective/kl']), y: rows.map((r) => r['objective/scores']),
          text: rows.map((r, i) => String(isNum(r.step) ? r.step : i + 1)), line: { color: methodColor(t.method), width: 1.5, dash: feedbackDash(t.feedback) }, marker: { size: 4, color: methodColor(t.method) },
          hovertemplate: `${esc(runLabel(t))}<br>step %{text}: KL %{x:.3g}, reward %{y:.4g}<extra></extra>` };
      });
      figures.push(figure('overopt-proxy', 'Reward-model score against KL during training', 'The proxy side of over-optimization from the training logs (objective/scores against objective/kl, per step, per sequence): how much reward each nat of divergence from the SFT policy bought. Whether the true quality followed needs the evaluated sweep of `farm validate`.',
        data, { xaxis: axis('KL from the SFT policy (objective/kl, nats)'), yaxis: axis('reward-model score (objective/scores)'), showlegend: true }, { width: 720, height: 420 }));
    }
  }
  let html = '';
  const peaks = [...curves].filter(([, c]) => c.ppo.length).map(([fb, c]) => [feedbackShort(fb) === fb ? `${fb} (noise-free judge)` : feedbackLabel(fb), String(c.peak_step_panel ?? '–'), String(c.peak_step_gold ?? '–'), String(c.ppo.length)] as Array<string>);
  if (peaks.length && peaks.some((p) => p[1] !== '–')) html += table(['reward model trained on', 'peak step by panel win-rate', 'peak step by gold', 'checkpoints'], peaks, { numeric: [false, true, true, true] });
  return section('overoptimization', 'Over-optimization', { html: html + figures.map(chartHtml).join(''), figures, missing });
}

// ---------------------------------------------------------------------------------------------- ranking

function rankingFigure(id: string, title: string, caption: string, pts: Array<{ label: string; method: string; x: number; y: number; ex?: number; ey?: number }>, xTitle: string, yTitle: string, paper: Array<{ label: string; x: number; y: number }> | null): Figure {
  const cols = paper && paper.length >= 2 ? 2 : 1;
  const titles = [`this run: Spearman ${fmt(spearman(pts.map((p) => p.x), pts.map((p) => p.y)), 2)}, Pearson ${fmt(pearson(pts.map((p) => p.x), pts.map((p) => p.y)), 2)}`];
  if (cols === 2) titles.push(`AlpacaFarm paper: Spearman ${fmt(spearman(paper!.map((p) => p.x), paper!.map((p) => p.y)), 2)} over these methods`);
  const grid = subplotGrid(titles, cols, [{ x: axis(xTitle), y: axis(yTitle) }, { x: axis('paper simulated win-rate (%)'), y: axis('paper human win-rate (%)') }]);
  const lo = Math.min(...pts.flatMap((p) => [p.x - (p.ex ?? 0), p.y - (p.ey ?? 0)])), hi = Math.max(...pts.flatMap((p) => [p.x + (p.ex ?? 0), p.y + (p.ey ?? 0)]));
  const pad = Math.max(2, (hi - lo) * 0.08);
  const data: Json[] = [
    { type: 'scatter', mode: 'lines', x: [lo - pad, hi + pad], y: [lo - pad, hi + pad], xaxis: grid.ref[0].xaxis, yaxis: grid.ref[0].yaxis, line: { color: '#bbb', dash: 'dot', width: 1 }, hoverinfo: 'skip', showlegend: false },
    { type: 'scatter', mode: 'markers+text', x: pts.map((p) => p.x), y: pts.map((p) => p.y), text: pts.map((p) => p.label), textposition: 'top center', textfont: { size: 11 },
      error_x: { type: 'data', array: pts.map((p) => p.ex ?? 0), visible: pts.some((p) => p.ex !== undefined), color: '#aaa', thickness: 1, width: 3 },
      error_y: { type: 'data', array: pts.map((p) => p.ey ?? 0), visible: pts.some((p) => p.ey !== undefined), color: '#aaa', thickness: 1, width: 3 },
      marker: { size: 10, color: pts.map((p) => methodColor(p.method)) }, xaxis: grid.ref[0].xaxis, yaxis: grid.ref[0].yaxis, showlegend: false,
      hovertemplate: `%{text}<br>${esc(xTitle)}: %{x:.1f}<br>${esc(yTitle)}: %{y:.1f}<extra></extra>` },
  ];
  if (cols === 2) {
    const plo = Math.min(...paper!.flatMap((p) => [p.x, p.y])) - 2, phi = Math.max(...paper!.flatMap((p) => [p.x, p.y])) + 2;
    data.push({ type: 'scatter', mode: 'lines', x: [plo, phi], y: [plo, phi], xaxis: grid.ref[1].xaxis, yaxis: grid.ref[1].yaxis, line: { color: '#bbb', dash: 'dot', width: 1 }, hoverinfo: 'skip', showlegend: false });
    data.push({ type: 'scatter', mode: 'markers+text', x: paper!.map((p) => p.x), y: paper!.map((p) => p.y), text: paper!.map((p) => p.label), textposition: 'top center', textfont: { size: 11, color: '#666' },
      marker: { size: 9, color: '#999', symbol: 'diamond' }, xaxis: grid.ref[1].xaxis, yaxis: grid.ref[1].yaxis, showlegend: false,
      hovertemplate: '%{text}<br>paper simulated %{x:.1f}, human %{y:.1f}<extra></extra>' });
  }
  return figure(id, title, caption, data, { ...grid.layout, showlegend: false, margin: { l: 60, r: 20, t: 30, b: 50 } }, { width: cols === 2 ? 1000 : 560, height: 460 });
}

function ranking(ctx: Ctx): Section {
  const { boards } = leaderboards(ctx);
  const r = ctx.run.results?.ranking as Json | undefined;
  const sim = boards.get('pool-train') ?? [];
  const human = boards.get('panel') ?? [];
  const simBy = new Map(sim.map((x) => [x.method, x])), humanBy = new Map(human.map((x) => [x.method, x]));
  if (r && Array.isArray(r.methods) && (r.methods as unknown[]).length >= 2) {
    const methods = r.methods as string[], sx = r.simulated as number[], hy = r.human as number[];
    const pts = methods.map((m, i) => ({ method: m, label: simBy.get(m)?.label ?? methodLabel(m), x: sx[i], y: hy[i],
      ex: simBy.get(m)?.evaluations.pool?.standard_error, ey: humanBy.get(m)?.evaluations.panel?.standard_error })).filter((p) => isNum(p.x) && isNum(p.y));
    const paper = methods.map((m) => simBy.get(m)).filter((x): x is Row => Boolean(x && x.paper.simulated !== null && x.paper.human !== null)).map((x) => ({ label: x.label, x: x.paper.simulated!, y: x.paper.human! }));
    const fig = rankingFigure('ranking', 'Simulated vs human ranking', 'Each method\'s win-rate when trained and evaluated with simulated feedback (x) against trained and evaluated with human feedback (y), ± one standard error; the dotted line is y = x. AlpacaFarm\'s validation: a simulator is useful when the two rankings agree (paper: Spearman 0.98).',
      pts, 'simulated win-rate (%)', 'human win-rate (%)', paper.length >= 2 ? paper : null);
    const html = definitions([['Spearman (ranks)', fmt(r.spearman, 3)], ['Pearson (win-rates)', fmt(r.pearson, 3)], ['methods', methods.length], ['paper', 'Spearman 0.98 over its methods']]) + chartHtml(fig);
    return section('ranking', 'Simulated vs human ranking', { html, figures: [fig] });
  }
  // A farm run folder: the same models judged by the pool and the panel (evaluation agreement, not the full validation).
  const rows = sim.filter((x) => x.method !== 'reference' && x.evaluations.pool && x.evaluations.panel);
  const reason = ctx.run.kind === 'validate' ? 'results.json has no ranking (the validation did not finish)' : ctx.run.kind === 'method'
    ? 'a single method run has no leaderboard to rank' : 'needs the methods trained with human feedback too: `farm validate`';
  if (rows.length >= 3) {
    const pts = rows.map((x) => ({ method: x.method, label: x.label, x: x.evaluations.pool.win_rate, y: x.evaluations.panel.win_rate, ex: x.evaluations.pool.standard_error, ey: x.evaluations.panel.standard_error }));
    const fig = rankingFigure('ranking-evaluators', 'Pool vs panel evaluation of the same models', 'The methods of this run (trained with simulated feedback) evaluated by the simulated pool (x) and by the human panel (y), ± one standard error; the dotted line is y = x. This is half of AlpacaFarm\'s validation; `farm validate` also trains every method with human feedback.',
      pts, 'pool win-rate (%)', 'panel win-rate (%)', null);
    return section('ranking', 'Simulated vs human ranking', { html: chartHtml(fig), figures: [fig], missing: [{ what: 'ranking of methods trained with simulated vs human feedback', reason }] });
  }
  return section('ranking', 'Simulated vs human ranking', { missing: [{ what: 'simulated vs human ranking', reason: ctx.run.kind === 'run' ? 'needs the panel\'s evaluation of at least three methods' : reason }] });
}

// ---------------------------------------------------------------------------------------------- judges

interface JudgeRow { judge: string; pairs: number; labelled: number; agreement: number | null; agreedOn: number; pLonger: number | null; pLists: number | null; pFirst: number | null; price: number; secs: number; share: number | null }

/**
 * alpaca_eval's evaluator table on this folder's evaluation pairs (method output vs reference): agreement with
 * the panel majority (absolute rule, draws half), P(prefer longer) where lengths differ by more than 30
 * characters, P(prefer lists), P(prefer the output shown first) and price and time per 1000 pairs.
 */
function judgeRow(judge: string, rows: Annotation[], panel: Map<string, number> | null, total: number): JudgeRow {
  let agree = 0, agreeN = 0, longer = 0, longerN = 0, lists = 0, listsN = 0, first = 0, firstN = 0, price = 0, secs = 0, labelled = 0;
  // Position is measurable only where the shown order varied (the pool swaps half of the pairs); an annotator that
  // always saw the reference first confounds P(first) with P(prefers the reference).
  const positionVaries = rows.some((a) => a.swapped === true) || new Set(rows.map((a) => (a as unknown as Json).generator_1)).size > 1;
  for (const a of rows) {
    price += a.price_per_example ?? 0; secs += a.time_per_example ?? 0;
    const u = toUnit(a.preference ?? undefined);
    if (u === null) continue;
    labelled++;
    if (panel) {
      const t = panel.get(pairIdentity(a));
      if (t !== undefined) { agree += agreementScore([u], [t]); agreeN++; }
    }
    if (positionVaries) { firstN++; first += a.swapped ? u : 1 - u; }
    if (u === 0.5) continue;
    const best = u < 0.5 ? a.output_1 : a.output_2, worse = u < 0.5 ? a.output_2 : a.output_1;
    if (Math.abs(best.length - worse.length) > 30) { longerN++; if (best.length > worse.length) longer++; }
    const lb = containsList(best), lw = containsList(worse);
    if (lb !== lw) { listsN++; if (lb) lists++; }
  }
  const n = rows.length || 1;
  return { judge, pairs: rows.length, labelled, agreement: agreeN ? agree / agreeN : null, agreedOn: agreeN, pLonger: longerN ? longer / longerN : null, pLists: listsN ? lists / listsN : null,
    pFirst: firstN ? first / firstN : null, price: (1000 * price) / n, secs: (1000 * secs) / n, share: total ? rows.length / total : null };
}

function judges(ctx: Ctx): Section {
  const byEvaluator = new Map<string, Annotation[]>();
  for (const e of ctx.run.evaluations) {
    for (const [ev, file] of Object.entries(e.annotationFiles)) {
      if (!byEvaluator.has(ev)) byEvaluator.set(ev, []);
      byEvaluator.get(ev)!.push(...ctx.annotations(file));
    }
  }
  const missing: Section['missing'] = [];
  let html = '';
  const figures: Figure[] = [];
  if (!byEvaluator.size) {
    missing.push({ what: 'judge analysis', reason: ctx.run.kind === 'method' ? 'a single method run has no annotations' : 'no evaluate stage with annotation files (annotations_<evaluator>.json)' });
  } else {
    const panelRows = byEvaluator.get('panel');
    const panel = panelRows ? new Map(panelRows.map((a) => [pairIdentity(a), toUnit(a.preference ?? undefined)]).filter((x): x is [string, number] => x[1] !== null)) : null;
    if (!panel) missing.push({ what: 'agreement with the human panel', reason: 'no panel annotations (annotations_panel.json) in the evaluate stages' });
    const rows: JudgeRow[] = [];
    for (const [ev, anns] of [...byEvaluator].sort(([a], [b]) => (a === 'panel' ? 1 : b === 'panel' ? -1 : a.localeCompare(b)))) {
      rows.push(judgeRow(ev === 'panel' ? 'panel (majority of the raters; the reference)' : `${ev} (all members)`, anns, ev === 'panel' ? null : panel, anns.length));
      const members = [...new Set(anns.map((a) => a.annotator))].filter((m) => m && m !== ev);
      if (members.length > 1) for (const m of members.sort()) rows.push(judgeRow(`  · ${m}`, anns.filter((a) => a.annotator === m), panel, anns.length));
    }
    html += `<p>Every judgement of the evaluation pairs in this folder (each method's output against the reference output${ctx.run.kind === 'validate' ? ', methods trained with both feedback sources' : ''}), in the manner of alpaca_eval's evaluator table. Agreement: with the panel's majority label on the same pair (draws count half). P(prefer longer): among pairs whose lengths differ by more than 30 characters. P(prefer first): the output shown first, measurable where the shown order varied (the pool shows half of the pairs swapped).</p>`;
    html += table(['judge', 'pairs', 'share of pairs', 'agreement with panel', 'P(prefer longer)', 'P(prefer lists)', 'P(prefer first)', '$ / 1000 pairs', 's / 1000 pairs'],
      rows.map((r) => [raw(r.judge.startsWith('  · ') ? `<span class="member">${esc(r.judge.slice(4))}</span>` : esc(r.judge)), r.pairs, r.judge.startsWith('  · ') ? pct(r.share) : '',
        r.agreement === null ? '–' : `${pct(r.agreement)} (${r.agreedOn})`, fmt(r.pLonger, 3), fmt(r.pLists, 3), fmt(r.pFirst, 3), fmt(r.price, 2), fmt(r.secs, 1)]),
      { numeric: [false, true, true, true, true, true, true, true, true] });
    const judged = rows.filter((r) => r.agreement !== null && r.judge.startsWith('  · '));
    if (judged.length >= 2) {
      const fig = figure('judges', 'Judges: agreement and length bias', 'Each simulated judge of the pool: agreement with the panel majority on this folder\'s evaluation pairs (x) against P(prefer longer) (y); 0.5 is no length preference. Marker size: share of the pairs routed to the judge.',
        [{ type: 'scatter', mode: 'markers+text', x: judged.map((r) => 100 * r.agreement!), y: clean(judged.map((r) => r.pLonger ?? NaN)), text: judged.map((r) => r.judge.slice(4)), textposition: 'top center', textfont: { size: 10 },
          marker: { size: judged.map((r) => 8 + 30 * (r.share ?? 0)), color: EVALUATOR_COLORS.pool, opacity: 0.75 }, hovertemplate: '%{text}<br>agreement %{x:.1f}%<br>P(prefer longer) %{y:.3f}<extra></extra>' }],
        { xaxis: axis('agreement with the panel majority (%)'), yaxis: axis('P(prefer longer)'), showlegend: false,
          shapes: [{ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: 0.5, y1: 0.5, line: { color: '#bbb', dash: 'dot', width: 1 } }] }, { width: 640, height: 420 });
      figures.push(fig);
    }
  }
  // Pipeline-level agreement figures.
  const ag = ctx.run.results?.agreement as Json | undefined ?? ctx.run.stages.find((s) => s.kind === 'agreement')?.result;
  if (ag && Object.keys(ag).length) {
    html += `<h3>Annotators against the panel majority (SFT pairs)</h3>${table(['measure', 'this run', 'AlpacaFarm paper'], [
      ['the pool vs the panel majority (leave-one-out subsets)', pct(ag.pool_panel_agreement), '65%'],
      ['a panel rater vs the majority of the other raters', pct(ag.panel_rater_agreement), '66% (humans)'],
      ['the pool vs the full panel majority', pct(ag.pool_panel_agreement_full), '–'], ['pairs', String(ag.pairs ?? '–'), '–']], { numeric: [false, true, true] })}`;
  }
  const rms = ctx.run.results?.rewardModels as Json | undefined;
  const annotate = ctx.run.stages.filter((s) => s.kind === 'annotate');
  if (rms && Object.keys(rms).length) {
    html += `<h3>Reward models on held-out within-prompt pairs</h3>${table(['trained on', 'agrees with gold', 'agrees with the panel', 'held-out accuracy (own labels)', 'training labels that agree with gold'],
      Object.entries(rms).map(([fb, x]) => {
        const o = x as Json;
        const a = annotate.find((s) => s.feedback === fb);
        return [feedbackLabel(fb), `${pct(o.gold_agreement)} (${o.pairs_gold ?? '?'})`, `${pct(o.panel_agreement)} (${o.pairs_panel ?? '?'})`, pct(o.eval_accuracy), pct(a?.result.label_gold_agreement)];
      }), { numeric: [false, true, true, true, true] })}`;
  } else if (annotate.length) {
    html += `<h3>Training labels</h3>${table(['feedback', 'pairs labelled', 'agree with gold'], annotate.map((s) => [feedbackLabel(s.feedback), String(s.result.labelled ?? '–'), pct(s.result.label_gold_agreement)]), { numeric: [false, true, true] })}`;
  }
  return section('judges', 'Judges', { html: html + figures.map(chartHtml).join(''), figures, missing });
}

// ---------------------------------------------------------------------------------------------- samples

const SAMPLE_COUNT = 6;
interface OutputRow { instruction: string; input?: string; output: string; dataset?: string; generator?: string }
const recordKey = (instruction: string, input: string | undefined) => `${instruction}\u0000${input ?? ''}`;

function verdict(pref: number | null | undefined): { text: string; cls: string } {
  const u = toUnit(pref ?? undefined);
  if (u === null) return { text: 'no label', cls: 'none' };
  if (u === 0.5) return { text: 'draw', cls: 'draw' };
  return u > 0.5 ? { text: 'beats the reference', cls: 'win' } : { text: 'loses to the reference', cls: 'loss' };
}

function samples(ctx: Ctx): Section {
  const order = ctx.feedbackOrder();
  const mainFb = order[0] ?? null;
  // The outputs to show: SFT and every method trained on the main feedback source (simulated in farm run/validate).
  const sources = ctx.run.outputs.filter((o) => o.feedback === null || o.feedback === mainFb).sort((a, b) => byMethodOrder(a.method, b.method));
  if (!sources.length) {
    return section('samples', 'Sample outputs', { missing: [{ what: 'sample outputs', reason: ctx.run.kind === 'method' ? 'this run wrote no model_outputs.json (training commands write one with --eval-data)' : 'no outputs stage with model_outputs.json' }] });
  }
  const outputs = sources.map((s) => ({ ...s, rows: new Map(readJsonArray<OutputRow>(s.file, ctx.run.problems).filter((r) => r && typeof r.instruction === 'string').map((r) => [recordKey(r.instruction, r.input), r])) }));
  // Judgements of each (method, feedback) evaluation, by evaluator, keyed by instruction + the method's output.
  const judgements = new Map<string, Map<string, Annotation>>();
  const references = new Map<string, string>();
  for (const e of ctx.run.evaluations) {
    if (!(e.feedback === null || e.feedback === mainFb)) continue;
    for (const [ev, file] of Object.entries(e.annotationFiles)) {
      const m = new Map<string, Annotation>();
      for (const a of ctx.annotations(file)) {
        m.set(recordKey(a.instruction, a.input), a);
        if ((a as unknown as Json).generator_1 === 'reference') references.set(recordKey(a.instruction, a.input), a.output_1);
      }
      judgements.set(`${e.method}\u0000${ev}`, m);
    }
  }
  // One instruction per task family (dataset) in eval order, then fill up.
  const first = outputs[0].rows;
  const chosen: OutputRow[] = [];
  const families = new Set<string>();
  for (const r of first.values()) if (chosen.length < SAMPLE_COUNT && !families.has(r.dataset ?? '')) { families.add(r.dataset ?? ''); chosen.push(r); }
  for (const r of first.values()) if (chosen.length < SAMPLE_COUNT && !chosen.includes(r)) chosen.push(r);
  const evaluators = [...new Set([...judgements.keys()].map((k) => k.split('\u0000')[1]))].sort();
  const missing: Section['missing'] = [];
  if (!judgements.size) missing.push({ what: 'judgements of the sample outputs', reason: ctx.run.kind === 'method' ? 'a single method run is not evaluated' : 'no evaluate stage annotations' });
  let html = `<p>${chosen.length} instructions of the eval split (one per task family first), each method's output${mainFb ? ` (trained with ${esc(feedbackLabel(mainFb))})` : ''} beside the reference output, with each evaluator's judgement against the reference${evaluators.length ? ` (${esc(evaluators.join(', '))})` : ''}.</p>`;
  for (const r of chosen) {
    const k = recordKey(r.instruction, r.input);
    const ref = references.get(k);
    const cards: string[] = [];
    if (ref !== undefined) cards.push(`<div class="out ref"><div class="who">Reference output</div><pre>${esc(ref)}</pre></div>`);
    for (const o of outputs) {
      const row = o.rows.get(k);
      if (!row) continue;
      const badges = evaluators.map((ev) => {
        const a = judgements.get(`${o.method}\u0000${ev}`)?.get(k);
        if (!a || a.output_2 !== row.output) return '';
        const v = verdict(a.preference);
        const who = a.annotator && a.annotator !== ev ? ` (${a.annotator})` : '';
        return `<span class="badge ${v.cls}" title="${esc(ev + who)}">${esc(ev)}: ${esc(v.text)}${esc(who)}</span>`;
      }).join('');
      cards.push(`<div class="out" style="border-top-color:${methodColor(o.method)}"><div class="who">${esc(methodLabel(o.method))}</div>${badges ? `<div class="badges">${badges}</div>` : ''}<pre>${esc(row.output)}</pre></div>`);
    }
    html += `<div class="sample"><div class="prompt">${r.dataset ? `<span class="tag">${esc(r.dataset)}</span>` : ''}<span class="instruction">${esc(r.instruction)}</span>${r.input ? `<pre class="input">${esc(r.input)}</pre>` : ''}</div><div class="outs">${cards.join('')}</div></div>`;
  }
  return section('samples', 'Sample outputs', { html, missing });
}

// ---------------------------------------------------------------------------------------------- stages

function stages(ctx: Ctx): Section {
  const st = ctx.run.stages;
  if (!st.length) return section('stages', 'Stages and timings', { missing: [{ what: 'pipeline stages', reason: ctx.run.kind === 'method' ? 'a single method run has no stages' : 'no stages/ folder and no pipeline.json' }] });
  const top = [...st].sort((a, b) => b.seconds - a.seconds).slice(0, 30);
  const kinds = [...new Set(top.map((s) => s.kind))];
  const data = kinds.map((k) => {
    const rows = top.filter((s) => s.kind === k);
    return { type: 'bar', orientation: 'h', name: k, y: rows.map((s) => s.name), x: rows.map((s) => Number(s.seconds.toFixed(3))), marker: { color: methodColor(k === 'evaluate' || k === 'outputs' ? 'reference' : k), opacity: k === 'evaluate' || k === 'outputs' ? 0.45 : 0.85 },
      hovertemplate: '%{y}: %{x:.2f} s<extra></extra>' };
  });
  const fig = figure('stages', 'Time per stage', `Seconds each stage took when it ran (stage.json), the ${top.length} longest of ${st.length}; cached stages keep the time of the run that made them.`,
    data, { barmode: 'stack', xaxis: axis('seconds'), yaxis: axis('', { type: 'category', categoryorder: 'array', categoryarray: top.map((s) => s.name).reverse() }), margin: { l: 230, r: 20, t: 20, b: 70 } },
    { width: 820, height: 120 + 20 * top.length });
  const html = chartHtml(fig) + `<details><summary>All ${st.length} stages</summary>${table(['stage', 'kind', 'key', 'cached in the last run', 'seconds', 'folder present'],
    st.map((s) => [s.name, s.kind, raw(`<code>${esc(s.key)}</code>`), s.cached ? 'yes' : 'no', fmt(s.seconds, 2), existsSync(s.dir) ? 'yes' : 'no']), { numeric: [false, false, false, false, true, false] })}</details>`;
  return section('stages', 'Stages and timings', { html, figures: [fig] });
}

/** Every section of the report, in page order. */
export function buildSections(run: RunFolder): Section[] {
  const ctx = new Ctx(run);
  return [overview(ctx), leaderboard(ctx), training(ctx), overoptimization(ctx), ranking(ctx), judges(ctx), samples(ctx), stages(ctx)];
}

