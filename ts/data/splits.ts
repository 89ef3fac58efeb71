// AlpacaFarm-style splits of farm-world instructions: sft (demonstrations), preference (instructions for
// pairwise feedback), unlabeled (for PPO, best-of-n, expert iteration, Quark), val, and eval (with the
// reference policy's outputs, the Davinci-003 role). Disjoint (instruction, input) pairs across splits.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Task, World } from '../world/index.ts';
import { sampleMixedPairs } from '../world/calibration.ts';
import { Rng } from '../world/rng.ts';
import { writeManifest, writeRecords, type FileFormat } from './io.ts';
import { worldSeedOf, type FileEntry, type InstructionRecord, type PreferenceRecord, type RunManifest } from './records.ts';

export const SPLIT_NAMES = ['sft', 'preference', 'unlabeled', 'val', 'eval'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];
export type SplitSizes = Record<SplitName, number>;
export type Splits = Record<SplitName, InstructionRecord[]>;

export const PRESETS: Readonly<Record<string, Readonly<SplitSizes>>> = {
  /** `npm start` and `farm validate --preset quick`: AlpacaFarm's 10k SFT demonstrations, half its preference pairs
   * (fewer leave a small reward model near chance on within-prompt quality), the paper's 805 eval instructions */
  quick: { sft: 10000, preference: 10000, unlabeled: 1000, val: 500, eval: 805 },
  /** the paper's SFT and preference splits, a quarter of its unlabeled */
  standard: { sft: 10000, preference: 20000, unlabeled: 5000, val: 1000, eval: 805 },
  /** AlpacaFarm's sizes */
  paper: { sft: 10000, preference: 20000, unlabeled: 20000, val: 2000, eval: 805 },
};

const ORDER: readonly SplitName[] = ['eval', 'val', 'sft', 'preference', 'unlabeled'];

export function resolveSizes(preset: string | Partial<SplitSizes>): SplitSizes {
  if (typeof preset === 'string') {
    const p = PRESETS[preset];
    if (!p) throw new Error(`unknown preset "${preset}"; known: ${Object.keys(PRESETS).join(', ')}`);
    return { ...p };
  }
  const out = { ...PRESETS.quick, ...preset };
  for (const s of SPLIT_NAMES) if (!Number.isInteger(out[s]) || out[s] < 0) throw new Error(`split size ${s} must be a non-negative integer, got ${out[s]}`);
  return out;
}

export interface SplitOptions {
  /** seed of the instruction draw (the world seed fixes the KB); default 0 */
  seed?: number;
  /** demonstrator seed for sft/preference/unlabeled/val outputs; default 0 */
  demonstratorSeed?: number;
  /** reference policy seed for eval outputs; default 0 */
  referenceSeed?: number;
}

export function generateSplits(world: World, preset: string | Partial<SplitSizes> = 'quick', opts: SplitOptions = {}): Splits {
  const sizes = resolveSizes(preset);
  const rng = Rng.from(world.seed, 'splits', opts.seed ?? 0);
  const demo = world.demonstrator(opts.demonstratorSeed ?? 0);
  const ref = world.referencePolicy(opts.referenceSeed ?? 0);
  // Draw every distinct task first, then deal them out in a seeded random order, so that each split
  // has the same family mix even where small families run out of distinct instructions.
  const total = ORDER.reduce((n, s) => n + sizes[s], 0);
  const seen = new Set<string>();
  const tasks: Task[] = [];
  let misses = 0;
  while (tasks.length < total) {
    const task = world.sampleTask(rng);
    const key = `${task.instruction}\u0000${task.input}`;
    if (seen.has(key)) {
      if (++misses > 1000 + 20 * total) throw new Error(`the world ran out of distinct instructions (${tasks.length} of ${total})`);
      continue;
    }
    seen.add(key);
    tasks.push(task);
  }
  const dealt = rng.shuffle(tasks);
  const splits = Object.fromEntries(SPLIT_NAMES.map((s) => [s, [] as InstructionRecord[]])) as Splits;
  let at = 0;
  for (const split of ORDER) {
    const responder = split === 'eval' ? ref : demo;
    for (const task of dealt.slice(at, at + sizes[split])) {
      splits[split].push({
        instruction: task.instruction,
        input: task.input,
        output: responder.respondTask(task),
        generator: responder.name,
        dataset: task.family,
        datasplit: split,
        world_seed: world.seed,
      });
    }
    at += sizes[split];
  }
  return splits;
}

/** Records per task family (the `dataset` field), sorted by name. */
export function familyMix(records: readonly { dataset?: string }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[r.dataset ?? '?'] = (out[r.dataset ?? '?'] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Pairs of mixed-quality responses to the given instructions, labelled by the world's human panel
 * (majority vote): the analogue of AlpacaFarm's human preference data.
 */
export function panelPreferencePairs(world: World, n: number, opts: { seed?: number } = {}): PreferenceRecord[] {
  const panel = world.panel;
  return sampleMixedPairs(world, n, { seed: opts.seed }).map((p) => ({
    instruction: p.instruction,
    input: p.input,
    output_1: p.output_1,
    output_2: p.output_2,
    preference: panel.majority(p),
    annotator: 'farm-panel',
    world_seed: world.seed,
  }));
}

export interface WriteSplitsOptions {
  formats?: FileFormat[];
  seed: number;
  preset: string;
  /** extra panel-labelled preference pairs to write (0: none) */
  panelPairs?: PreferenceRecord[];
  command?: string;
  config?: Record<string, unknown>;
}

/** Writes <split>.<ext> for each split and format plus manifest.json; byte-identical for the same inputs. */
export function writeSplits(dir: string, splits: Splits, opts: WriteSplitsOptions): RunManifest {
  mkdirSync(dir, { recursive: true });
  const files: FileEntry[] = [];
  for (const format of opts.formats ?? ['jsonl']) {
    for (const s of SPLIT_NAMES) {
      const e = writeRecords(join(dir, `${s}.${format}`), 'instruction', splits[s]);
      files.push({ ...e, path: `${s}.${format}` });
    }
    if (opts.panelPairs?.length) {
      const e = writeRecords(join(dir, `preference_panel.${format}`), 'preference', opts.panelPairs);
      files.push({ ...e, path: `preference_panel.${format}` });
    }
  }
  const counts: Record<string, number> = {};
  for (const s of SPLIT_NAMES) counts[s] = splits[s].length;
  for (const [f, n] of Object.entries(familyMix(SPLIT_NAMES.flatMap((s) => splits[s])))) counts[`family/${f}`] = n;
  const worldSeed = worldSeedOf(SPLIT_NAMES.flatMap((s) => splits[s]), dir);
  const manifest: RunManifest = {
    name: `farm-data-${opts.preset}-seed${opts.seed}`,
    kind: 'farm-data',
    seed: opts.seed,
    ...(worldSeed !== undefined ? { world_seed: worldSeed } : {}),
    preset: opts.preset,
    command: opts.command ?? '',
    created: '', // left empty: the same seed must give byte-identical folders
    config: opts.config ?? {},
    files,
    counts,
    version: '1',
  };
  writeManifest(join(dir, 'manifest.json'), manifest);
  return manifest;
}
