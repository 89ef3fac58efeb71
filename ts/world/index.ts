// The embedded farm world: a seeded knowledge base, task families whose instructions can be parsed back
// from text, a gold grader, a human panel and programmatic responders. No engine imports here.
import { FAMILIES } from './families.ts';
import type { Family, Rendered } from './family.ts';
import { gradeTask, type GoldScore } from './grade.ts';
import { generateKnowledgeBase, type KnowledgeBase, type KnowledgeBaseOptions } from './kb.ts';
import { createPanel, type Panel, type PanelOptions } from './panel.ts';
import { createResponder, DEMONSTRATOR, REFERENCE, type Responder, type ResponderOptions } from './policy.ts';
import { Rng } from './rng.ts';

export interface Task extends Rendered {
  family: string;
  /** family-specific parameters (the parsed slots) */
  params: unknown;
}

export interface WorldOptions {
  seed: number;
  kb?: KnowledgeBaseOptions;
  /** options of the default panel (world.panel) */
  panel?: PanelOptions;
}

export interface World {
  readonly seed: number;
  readonly kb: KnowledgeBase;
  readonly families: readonly Family[];
  family(name: string): Family;
  /** A random task (optionally from one family); deterministic in the rng. */
  sampleTask(rng: Rng, family?: string): Task;
  /** The task an (instruction, input) pair states, or null when this world did not write it. */
  parse(instruction: string, input?: string): Task | null;
  /** Like parse, but throws a clear Error for unknown instructions. */
  task(instruction: string, input?: string): Task;
  /** Gold score of a response, from the text alone. Throws for instructions this world does not know. */
  grade(instruction: string, input: string, output: string): GoldScore;
  /** Like grade, but null instead of an Error for unknown instructions. */
  tryGrade(instruction: string, input: string, output: string): GoldScore | null;
  gradeTask(task: Task, output: string): GoldScore;
  /** The default human panel (options from WorldOptions.panel). */
  readonly panel: Panel;
  createPanel(opts?: PanelOptions): Panel;
  demonstrator(seed?: number): Responder;
  referencePolicy(seed?: number): Responder;
  responder(opts?: ResponderOptions): Responder;
}

const normalize = (s: string) => s.replace(/\s+/g, ' ').trim();

export function createWorld(opts: WorldOptions): World {
  if (!Number.isInteger(opts?.seed)) throw new Error(`createWorld: seed must be an integer, got ${opts?.seed}`);
  const seed = opts.seed >>> 0;
  const kb = generateKnowledgeBase(seed, opts.kb);
  const byName = new Map(FAMILIES.map((f) => [f.name, f]));
  const weights = FAMILIES.map((f) => f.weight);
  const cache = new Map<string, Task | null>();

  const family = (name: string): Family => {
    const f = byName.get(name);
    if (!f) throw new Error(`unknown task family "${name}"; known: ${[...byName.keys()].join(', ')}`);
    return f;
  };

  const parse = (instruction: string, input = ''): Task | null => {
    const ins = normalize(instruction);
    const inp = input.trim();
    const key = `${ins}\u0000${inp}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    let found: Task | null = null;
    outer: for (const f of FAMILIES) {
      for (let t = 0; t < f.templates.length; t++) {
        const tp = f.templates[t];
        const m = tp.re.exec(ins);
        if (!m) continue;
        if (!tp.input && inp) continue;
        if (tp.input && !inp) continue;
        const params = f.fromMatch(t, { ...(m.groups ?? {}) }, inp, kb);
        if (params) { found = { family: f.name, instruction: ins, input: inp, params }; break outer; }
      }
    }
    if (cache.size > 200_000) cache.clear();
    cache.set(key, found);
    return found;
  };

  const task = (instruction: string, input = ''): Task => {
    const t = parse(instruction, input);
    if (!t) {
      const shown = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
      throw new Error(`farm world (seed ${seed}): instruction ${shown(instruction)} with input ${shown(input)} is not a task of this world; world.grade only scores instructions the world generates (use tryGrade to get null instead)`);
    }
    return t;
  };

  const gradeT = (t: Task, output: string) => gradeTask(family(t.family), t.params, kb, output);

  const world: World = {
    seed,
    kb,
    families: FAMILIES,
    family,
    sampleTask(rng, fam) {
      const f = fam ? family(fam) : FAMILIES[rng.weighted(weights)];
      const params = f.sample(rng, kb);
      const r = f.render(params, kb);
      return { family: f.name, instruction: r.instruction, input: r.input, params };
    },
    parse,
    task,
    grade: (instruction, input, output) => gradeT(task(instruction, input), output),
    tryGrade(instruction, input, output) {
      const t = parse(instruction, input);
      return t ? gradeT(t, output) : null;
    },
    gradeTask: gradeT,
    get panel() {
      return defaultPanel();
    },
    createPanel: (o) => createPanel(world, o),
    demonstrator: (s = 0) => createResponder(world, { ...DEMONSTRATOR, seed: s }),
    referencePolicy: (s = 0) => createResponder(world, { ...REFERENCE, seed: s }),
    responder: (o) => createResponder(world, o),
  };
  let panel: Panel | null = null;
  const defaultPanel = () => (panel ??= createPanel(world, opts.panel));
  return world;
}

export { FAMILIES } from './families.ts';
export type { Family, Flaws, CheckResult } from './family.ts';
export { GOLD_WEIGHTS, FEATURE_NAMES, combine, type GoldScore } from './grade.ts';
export { createPanel, PANEL_DEFAULTS, type Panel, type PanelOptions, type PanelPair, type PanelPreference, type Rater } from './panel.ts';
export { createResponder, DEMONSTRATOR, REFERENCE, type Responder, type ResponderOptions } from './policy.ts';
export { Rng, hashString, hashParts } from './rng.ts';
export { measureCalibration, sampleMixedPairs, type CalibrationReport, type MixedPair, type MixedPairOptions } from './calibration.ts';
export type { KnowledgeBase } from './kb.ts';
