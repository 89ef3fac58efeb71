// Instruction difficulty for the length-controlled win-rate: reading tables (alpaca_eval's CSV, our JSON),
// the bundled AlpacaEval 2 files, looking a difficulty up per annotation row, and estimating a table from
// several models' annotations by a joint fit (how alpaca_eval made theirs), so that any leaderboard can
// have one.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { shorten } from './align.ts';
import { groupKFold, logspace, weightedLogLoss } from './glm.ts';
import { instructionKey } from './io.ts';
import type { GamedRows } from './length-control.ts';
import { parseCsv } from './leaderboard.ts';
import { sigmoid, softplus, solveSpd, std } from './stats.ts';

export interface DifficultyTable {
  /** Where it came from (a path, or a description of the bundled table). */
  source: string;
  /** Difficulty by row position (alpaca_eval's `index`), when the table has positions. */
  byIndex?: number[];
  /** Difficulty by merged instruction (instruction + "\n\n" + input), when the table names instructions. */
  byInstruction?: Map<string, number>;
}

/** How a row finds its difficulty: by its position in the file (alpaca_eval) or by its own instruction. */
export type DifficultyLookup = 'position' | 'instruction';

/** Short fingerprint of a merged instruction: the first 16 hex digits of its SHA-256 (UTF-8). */
export function instructionFingerprint(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16);
}

function finite(v: unknown, where: string): number {
  const d = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof d !== 'number' || !Number.isFinite(d)) throw new Error(`${where}: difficulty ${JSON.stringify(v)} is not a number`);
  return d;
}

/** alpaca_eval's instruction_difficulty.csv: a header, then `index,difficulty` per line (any column names). */
export function parseDifficultyCsv(text: string, source: string): DifficultyTable {
  const table = parseCsv(text);
  if (table.length < 2) throw new Error(`${source}: no rows`);
  const header = table[0];
  const col = header.length === 2 ? 1 : header.indexOf('instruction_difficulty');
  if (col < 0) throw new Error(`${source}: expected two columns (index, instruction_difficulty), got ${header.join(',')}`);
  const byIndex: number[] = [];
  for (let r = 1; r < table.length; r++) {
    const idx = Number(table[r][0]);
    if (!Number.isInteger(idx) || idx < 0) throw new Error(`${source}: line ${r + 1}: index ${JSON.stringify(table[r][0])} is not a non-negative integer`);
    if (byIndex[idx] !== undefined) throw new Error(`${source}: index ${idx} appears twice`);
    byIndex[idx] = finite(table[r][col], `${source}: line ${r + 1}`);
  }
  for (let i = 0; i < byIndex.length; i++) if (byIndex[i] === undefined) throw new Error(`${source}: index ${i} is missing`);
  return { source, byIndex };
}

/**
 * Reads a difficulty table: alpaca_eval's CSV (by position), a JSON array of {index?, instruction, input?,
 * difficulty} rows (by instruction, and by position when every row has an index), or a JSON object
 * {merged instruction: difficulty}.
 */
export function readDifficultyTable(path: string): DifficultyTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const t = text.trimStart();
  if (!t.startsWith('[') && !t.startsWith('{')) return parseDifficultyCsv(text, path);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const byInstruction = new Map<string, number>();
  if (Array.isArray(v)) {
    const byIndex: number[] = [];
    let indexed = v.length > 0;
    v.forEach((row, i) => {
      const r = row as Record<string, unknown>;
      if (r === null || typeof r !== 'object') throw new Error(`${path}: row ${i} is not an object`);
      if (typeof r.instruction !== 'string') throw new Error(`${path}: row ${i} has no instruction`);
      const d = finite(r.difficulty ?? r.instruction_difficulty, `${path}: row ${i}`);
      const key = instructionKey(r.instruction, typeof r.input === 'string' ? r.input : '');
      if (byInstruction.has(key)) throw new Error(`${path}: instruction ${shorten(key)} appears twice`);
      byInstruction.set(key, d);
      if (Number.isInteger(r.index) && (r.index as number) >= 0) byIndex[r.index as number] = d;
      else indexed = false;
    });
    for (let i = 0; indexed && i < byIndex.length; i++) if (byIndex[i] === undefined) indexed = false;
    return { source: path, byInstruction, ...(indexed ? { byIndex } : {}) };
  }
  if (v && typeof v === 'object') {
    for (const [k, d] of Object.entries(v as Record<string, unknown>)) byInstruction.set(k, finite(d, `${path}: ${shorten(k, 40)}`));
    return { source: path, byInstruction };
  }
  throw new Error(`${path}: expected a CSV, a JSON array or a JSON object`);
}

