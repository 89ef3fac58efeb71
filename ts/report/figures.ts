// Plotly figures as plain JSON ({data, layout}): built here in Node, drawn in the page by plotly.js, and the
// same JSON written beside the page (plotly.py reads it with plotly.io.read_json). Colours and names are
// fixed per method, feedback source and evaluator, so one method looks the same in every chart.

export interface Figure {
  /** File-name-safe id: the chart's element id and the name of its exported files. */
  id: string;
  title: string;
  /** One line under the chart: what it shows and how to read it. */
  caption: string;
  data: Json[];
  layout: Json;
  /** Pixel size of the exported image (the page itself fits the width to the column). */
  width: number;
  height: number;
}
type Json = Record<string, unknown>;

export const METHOD_LABELS: Record<string, string> = {
  sft: 'SFT', 'best-of-n': 'Best-of-n', 'expert-iteration': 'Expert iteration', feedme: 'Binary FeedME',
  'reward-conditioning': 'Binary reward conditioning', ppo: 'PPO', quark: 'Quark', dpo: 'DPO', 'reward-model': 'Reward model',
  treebon: 'TreeBoN', 'rlp-uml': 'RLP (UML)', 'rlp-spg': 'RLP (SPG)',
  reference: 'Davinci003 (reference)',
};
export const METHOD_COLORS: Record<string, string> = {
  sft: '#6b6b6b', 'best-of-n': '#e8710a', 'expert-iteration': '#2e8b3a', feedme: '#8c564b', 'reward-conditioning': '#d0479a',
  ppo: '#1a66c2', quark: '#7b4fc0', dpo: '#d62728', 'reward-model': '#138d9c', treebon: '#bcbd22', 'rlp-uml': '#17becf', 'rlp-spg': '#0f7f8f', reference: '#000000',
};
export const EVALUATOR_COLORS: Record<string, string> = { pool: '#1a66c2', panel: '#d62728', gold: '#2e8b3a', rm: '#7b4fc0', paper: '#9a9a9a' };
const FEEDBACK_COLORS = ['#1a66c2', '#d62728', '#2e8b3a', '#e8710a', '#7b4fc0'];
const FEEDBACK_DASH: Record<string, string> = { 'pool-train': 'solid', panel: 'dash' };

export function methodLabel(m: string): string { return METHOD_LABELS[m] ?? m; }
export function methodColor(m: string): string { return METHOD_COLORS[m] ?? '#444444'; }

/** A feedback slug as a reader would say it. */
export function feedbackLabel(fb: string | null): string {
  if (fb === null) return 'no feedback';
  if (fb === 'pool-train') return 'simulated feedback (pool, 25% flips)';
  if (fb === 'panel') return 'human feedback (panel)';
  if (fb === 'pool') return 'simulated feedback (pool, no flips)';
  return `feedback: ${fb}`;
}
export function feedbackShort(fb: string | null): string {
  if (fb === null) return '';
  return fb === 'pool-train' ? 'simulated' : fb === 'panel' ? 'human' : fb;
}
export function feedbackColor(fb: string | null, order: string[]): string {
  const i = fb === null ? 0 : Math.max(0, order.indexOf(fb));
  return FEEDBACK_COLORS[i % FEEDBACK_COLORS.length];
}
export function feedbackDash(fb: string | null): string { return fb === null ? 'solid' : FEEDBACK_DASH[fb] ?? 'dot'; }

/** Non-finite numbers become null (a gap in Plotly, where NaN would break the JSON). */
export const clean = (xs: readonly number[]): Array<number | null> => xs.map((x) => (Number.isFinite(x) ? x : null));

const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif', size: 12, color: '#222' };

export function baseLayout(extra: Json = {}): Json {
  return {
    font: FONT, paper_bgcolor: '#ffffff', plot_bgcolor: '#ffffff', margin: { l: 60, r: 20, t: 36, b: 48 },
    hovermode: 'closest', legend: { orientation: 'h', y: -0.18, x: 0, font: { size: 11 } },
    ...extra,
  };
}

export function axis(title: string, extra: Json = {}): Json {
  return { title: { text: title, font: { size: 12 } }, gridcolor: '#e6e6e6', zerolinecolor: '#c8c8c8', linecolor: '#999', ticks: 'outside', tickcolor: '#999', automargin: true, ...extra };
}

/**
 * A grid of independent subplots: `cells` panels, `columns` per row. Returns the layout pieces (axes, grid,
 * panel titles) and the axis ids of each cell (`x`, `y` for the first, `x2`, `y2` ...).
 */
export function subplotGrid(titles: string[], columns: number, axes: Array<{ x: Json; y: Json }>): { layout: Json; ref: Array<{ xaxis: string; yaxis: string }> } {
  const n = titles.length, cols = Math.min(columns, n), rows = Math.ceil(n / cols);
  const layout: Json = { grid: { rows, columns: cols, pattern: 'independent', xgap: 0.28, ygap: 0.42 }, annotations: [] as Json[] };
  const ref: Array<{ xaxis: string; yaxis: string }> = [];
  for (let i = 0; i < n; i++) {
    const s = i === 0 ? '' : String(i + 1);
    layout[`xaxis${s}`] = axes[i]?.x ?? axis('');
    layout[`yaxis${s}`] = axes[i]?.y ?? axis('');
    ref.push({ xaxis: `x${s}`, yaxis: `y${s}` });
    (layout.annotations as Json[]).push({ text: `<b>${titles[i]}</b>`, xref: `x${s} domain`, yref: `y${s} domain`, x: 0, y: 1, xanchor: 'left', yanchor: 'bottom', showarrow: false, font: { size: 12 } });
  }
  return { layout, ref };
}

/** Figure-wide settings every chart shares; `height` is also the page height of the chart. */
export function figure(id: string, title: string, caption: string, data: Json[], layout: Json, size: { width: number; height: number }): Figure {
  return { id, title, caption, data, layout: { ...baseLayout(), ...layout }, width: size.width, height: size.height };
}
