// Leaderboards: several models against one reference under one annotator, kept in a CSV in alpaca_eval's
// layout (first column unnamed = model name), with a Markdown rendering beside it. Rows persist across
// runs: adding a model touches only its row, so old models are never re-annotated.
import { withFileLock } from '../data/lock.ts';
import { existsSync, readFileSync } from 'node:fs';
import { writeText } from './io.ts';
import type { WinRateMetrics } from './winrate.ts';

export interface LeaderboardRow {
  name: string;
  win_rate: number;
  standard_error?: number;
  n_wins?: number;
  n_wins_base?: number;
  n_draws?: number;
  n_total?: number;
  discrete_win_rate?: number;
  length_controlled_winrate?: number;
  lc_standard_error?: number;
  avg_length?: number;
  n_missing?: number;
  annotator?: string;
  reference?: string;
  /** Which length-control GLM gave length_controlled_winrate (rows with different ones are not comparable). */
  lc_variant?: string;
  /** ISO time the row was written. */
  updated?: string;
  /** Columns this code does not know (alpaca_eval's `mode`, ...), kept verbatim. */
  extra?: Record<string, string>;
}

const NUMERIC = [
  'win_rate', 'standard_error', 'n_wins', 'n_wins_base', 'n_draws', 'n_total', 'discrete_win_rate',
  'length_controlled_winrate', 'lc_standard_error', 'avg_length', 'n_missing',
] as const;
const TEXT = ['annotator', 'reference', 'lc_variant', 'updated'] as const;
type NumericColumn = (typeof NUMERIC)[number];
export type SortKey = 'win_rate' | 'length_controlled_winrate' | 'discrete_win_rate';

export function rowFromMetrics(
  name: string,
  m: WinRateMetrics & { length_controlled_winrate?: number; lc_standard_error?: number; length_control?: { variant: string } },
  meta: { annotator?: string; reference?: string; updated?: string } = {},
): LeaderboardRow {
  const row: LeaderboardRow = {
    name,
    win_rate: m.win_rate,
    standard_error: m.standard_error,
    n_wins: m.n_wins,
    n_wins_base: m.n_wins_base,
    n_draws: m.n_draws,
    n_total: m.n_total,
    discrete_win_rate: m.discrete_win_rate,
    length_controlled_winrate: m.length_controlled_winrate,
    lc_standard_error: m.lc_standard_error,
    // alpaca_eval prints the integer part
    avg_length: Number.isFinite(m.avg_length) ? Math.trunc(m.avg_length) : undefined,
    n_missing: m.n_missing + m.n_invalid,
    ...(m.length_control ? { lc_variant: m.length_control.variant } : {}),
    ...meta,
  };
  return row;
}

// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines.
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
    i++;
  }
  if (quoted) throw new Error('CSV: unterminated quoted field');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function fmtNumber(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? '' : String(v);
}

export class Leaderboard {
  private readonly rows = new Map<string, LeaderboardRow>();
  private readonly extraColumns: string[] = [];

  constructor(rows: readonly LeaderboardRow[] = []) {
    for (const r of rows) this.upsert(r, { force: true });
  }

  /** Parses alpaca_eval-style leaderboard CSV text (first column: model name, header '' or 'name'). */
  static fromCsv(text: string, source = 'leaderboard'): Leaderboard {
    const table = parseCsv(text);
    if (table.length === 0) return new Leaderboard();
    const header = table[0];
    const numeric = new Set<string>(NUMERIC);
    const textCols = new Set<string>(TEXT);
    if (!header.includes('win_rate')) throw new Error(`${source}: header has no win_rate column (${header.join(',')})`);
    const board = new Leaderboard();
    for (let r = 1; r < table.length; r++) {
      const cells = table[r];
      if (cells.length !== header.length) throw new Error(`${source}: line ${r + 1} has ${cells.length} cells, header has ${header.length}`);
      const name = cells[0];
      if (name === '') throw new Error(`${source}: line ${r + 1} has no model name`);
      const row: LeaderboardRow = { name, win_rate: NaN };
      for (let c = 1; c < header.length; c++) {
        const col = header[c];
        const cell = cells[c];
        if (numeric.has(col)) {
          if (cell === '') continue;
          const v = Number(cell);
          if (Number.isNaN(v) && !/^nan$/i.test(cell)) throw new Error(`${source}: line ${r + 1} column ${col} is not a number: ${JSON.stringify(cell)}`);
          (row as unknown as Record<string, number>)[col] = v;
        } else if (textCols.has(col)) {
          if (cell !== '') (row as unknown as Record<string, string>)[col] = cell;
        } else {
          (row.extra ??= {})[col] = cell;
        }
      }
      if (!Number.isFinite(row.win_rate)) throw new Error(`${source}: line ${r + 1} (${name}) has no win_rate`);
      if (board.rows.has(name)) throw new Error(`${source}: model ${JSON.stringify(name)} appears twice`);
      board.upsert(row, { force: true });
    }
    return board;
  }

  static load(path: string): Leaderboard {
    return Leaderboard.fromCsv(readFileSync(path, 'utf8'), path);
  }

  /**
   * Read-modify-write of the board at `path` under a lock file, so that several processes adding rows to
   * one board never lose each other's rows: loads the current file, applies `change`, saves.
   */
  static update(path: string, change: (board: Leaderboard) => void, by: SortKey = 'win_rate'): { board: Leaderboard; saved: { csv: string; markdown: string } } {
    return withFileLock(path, () => {
      const board = Leaderboard.loadOrCreate(path);
      change(board);
      return { board, saved: board.save(path, by) };
    });
  }

