// Reading preference values as they appear in annotations files (AlpacaFarm / alpaca_eval conventions):
// 1 or 2 name the winner, 0 (or exactly 1.5) is a draw, soft judges give any value in [1, 2], null/NaN
// means the judge gave no usable answer. Anything else is an error unless the caller asks to drop it.

export type PreferenceStatus = 'ok' | 'missing' | 'invalid';

export interface ParsedPreference {
  status: PreferenceStatus;
  /** Score of the compared model (output_2) in [0, 1]: preference - 1, a draw counting 0.5. NaN unless ok. */
  score: number;
  /** True when the raw value was a numeric string such as "2" (accepted, but reported). */
  fromString: boolean;
}

/** How to treat values that are neither a preference nor a missing marker. */
export type InvalidPolicy = 'error' | 'drop';

export function parsePreference(raw: unknown): ParsedPreference {
  let value: number;
  let fromString = false;
  if (raw === null || raw === undefined) return { status: 'missing', score: NaN, fromString };
  if (typeof raw === 'number') {
    value = raw;
  } else if (typeof raw === 'string') {
    const t = raw.trim();
    // pandas writes missing values as NaN/None when serializing as text
    if (t === '' || /^(nan|none|null)$/i.test(t)) return { status: 'missing', score: NaN, fromString: true };
    if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t)) return { status: 'invalid', score: NaN, fromString: true };
    value = Number(t);
    fromString = true;
  } else {
    return { status: 'invalid', score: NaN, fromString };
  }
  if (Number.isNaN(value)) return { status: 'missing', score: NaN, fromString };
  if (value === 0) return { status: 'ok', score: 0.5, fromString };
  if (value >= 1 && value <= 2) return { status: 'ok', score: value - 1, fromString };
  return { status: 'invalid', score: NaN, fromString };
}

export interface PreferenceIssue {
  index: number;
  value: unknown;
}

export interface ParsedPreferences {
  /** Per input row: score in [0, 1], or NaN where the row is dropped. */
  scores: number[];
  n_missing: number;
  n_invalid: number;
  n_from_string: number;
  firstMissing?: PreferenceIssue;
  firstInvalid?: PreferenceIssue;
  warnings: string[];
}

function show(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parses a column of preferences. Missing values are dropped and counted; invalid values (non-numeric
 * strings, numbers outside {0} and [1, 2], objects) throw unless `invalid: 'drop'`.
 */
export function parsePreferences(raw: readonly unknown[], invalid: InvalidPolicy = 'error'): ParsedPreferences {
  const out: ParsedPreferences = { scores: new Array(raw.length), n_missing: 0, n_invalid: 0, n_from_string: 0, warnings: [] };
  for (let i = 0; i < raw.length; i++) {
    const p = parsePreference(raw[i]);
    if (p.fromString && p.status === 'ok') out.n_from_string++;
    if (p.status === 'missing') {
      out.n_missing++;
      out.firstMissing ??= { index: i, value: raw[i] };
    } else if (p.status === 'invalid') {
      out.n_invalid++;
      out.firstInvalid ??= { index: i, value: raw[i] };
    }
    out.scores[i] = p.score;
  }
  if (out.n_invalid > 0) {
    const msg =
      `${out.n_invalid} of ${raw.length} preferences are not valid (expected 0, 1, 2, a number in [1, 2], or null); ` +
      `first at row ${out.firstInvalid!.index}: ${show(out.firstInvalid!.value)}`;
    if (invalid === 'error') throw new Error(msg);
    out.warnings.push(`${msg}; dropped`);
  }
  if (out.n_missing > 0) {
    out.warnings.push(
      `${out.n_missing} of ${raw.length} preferences are missing (judge gave no usable answer); dropped ` +
        `(first at row ${out.firstMissing!.index})`,
    );
  }
  if (out.n_from_string > 0) out.warnings.push(`${out.n_from_string} preferences were numeric strings; read as numbers`);
  return out;
}