/** alpaca_eval's df_gamed.csv: model, index, preference, std_delta_len, instruction_difficulty, not_gamed_baseline. */
export function parseGamedCsv(text: string, source: string): GamedRows & { index: number[] } {
  const table = parseCsv(text);
  if (table.length < 2) throw new Error(`${source}: no rows`);
  const header = table[0];
  const col = (name: string) => {
    const c = header.indexOf(name);
    if (c < 0) throw new Error(`${source}: no "${name}" column (header: ${header.join(',')})`);
    return c;
  };
  const [cm, ci, cp, cs, cd] = ['model', 'index', 'preference', 'std_delta_len', 'instruction_difficulty'].map(col);
  const cg = header.indexOf('not_gamed_baseline');
  const out = { model: [] as string[], index: [] as number[], preference: [] as number[], stdDeltaLen: [] as number[], difficulty: [] as number[] };
  for (let r = 1; r < table.length; r++) {
    const row = table[r];
    if (row.length !== header.length) throw new Error(`${source}: line ${r + 1} has ${row.length} cells, header has ${header.length}`);
    if (cg >= 0 && /^(true|1)$/i.test(row[cg])) throw new Error(`${source}: line ${r + 1} is not a gamed row (not_gamed_baseline = ${row[cg]})`);
    const pref = row[cp].trim() === '' || /^nan$/i.test(row[cp]) ? NaN : Number(row[cp]);
    if (!Number.isNaN(pref) && !(pref >= 0 && pref <= 1)) throw new Error(`${source}: line ${r + 1}: preference ${row[cp]} is outside [0, 1]`);
    out.model.push(row[cm]);
    out.index.push(Number(row[ci]));
    out.preference.push(pref);
    out.stdDeltaLen.push(finite(row[cs], `${source}: line ${r + 1} std_delta_len`));
    out.difficulty.push(finite(row[cd], `${source}: line ${r + 1}`));
  }
  return out;
}

