// Small HTML helpers: escaping (model outputs carry control characters and markup), number formats, tables.

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML; control characters (a tiny model's outputs have them) are shown as their ␀-␟ symbols. */
export function esc(s: unknown): string {
  return String(s ?? '')
    .replace(/[&<>"']/g, (c) => ENTITIES[c])
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => (c === '\u007f' ? '\u2421' : String.fromCharCode(0x2400 + c.charCodeAt(0))));
}

/** Marks a string as HTML already (not escaped again by `table`). */
export interface Html { html: string }
export const raw = (html: string): Html => ({ html });
const cellHtml = (c: string | number | Html | null | undefined): string =>
  c === null || c === undefined ? '–' : typeof c === 'object' ? c.html : esc(c);

export function isNum(x: unknown): x is number { return typeof x === 'number' && Number.isFinite(x); }

export function fmt(x: unknown, digits = 1): string {
  return isNum(x) ? x.toFixed(digits) : '–';
}
export function pm(x: unknown, se: unknown, digits = 1): string {
  if (!isNum(x)) return '–';
  return isNum(se) ? `${x.toFixed(digits)} ± ${se.toFixed(digits)}` : x.toFixed(digits);
}
export function pct(x: unknown, digits = 1): string { return isNum(x) ? `${(100 * x).toFixed(digits)}%` : '–'; }
export function seconds(s: number): string {
  if (!isNum(s)) return '–';
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 120 ? `${m} min ${Math.round(s - 60 * m)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A table; `numeric[i]` right-aligns column i. */
export function table(head: string[], rows: Array<Array<string | number | Html | null | undefined>>, opts: { numeric?: boolean[]; cls?: string; caption?: string } = {}): string {
  const al = (i: number) => (opts.numeric?.[i] ? ' class="num"' : '');
  return `<div class="table-wrap"><table${opts.cls ? ` class="${opts.cls}"` : ''}>${opts.caption ? `<caption>${esc(opts.caption)}</caption>` : ''}`
    + `<thead><tr>${head.map((h, i) => `<th${al(i)}>${esc(h)}</th>`).join('')}</tr></thead>`
    + `<tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td${al(i)}>${cellHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
}

/** Key/value rows. */
export function definitions(rows: Array<[string, string | number | Html | null | undefined]>): string {
  return `<dl class="kv">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${cellHtml(v)}</dd>`).join('')}</dl>`;
}

/** A box that names a part of the report that this run folder cannot give, and why. */
export function missingBox(what: string, reason: string): string {
  return `<div class="missing" data-missing="${esc(what)}"><strong>Not in this run folder: ${esc(what)}.</strong> ${esc(reason)}</div>`;
}
