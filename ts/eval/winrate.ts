// Win-rate of a model (output_2) against a reference (output_1), in the published convention of
// AlpacaFarm / alpaca_eval: per example the score is preference - 1 (a draw counts 0.5), the win-rate is
// 100 x mean, the standard error 100 x sample std (ddof = 1) / sqrt(n). Soft preferences in [1, 2] use the
// same formula; the discrete win-rate rounds each one to win / draw / loss first (AlpacaEval 2).
import { parsePreferences, type InvalidPolicy } from './preferences.ts';
import { mean, sem } from './stats.ts';

export interface WinRateMetrics {
  /** 100 x mean score of the model, draws counting 0.5. */
  win_rate: number;
  /** 100 x standard error of that mean (ddof = 1); NaN (null in JSON) with fewer than two examples. */
  standard_error: number;
  /** Examples the model won (score > 0.5). */
  n_wins: number;
  /** Examples the reference won (score < 0.5). */
  n_wins_base: number;
  /** Examples that are exact draws (preference 0 or 1.5). */
  n_draws: number;
  /** Examples counted (parsed preferences). */
  n_total: number;
  /** Win-rate after rounding every preference to win / draw / loss; equals win_rate for hard labels. */
  discrete_win_rate: number;
  /** Mean length in characters of the model's outputs over all given rows; NaN when lengths are not given. */
  avg_length: number;
  /** Rows whose preference was missing (null / NaN), dropped. */
  n_missing: number;
  /** Rows whose preference was invalid and dropped (only with invalid: 'drop'). */
  n_invalid: number;
  /** True when some preference is neither 0, 1, 1.5 nor 2. */
  is_soft: boolean;
}

export interface WinRateOptions {
  /** What to do with preferences that are not valid: throw (default) or drop and count. */
  invalid?: InvalidPolicy;
  /** Lengths (characters) of the model's outputs, one per preference, for avg_length. */
  modelLengths?: readonly number[];
  /** Receives warnings (missing, dropped, string-typed preferences). */
  warn?: (message: string) => void;
}

/** Win-rate metrics from raw preference values (numbers, null, or strings as read from a file). */
export function winRate(preferences: readonly unknown[], opts: WinRateOptions = {}): WinRateMetrics {
  const parsed = parsePreferences(preferences, opts.invalid ?? 'error');
  for (const w of parsed.warnings) opts.warn?.(w);
  const scores = parsed.scores.filter((s) => !Number.isNaN(s));
  if (scores.length === 0) {
    throw new Error(`no usable preferences among ${preferences.length} rows (${parsed.n_missing} missing, ${parsed.n_invalid} invalid)`);
  }
  return winRateFromScores(scores, {
    avgLength: opts.modelLengths ? mean(opts.modelLengths) : NaN,
    n_missing: parsed.n_missing,
    n_invalid: parsed.n_invalid,
  });
}

/** Win-rate metrics from already-parsed scores in [0, 1] (preference - 1, draws 0.5). */
export function winRateFromScores(
  scores: readonly number[],
  extra: { avgLength?: number; n_missing?: number; n_invalid?: number } = {},
): WinRateMetrics {
  let nWins = 0, nBase = 0, nDraws = 0, isSoft = false;
  const discrete = new Array<number>(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (!(s >= 0 && s <= 1)) throw new Error(`score ${s} at ${i} is outside [0, 1]`);
    if (s !== 0 && s !== 0.5 && s !== 1) isSoft = true;
    if (s > 0.5) nWins++;
    else if (s < 0.5) nBase++;
    else nDraws++;
    discrete[i] = s > 0.5 ? 1 : s < 0.5 ? 0 : 0.5;
  }
  return {
    win_rate: mean(scores) * 100,
    standard_error: sem(scores) * 100,
    n_wins: nWins,
    n_wins_base: nBase,
    n_draws: nDraws,
    n_total: scores.length,
    discrete_win_rate: mean(discrete) * 100,
    avg_length: extra.avgLength ?? NaN,
    n_missing: extra.n_missing ?? 0,
    n_invalid: extra.n_invalid ?? 0,
    is_soft: isSoft,
  };
}