  /** The leaderboard at `path`, or an empty one when the file does not exist yet. */
  static loadOrCreate(path: string): Leaderboard {
    return existsSync(path) ? Leaderboard.load(path) : new Leaderboard();
  }

  get size(): number {
    return this.rows.size;
  }

  has(name: string): boolean {
    return this.rows.has(name);
  }

  get(name: string): LeaderboardRow | undefined {
    return this.rows.get(name);
  }

  remove(name: string): boolean {
    return this.rows.delete(name);
  }

  /**
   * Adds or replaces a model's row. Rows judged by another annotator or against another reference are
   * not comparable: refused unless `force`.
   */
  upsert(row: LeaderboardRow, opts: { force?: boolean } = {}): void {
    if (!row.name) throw new Error('leaderboard row needs a name');
    if (!Number.isFinite(row.win_rate)) throw new Error(`leaderboard row ${row.name}: win_rate ${row.win_rate} is not a number`);
    if (!opts.force) {
      for (const other of this.rows.values()) {
        if (other.name === row.name) continue;
        for (const field of ['annotator', 'reference'] as const) {
          if (row[field] && other[field] && row[field] !== other[field]) {
            throw new Error(
              `leaderboard mixes ${field}s: ${row.name} has ${row[field]}, ${other.name} has ${other[field]}; rows are not comparable (use another file, or force)`,
            );
          }
        }
      }
    }
    for (const col of Object.keys(row.extra ?? {})) if (!this.extraColumns.includes(col)) this.extraColumns.push(col);
    this.rows.set(row.name, { ...row });
  }

  /** Rows sorted best first by `by` (rows without it last), ties by name. */
  sorted(by: SortKey = 'win_rate'): LeaderboardRow[] {
    const val = (r: LeaderboardRow) => {
      const v = r[by];
      return v === undefined || Number.isNaN(v) ? -Infinity : v;
    };
    return [...this.rows.values()].sort((a, b) => val(b) - val(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** name -> metric, for ranking comparisons. */
  scores(by: SortKey = 'win_rate'): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rows.values()) {
      const v = r[by];
      if (v !== undefined && Number.isFinite(v)) out[r.name] = v;
    }
    return out;
  }

  private columns(): string[] {
    const present = (col: string) => [...this.rows.values()].some((r) => (r as unknown as Record<string, unknown>)[col] !== undefined);
    return [...NUMERIC.filter((c) => c === 'win_rate' || present(c)), ...this.extraColumns, ...TEXT.filter(present)];
  }

  toCsv(by: SortKey = 'win_rate'): string {
    const cols = this.columns();
    const lines = [['', ...cols].map(csvField).join(',')];
    for (const r of this.sorted(by)) {
      const rec = r as unknown as Record<string, unknown>;
      const cells = cols.map((c) => {
        if ((NUMERIC as readonly string[]).includes(c)) return fmtNumber(rec[c] as number | undefined);
        if ((TEXT as readonly string[]).includes(c)) return (rec[c] as string | undefined) ?? '';
        return r.extra?.[c] ?? '';
      });
      lines.push([r.name, ...cells].map(csvField).join(','));
    }
    return `${lines.join('\n')}\n`;
  }

  toMarkdown(by: SortKey = 'win_rate', digits = 2): string {
    const rows = this.sorted(by);
    const has = (c: NumericColumn) => rows.some((r) => r[c] !== undefined && !Number.isNaN(r[c]));
    const f = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : v.toFixed(digits));
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const head = ['#', 'model', 'win rate', '± s.e.'];
    if (has('length_controlled_winrate')) head.push('LC win rate');
    if (has('discrete_win_rate')) head.push('discrete');
    head.push('wins / losses / draws', 'n', 'avg length');
    const lines = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i <= 1 ? '---' : '---:')).join('|')}|`];
    rows.forEach((r, i) => {
      const cells = [String(i + 1), esc(r.name), f(r.win_rate), f(r.standard_error)];
      if (has('length_controlled_winrate')) cells.push(f(r.length_controlled_winrate));
      if (has('discrete_win_rate')) cells.push(f(r.discrete_win_rate));
      cells.push(
        r.n_wins === undefined ? '' : `${r.n_wins} / ${r.n_wins_base ?? ''} / ${r.n_draws ?? ''}`,
        r.n_total === undefined ? '' : String(r.n_total),
        r.avg_length === undefined ? '' : String(Math.trunc(r.avg_length)),
      );
      lines.push(`| ${cells.join(' | ')} |`);
    });
    const annotators = [...new Set(rows.map((r) => r.annotator).filter(Boolean))];
    const refs = [...new Set(rows.map((r) => r.reference).filter(Boolean))];
    const variants = [...new Set(rows.map((r) => r.lc_variant).filter(Boolean))];
    const note = [
      annotators.length ? `annotator: ${annotators.join(', ')}` : '',
      refs.length ? `reference: ${refs.join(', ')}` : '',
      variants.length ? `LC: ${variants.join(', ')}${variants.length > 1 ? ' (mixed: LC values are not comparable across variants)' : ''}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return `${lines.join('\n')}\n${note ? `\n${note}; sorted by ${by}\n` : `\nsorted by ${by}\n`}`;
  }

  /** Writes the CSV to `path` and the Markdown beside it (same name, .md). Returns both paths. */
  save(path: string, by: SortKey = 'win_rate'): { csv: string; markdown: string } {
    const markdown = path.replace(/\.csv$/i, '') + '.md';
    writeText(path, this.toCsv(by));
    writeText(markdown, this.toMarkdown(by));
    return { csv: path, markdown };
  }
}
