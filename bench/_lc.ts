// Shared by the length-control bench and the gamed-rows calibration: which AlpacaEval 2 annotation files
// are used for what, and how one model's LC is computed from them.
//
// Annotation files: alpaca_eval's results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json, one
// per model, in a folder as <model>.json or <model>__weighted_alpaca_eval_gpt4_turbo.json (the layout of
// ../shared/data/alpaca_eval/annotations). Pass --annotations-dir DIR (or $FARM_AE2_ANNOTATIONS); the
// default folder under ../shared holds the three test models only. The figures in docs/eval.md used the 58
// files present in a git snapshot of tatsu-lab/alpaca_eval at commit cd543a1, written out as
//   git show cd543a1:results/$M/weighted_alpaca_eval_gpt4_turbo/annotations.json > DIR/$M.json
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Leaderboard, modelAnnotations, readAnnotations, type ModelAnnotations } from '../ts/eval/index.ts';

/** ../shared/data/alpaca_eval beside the repository, or $FARM_ALPACA_EVAL_DATA (as the tests). */
export const SHARED = process.env.FARM_ALPACA_EVAL_DATA
  ? `${process.env.FARM_ALPACA_EVAL_DATA.replace(/\/$/, '')}/`
  : fileURLToPath(new URL('../../shared/data/alpaca_eval/', import.meta.url));
export const BOARD = `${SHARED}leaderboards/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv`;
/** The models whose LC the tests check against alpaca_eval's own code (SOURCE.md): never used for calibration or measurement. */
export const TEST_MODELS = ['alpaca-7b', 'FuseChat-Gemma-2-9B-Instruct', 'gpt4_0613_concise'];
/** LC that alpaca_eval's code gives on the bundled surrogate inputs (SOURCE.md, length-control section). */
export const ALPACA_EVAL_CODE_LC: Record<string, number> = { 'alpaca-7b': 6.150, 'FuseChat-Gemma-2-9B-Instruct': 69.997, gpt4_0613_concise: 22.903 };

export function annotationsDir(): string {
  const i = process.argv.indexOf('--annotations-dir');
  if (i >= 0) return process.argv[i + 1];
  return process.env.FARM_AE2_ANNOTATIONS ?? `${SHARED}annotations`;
}

/** model name -> annotations file, for the AlpacaEval 2 files in dir. */
export function ae2Files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).sort()) {
    const m = /^(.+?)(__weighted_alpaca_eval_gpt4_turbo)?\.json$/.exec(f);
    if (!m || (f.includes('__') && !m[2])) continue;
    out.set(m[1], `${dir}/${f}`);
  }
  return out;
}

export interface Split {
  board: Leaderboard;
  /** Models used to choose the calibration (even positions of the sorted eligible names). */
  build: string[];
  /** Models never used for anything but measuring (odd positions). */
  heldOut: string[];
  files: Map<string, string>;
}

/** Eligible: on the published board, not the baseline, not a test model. Sorted by name, then alternated. */
export function split(dir: string): Split {
  const board = Leaderboard.load(BOARD);
  const files = ae2Files(dir);
  const eligible = [...files.keys()].filter((m) => board.has(m) && m !== 'gpt4_1106_preview' && !TEST_MODELS.includes(m)).sort();
  return { board, files, build: eligible.filter((_, i) => i % 2 === 0), heldOut: eligible.filter((_, i) => i % 2 === 1) };
}

export function load(file: string, name: string): ModelAnnotations {
  return modelAnnotations(readAnnotations(file), { name });
}