export function readGamedRows(path: string): GamedRows & { index: number[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseGamedCsv(text, path);
}

/**
 * Gamed rows with their preferences tilted: p' = sigmoid(logit(p) + alpha tanh(std_delta_len) + beta difficulty).
 * The per-model fit sees the gamed rows only through sum_g w p_g x_g, so this moves exactly the two numbers
 * that pin the shared length and difficulty slopes.
 */
export function tiltGamed<T extends GamedRows>(gamed: T, alpha: number, beta: number): T {
  const preference = gamed.preference.map((p, i) => {
    if (Number.isNaN(p)) return p;
    const q = Math.min(1 - 1e-12, Math.max(1e-12, p));
    return sigmoid(Math.log(q / (1 - q)) + alpha * Math.tanh(gamed.stdDeltaLen[i]) + beta * gamed.difficulty[i]);
  });
  return { ...gamed, preference };
}

export interface GamedCalibration {
  alpha: number;
  beta: number;
  /** How the values were chosen (models, split, error before and after). */
  note: string;
}

/** The AlpacaEval 2 length-control files bundled in ts/eval/data/alpaca_eval_2 (see the README there). */
export interface AlpacaEval2Bundle {
  baseline: string;
  annotator: string;
  /** Fingerprints of the 805 merged instructions in alpaca_eval's order. */
  fingerprints: string[];
  positionOf: Map<string, number>;
  difficulty: DifficultyTable;
  /** The gamed rows used by default: the surrogate tilted by the calibration. */
  gamed: GamedRows & { index: number[] };
  gamedSource: string;
  /** The surrogate as documented in the data's SOURCE (the inputs alpaca_eval's own code was run on). */
  surrogate: GamedRows & { index: number[] };
  calibration: GamedCalibration;
}

const BUNDLE_DIR = fileURLToPath(new URL('./data/alpaca_eval_2/', import.meta.url));
let bundle: AlpacaEval2Bundle | undefined;

export function alpacaEval2(): AlpacaEval2Bundle {
  if (bundle) return bundle;
  const fingerprints = readFileSync(`${BUNDLE_DIR}instructions.sha256.txt`, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const difficulty = parseDifficultyCsv(readFileSync(`${BUNDLE_DIR}instruction_difficulty.csv`, 'utf8'), 'bundled');
  difficulty.source = 'bundled AlpacaEval 2 table (reconstructed; ts/eval/data/alpaca_eval_2)';
  const surrogate = parseGamedCsv(readFileSync(`${BUNDLE_DIR}df_gamed.csv`, 'utf8'), 'bundled df_gamed.csv');
  const calibration = JSON.parse(readFileSync(`${BUNDLE_DIR}gamed_calibration.json`, 'utf8')) as GamedCalibration;
  if (!Number.isFinite(calibration.alpha) || !Number.isFinite(calibration.beta)) throw new Error('bundled gamed_calibration.json: alpha and beta must be numbers');
  bundle = {
    baseline: 'gpt4_1106_preview',
    annotator: 'weighted_alpaca_eval_gpt4_turbo',
    fingerprints,
    positionOf: new Map(fingerprints.map((f, i) => [f, i])),
    difficulty,
    gamed: tiltGamed(surrogate, calibration.alpha, calibration.beta),
    gamedSource: `bundled surrogate gamed rows, calibrated (alpha ${calibration.alpha}, beta ${calibration.beta}; ts/eval/data/alpaca_eval_2)`,
    surrogate,
    calibration,
  };
  return bundle;
}

/** True when every key is one of AlpacaEval's 805 instructions. */
export function isAlpacaEvalInstructionSet(keys: readonly string[]): boolean {
  const { positionOf } = alpacaEval2();
  return keys.length > 0 && keys.every((k) => positionOf.has(instructionFingerprint(k)));
}

export interface DifficultyLookupResult {
  values: number[];
  lookup: DifficultyLookup;
  /** Rows whose position names another instruction than their own (known for AlpacaEval's set only). */
  misplaced: number;
  firstMisplaced?: number;
}

/**
 * Difficulty of each row. By position, row i gets entry i (alpaca_eval's behaviour: a file with missing or
 * reordered rows gets shifted values, and the published board includes that). By instruction, each row gets
 * its own instruction's value, through the AlpacaEval fingerprints when the table only has positions.
 */
export function lookupDifficulty(table: DifficultyTable, keys: readonly string[], lookup: DifficultyLookup): DifficultyLookupResult {
  const ae = alpacaEval2();
  const fps = keys.map(instructionFingerprint);
  let misplaced = 0;
  let firstMisplaced: number | undefined;
  fps.forEach((f, i) => {
    const pos = ae.positionOf.get(f);
    if (pos !== undefined && pos !== i) {
      misplaced++;
      firstMisplaced ??= i;
    }
  });
  if (lookup === 'position') {
    if (!table.byIndex) throw new Error(`difficulty table ${table.source} has no positions (index); look it up by instruction`);
    if (keys.length > table.byIndex.length) {
      throw new Error(`difficulty table ${table.source} has ${table.byIndex.length} positions but the file has ${keys.length} rows`);
    }
    return { values: keys.map((_, i) => table.byIndex![i]), lookup, misplaced, ...(firstMisplaced !== undefined ? { firstMisplaced } : {}) };
  }
  const values: number[] = [];
  const absent: number[] = [];
  keys.forEach((k, i) => {
    let d = table.byInstruction?.get(k);
    if (d === undefined && table.byIndex) {
      const pos = ae.positionOf.get(fps[i]);
      if (pos !== undefined) d = table.byIndex[pos];
    }
    if (d === undefined) absent.push(i);
    values.push(d ?? NaN);
  });
  if (absent.length > 0) {
    throw new Error(`difficulty table ${table.source} has no entry for ${absent.length} of ${keys.length} instructions (first: ${shorten(keys[absent[0]])})`);
  }
  return { values, lookup, misplaced: 0 };
}

/** Difficulty of the gamed rows' instructions (by their alpaca_eval index) from another table. */
export function gamedWithDifficulty(gamed: GamedRows & { index: number[] }, table: DifficultyTable): GamedRows {
  const ae = alpacaEval2();
  const byFingerprint = new Map<string, number>();
  if (!table.byIndex && table.byInstruction) for (const [k, d] of table.byInstruction) byFingerprint.set(instructionFingerprint(k), d);
  const difficulty = gamed.index.map((idx) => {
    if (table.byIndex && idx < table.byIndex.length) return table.byIndex[idx];
    const d = byFingerprint.get(ae.fingerprints[idx]);
    if (d !== undefined) return d;
    throw new Error(`difficulty table ${table.source} has no entry for the gamed rows' instruction ${idx}`);
  });
  return { model: gamed.model, preference: gamed.preference, stdDeltaLen: gamed.stdDeltaLen, difficulty };
}

// ---------------------------------------------------------------------------------------------------------
// Estimating a table from several models' annotations

/** One model's annotations, reduced to what the joint fit needs. */
export interface ModelAnnotations {
  name: string;
  /** Merged instruction per row. */
  keys: readonly string[];
  /** Score in [0, 1] per row, NaN where missing. */
  scores: readonly number[];
  referenceLengths: readonly number[];
  modelLengths: readonly number[];
}

export interface DifficultyEstimate {
  /** Rows in alpaca_eval's order for AlpacaEval's instructions, else in order of first appearance. */
  rows: Array<{ index: number; instruction: string; difficulty: number; n_models: number }>;
  table: DifficultyTable;
  models: string[];
  /** The joint fit's model terms: theta (strength against the reference) and beta (length slope). */
  model_terms: Array<{ name: string; theta: number; beta: number }>;
  /** The ridge strength chosen by cross-validation, and the held-out loss of every candidate. */
  lambda: number;
  cv: { lambdas: number[]; total_loss: number[] };
  converged: boolean;
  n_rows: number;
}

/** Rows of the joint fit: model, instruction, tanh of the standardized length difference, label, weight. */
interface JointData {
  nModels: number;
  nInstructions: number;
  model: Int32Array;
  instruction: Int32Array;
  t: Float64Array;
  y: Float64Array;
}

interface JointFit {
  theta: Float64Array;
  beta: Float64Array;
  gamma: Float64Array;
  iterations: number;
  converged: boolean;
}

const JOINT_EPS = 1e-6; // a whisker of ridge on the model terms: a model that wins every row stays finite

/**
 * Newton's method on sum_i w_i (softplus(z_i) - y_i z_i) + lambda/2 |gamma|^2 + eps/2 (|theta|^2 + |beta|^2),
 * z_i = theta_m + beta_m t_i + gamma_x. The instruction block of the Hessian is diagonal, so each step solves
 * only a (2 x models)-square Schur complement: exact steps in O(rows + instructions x models^2).
 */
function fitJoint(d: JointData, lambda: number, w: Float64Array, init?: JointFit, tol = 1e-10, maxIter = 100): JointFit {
  const { nModels: M, nInstructions: K, model, instruction, t, y } = d;
  const n = y.length;
  const P = 2 * M;
  const theta = init ? Float64Array.from(init.theta) : new Float64Array(M);
  const beta = init ? Float64Array.from(init.beta) : new Float64Array(M);
  const gamma = init ? Float64Array.from(init.gamma) : new Float64Array(K);
  // rows grouped by instruction, for the Schur complement
  const byInstr: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < n; i++) if (w[i] > 0) byInstr[instruction[i]].push(i);
  let totalW = 0;
  for (let i = 0; i < n; i++) totalW += w[i];
  const z = new Float64Array(n);
  const zAt = (th: Float64Array, be: Float64Array, ga: Float64Array, out: Float64Array) => {
    for (let i = 0; i < n; i++) out[i] = th[model[i]] + be[model[i]] * t[i] + ga[instruction[i]];
  };
  const objectiveAt = (zz: Float64Array, th: Float64Array, be: Float64Array, ga: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) if (w[i] > 0) s += w[i] * (softplus(zz[i]) - y[i] * zz[i]);
    for (let k = 0; k < K; k++) s += 0.5 * lambda * ga[k] * ga[k];
    for (let m = 0; m < M; m++) s += 0.5 * JOINT_EPS * (th[m] * th[m] + be[m] * be[m]);
    return s;
  };
  zAt(theta, beta, gamma, z);
  let objective = objectiveAt(z, theta, beta, gamma);
  const h = new Float64Array(n);
  const r = new Float64Array(n);
  let converged = false;
  let it = 0;
  for (; it < maxIter; it++) {
    for (let i = 0; i < n; i++) {
      if (w[i] === 0) {
        h[i] = 0;
        r[i] = 0;
        continue;
      }
      const p = sigmoid(z[i]);
      h[i] = w[i] * p * (1 - p);
      r[i] = w[i] * (p - y[i]);
    }
    const gu = new Float64Array(P);
    const gg = new Float64Array(K);
    const S = new Float64Array(P * P);
    const D = new Float64Array(K).fill(lambda);
    for (let m = 0; m < M; m++) {
      gu[2 * m] = JOINT_EPS * theta[m];
      gu[2 * m + 1] = JOINT_EPS * beta[m];
      S[2 * m * P + 2 * m] = JOINT_EPS;
      S[(2 * m + 1) * P + 2 * m + 1] = JOINT_EPS;
    }
    for (let k = 0; k < K; k++) gg[k] = lambda * gamma[k];
    for (let i = 0; i < n; i++) {
      if (w[i] === 0) continue;
      const m = model[i], k = instruction[i];
      gu[2 * m] += r[i];
      gu[2 * m + 1] += r[i] * t[i];
      gg[k] += r[i];
      D[k] += h[i];
      S[2 * m * P + 2 * m] += h[i];
      S[2 * m * P + 2 * m + 1] += h[i] * t[i];
      S[(2 * m + 1) * P + 2 * m] += h[i] * t[i];
      S[(2 * m + 1) * P + 2 * m + 1] += h[i] * t[i] * t[i];
    }
    let worst = 0;
    for (let j = 0; j < P; j++) worst = Math.max(worst, Math.abs(gu[j]));
    for (let k = 0; k < K; k++) worst = Math.max(worst, Math.abs(gg[k]));
    if (worst / totalW <= tol) {
      converged = true;
      break;
    }
    // Schur complement S - sum_k c_k c_k^T / D_k and its right-hand side gu - sum_k c_k gg_k / D_k
    const rhs = Float64Array.from(gu);
    for (let k = 0; k < K; k++) {
      const rows = byInstr[k];
      if (rows.length === 0 || D[k] <= 0) continue;
      const inv = 1 / D[k];
      for (const a of rows) {
        const ia = 2 * model[a];
        const ca0 = h[a], ca1 = h[a] * t[a];
        rhs[ia] -= ca0 * gg[k] * inv;
        rhs[ia + 1] -= ca1 * gg[k] * inv;
        for (const b of rows) {
          const ib = 2 * model[b];
          const cb0 = h[b], cb1 = h[b] * t[b];
          S[ia * P + ib] -= ca0 * cb0 * inv;
          S[ia * P + ib + 1] -= ca0 * cb1 * inv;
          S[(ia + 1) * P + ib] -= ca1 * cb0 * inv;
          S[(ia + 1) * P + ib + 1] -= ca1 * cb1 * inv;
        }
      }
    }
    const du = solveSpd(Array.from(S), Array.from(rhs));
    if (!du) break;
    const dg = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      let s = gg[k];
      for (const a of byInstr[k]) s -= h[a] * du[2 * model[a]] + h[a] * t[a] * du[2 * model[a] + 1];
      dg[k] = D[k] > 0 ? s / D[k] : 0;
    }
    // backtracking on the objective along the Newton step
    let step = 1;
    let moved = false;
    const th2 = new Float64Array(M), be2 = new Float64Array(M), ga2 = new Float64Array(K), z2 = new Float64Array(n);
    for (let ls = 0; ls < 50; ls++) {
      for (let m = 0; m < M; m++) {
        th2[m] = theta[m] - step * du[2 * m];
        be2[m] = beta[m] - step * du[2 * m + 1];
      }
      for (let k = 0; k < K; k++) ga2[k] = gamma[k] - step * dg[k];
      zAt(th2, be2, ga2, z2);
      const next = objectiveAt(z2, th2, be2, ga2);
      if (next <= objective || (step === 1 && next - objective <= 1e-13 * Math.abs(objective))) {
        theta.set(th2);
        beta.set(be2);
        gamma.set(ga2);
        z.set(z2);
        objective = next;
        moved = true;
        break;
      }
      step /= 2;
    }
    if (!moved) break;
  }
  return { theta, beta, gamma, iterations: it, converged };
}

/**
 * Per-instruction difficulty from a joint fit over models, the way alpaca_eval made its table:
 *   logit P(model m wins on instruction x) = theta_m + beta_m tanh(delta_mx / sd_m) + gamma_x
 * with delta = len(output_1) - len(output_2) and sd_m each model's sample std, as in the per-model fit.
 * gamma gets a ridge penalty (alpaca_eval used L1 on everything; a ridge keeps the Newton steps exact), its
 * strength chosen among logspace(-2, 2, 9) by 5-fold GroupKFold over the annotations on the held-out
 * log-loss, then refit. difficulty_x = gamma_x shifted to mean 0 (the model terms absorb the shift).
 */
export function estimateDifficulty(
  models: readonly ModelAnnotations[], opts: { lambdas?: readonly number[]; nFolds?: number; tol?: number } = {},
): DifficultyEstimate {
  if (models.length < 2) throw new Error(`estimating difficulty needs at least 2 models' annotations, got ${models.length}`);
  const names = new Set<string>();
  for (const m of models) {
    if (names.has(m.name)) throw new Error(`model ${m.name} appears twice among the annotations`);
    names.add(m.name);
  }
  const allKeys: string[] = [];
  const keyIndex = new Map<string, number>();
  for (const m of models) {
    for (const k of m.keys) {
      if (keyIndex.has(k)) continue;
      keyIndex.set(k, allKeys.length);
      allKeys.push(k);
    }
  }
  // AlpacaEval's instructions keep alpaca_eval's index; others keep their order of first appearance
  const ae = alpacaEval2();
  const aePos = allKeys.map((k) => ae.positionOf.get(instructionFingerprint(k)));
  const useAeIndex = aePos.every((p) => p !== undefined);

  const M = models.length;
  const K = allKeys.length;
  const model: number[] = [], instruction: number[] = [], tv: number[] = [], y: number[] = [];
  const nModels = new Array<number>(K).fill(0);
  models.forEach((m, mi) => {
    const n = m.keys.length;
    if (m.scores.length !== n || m.referenceLengths.length !== n || m.modelLengths.length !== n) throw new Error(`${m.name}: columns of different lengths`);
    const delta = m.referenceLengths.map((r, i) => r - m.modelLengths[i]);
    const sd = n > 1 ? std(delta, 1) : NaN;
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(m.scores[i])) continue;
      const ki = keyIndex.get(m.keys[i])!;
      if (seen.has(ki)) throw new Error(`${m.name}: instruction ${shorten(m.keys[i])} appears twice`);
      seen.add(ki);
      nModels[ki]++;
      model.push(mi);
      instruction.push(ki);
      tv.push(Number.isFinite(sd) && sd > 0 ? Math.tanh(delta[i] / sd) : 0);
      y.push(m.scores[i]);
    }
  });
  const n = y.length;
  if (n === 0) throw new Error('estimating difficulty: no annotated rows');
  const data: JointData = {
    nModels: M, nInstructions: K, model: Int32Array.from(model), instruction: Int32Array.from(instruction),
    t: Float64Array.from(tv), y: Float64Array.from(y),
  };
  const lambdas = [...(opts.lambdas ?? logspace(-2, 2, 9))];
  const nFolds = opts.nFolds ?? 5;
  const folds = groupKFold(n, nFolds);
  const ones = new Float64Array(n).fill(1);
  const foldLoss: number[][] = [];
  let converged = true;
  const q = new Float64Array(n);
  // from the strongest penalty to the weakest, each fit starting from the previous one
  const order = lambdas.map((_, i) => i).sort((a, b) => lambdas[b] - lambdas[a]);
  for (let f = 0; f < nFolds; f++) {
    const wTrain = new Float64Array(n);
    const test: number[] = [];
    for (let i = 0; i < n; i++) {
      if (folds[i] === f) test.push(i);
      else wTrain[i] = 1;
    }
    const losses = new Array<number>(lambdas.length);
    let prev: JointFit | undefined;
    for (const li of order) {
      const fit = fitJoint(data, lambdas[li], wTrain, prev, opts.tol);
      converged &&= fit.converged;
      prev = fit;
      for (const i of test) q[i] = sigmoid(fit.theta[model[i]] + fit.beta[model[i]] * tv[i] + fit.gamma[instruction[i]]);
      losses[li] = weightedLogLoss(data.y, q, ones, test);
    }
    foldLoss.push(losses);
  }
  const totalLoss = lambdas.map((_, li) => foldLoss.reduce((s, row) => s + row[li], 0));
  let best = 0;
  for (let li = 1; li < lambdas.length; li++) if (totalLoss[li] < totalLoss[best]) best = li;
  const fit = fitJoint(data, lambdas[best], ones, undefined, opts.tol);
  converged &&= fit.converged;

  // fix the gauge exactly (the ridge nearly does): difficulty averages 0, the model terms take the shift
  const centre = fit.gamma.reduce((s, v) => s + v, 0) / K;
  for (let k = 0; k < K; k++) fit.gamma[k] -= centre;
  for (let m = 0; m < M; m++) fit.theta[m] += centre;
  const rows = allKeys.map((k, i) => ({ index: useAeIndex ? aePos[i]! : i, instruction: k, difficulty: fit.gamma[i], n_models: nModels[i] }));
  rows.sort((p, q2) => p.index - q2.index);
  const byInstruction = new Map(rows.map((r) => [r.instruction, r.difficulty]));
  const contiguous = rows.every((r, i) => r.index === i);
  const table: DifficultyTable = {
    source: `estimated from ${M} models`,
    byInstruction,
    ...(contiguous ? { byIndex: rows.map((r) => r.difficulty) } : {}),
  };
  return {
    rows, table, models: models.map((m) => m.name),
    model_terms: models.map((m, i) => ({ name: m.name, theta: fit.theta[i], beta: fit.beta[i] })),
    lambda: lambdas[best],
    cv: { lambdas, total_loss: totalLoss }, converged, n_rows: n,
  };
}
