// `farm data`: generate the farm world's splits, inspect and validate record files, look at tasks, and
// measure the human panel's calibration.
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  familyMix, generateSplits, panelPreferencePairs, PRESETS, readManifest, readRecords, resolveSizes, SPLIT_NAMES,
  verifyManifest, worldSeedOf, writeSplits, type FileFormat, type RecordKind,
} from '../../data/index.ts';
import { createWorld, type World } from '../../world/index.ts';
import { measureCalibration, sampleMixedPairs } from '../../world/calibration.ts';
import { Rng } from '../../world/rng.ts';

const int = (flag: string, min = 0) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
};

const words = (s: string) => (s.trim() ? s.trim().split(/\s+/).length : 0);
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** instruction, preference or completion, from the first record's fields. */
function sniffKind(file: string): RecordKind {
  if (file.endsWith('.pb')) {
    for (const k of ['instruction', 'preference', 'completion', 'pair'] as const) {
      try { readRecords(file, k); return k; } catch (err) { if (!/holds \w+ records/.test((err as Error).message)) throw err; }
    }
  }
  const text = readFileSync(file, 'utf8');
  if (/"output_1"\s*:/.test(text.slice(0, 20000))) return /"preference"\s*:/.test(text.slice(0, 20000)) ? 'preference' : 'pair';
  if (/"generator"\s*:/.test(text.slice(0, 20000)) && !/"datasplit"\s*:/.test(text.slice(0, 20000))) return 'completion';
  return 'instruction';
}

function recordFiles(paths: string[]): string[] {
  return paths.flatMap((p) => {
    if (!existsSync(p)) throw new InvalidArgumentError(`${p}: no such file or folder`);
    if (existsSync(p) && statSync(p).isDirectory()) {
      const m = join(p, 'manifest.json');
      if (!existsSync(m)) throw new Error(`${p}: a folder without manifest.json; name the files instead`);
      return readManifest(m).files.map((f) => join(p, f.path));
    }
    return [p];
  });
}

/** --seed, else the world_seed of the manifest beside the file (else its seed, for folders written before it existed). */
function worldSeedFor(file: string, fallback: number | undefined): number | undefined {
  if (fallback !== undefined) return fallback;
  const m = join(file, '..', 'manifest.json');
  if (!existsSync(m)) return undefined;
  const man = readManifest(m);
  return man.world_seed ?? man.seed;
}

function fileStats(file: string, world: World | null) {
  const kind = sniffKind(file);
  const records = readRecords(file, kind) as unknown as Record<string, unknown>[];
  const str = (r: Record<string, unknown>, k: string) => (typeof r[k] === 'string' ? (r[k] as string) : '');
  const outputs = kind === 'preference' || kind === 'pair' ? records.flatMap((r) => [str(r, 'output_1'), str(r, 'output_2')]) : records.map((r) => str(r, 'output'));
  const stats: Record<string, unknown> = {
    file,
    kind,
    records: records.length,
    with_input: records.filter((r) => str(r, 'input') !== '').length,
    mean_words: {
      instruction: +mean(records.map((r) => words(str(r, 'instruction')))).toFixed(2),
      input: +mean(records.map((r) => words(str(r, 'input')))).toFixed(2),
      output: +mean(outputs.map(words)).toFixed(2),
    },
  };
  if (world) {
    const fam: Record<string, number> = {};
    const gold: number[] = [];
    let unknown = 0;
    for (const r of records) {
      const t = world.parse(str(r, 'instruction'), str(r, 'input'));
      if (!t) { unknown++; continue; }
      fam[t.family] = (fam[t.family] ?? 0) + 1;
      const outs = kind === 'preference' || kind === 'pair' ? [str(r, 'output_1'), str(r, 'output_2')] : [str(r, 'output')];
      for (const o of outs) gold.push(world.gradeTask(t, o).total);
    }
    stats.families = Object.fromEntries(Object.entries(fam).sort(([a], [b]) => a.localeCompare(b)));
    stats.unknown_instructions = unknown;
    if (gold.length) stats.mean_gold = +mean(gold).toFixed(4);
  } else if (records.some((r) => typeof r.dataset === 'string')) {
    stats.families = familyMix(records as { dataset?: string }[]);
  }
  if (kind === 'preference') {
    const p = records.map((r) => r.preference as number);
    stats.preference = { '1': p.filter((x) => x === 1).length, '2': p.filter((x) => x === 2).length, '0': p.filter((x) => x === 0).length, soft: p.filter((x) => x !== 0 && x !== 1 && x !== 2).length };
  }
  return stats;
}

export function register(program: Command): void {
  const data = program.command('data').description('farm-world datasets: generate splits, show stats, validate files, sample tasks, calibrate the panel');

  data
    .command('generate', { isDefault: true })
    .description('write the sft / preference / unlabeled / val / eval splits of the farm world (plus manifest.json)')
    .addOption(new Option('--preset <name>', 'split sizes').choices(Object.keys(PRESETS)).default('quick'))
    .option('--seed <n>', 'world seed (knowledge base, instructions, outputs); the same seed gives byte-identical files', int('--seed'), 1)
    .option('--output-dir <dir>', 'output folder (default data/farm)')
    .addOption(new Option('--out <dir>', 'old spelling of --output-dir').hideHelp())
    .option('--force', 'replace the files of a folder that already holds data')
    .addOption(new Option('--format <fmt>', 'file format').choices(['jsonl', 'pb', 'both']).default('jsonl'))
    .option('--panel-pairs <n>', 'also write preference_panel.<ext>: n mixed-quality pairs labelled by the human panel', int('--panel-pairs'), 0)
    .option('--json', 'print the manifest as JSON')
    .action((o: { preset: string; seed: number; outputDir?: string; out?: string; force?: boolean; format: string; panelPairs: number; json?: boolean }) => {
      if (o.out && o.outputDir) throw new InvalidArgumentError('--out is the old spelling of --output-dir: give one');
      const dir = o.outputDir ?? o.out ?? 'data/farm';
      if (existsSync(dir)) {
        if (!statSync(dir).isDirectory()) throw new InvalidArgumentError(`--output-dir ${dir} is a file`);
        const held = readdirSync(dir);
        if (held.length && !o.force) throw new InvalidArgumentError(`--output-dir ${dir} already holds ${held.includes('manifest.json') ? 'a data set (manifest.json)' : `${held.length} files`}; pass --force to replace it, or choose another folder`);
        // --force: the old set's files go (a file the new set does not write would otherwise linger beside it)
        if (o.force && held.includes('manifest.json')) {
          let old: string[] = [];
          try { old = readManifest(join(dir, 'manifest.json')).files.map((f) => f.path); } catch { /* a damaged manifest: overwrite what we write */ }
          for (const f of old) if (!/[\\/]/.test(f)) rmSync(join(dir, f), { force: true });
        }
      }
      const world = createWorld({ seed: o.seed });
      const splits = generateSplits(world, o.preset);
      const formats: FileFormat[] = o.format === 'both' ? ['jsonl', 'pb'] : [o.format as FileFormat];
      const panelPairs = o.panelPairs ? panelPreferencePairs(world, o.panelPairs) : undefined;
      const manifest = writeSplits(dir, splits, {
        seed: o.seed, preset: o.preset, formats, panelPairs,
        command: `farm data generate --preset ${o.preset} --seed ${o.seed} --format ${o.format}${o.panelPairs ? ` --panel-pairs ${o.panelPairs}` : ''}`,
        config: { preset: o.preset, sizes: resolveSizes(o.preset), seed: o.seed, formats, panelPairs: o.panelPairs },
      });
      if (o.json) { console.log(JSON.stringify(manifest, null, 2)); return; }
      console.log(`wrote ${dir} (preset ${o.preset}, world seed ${o.seed})`);
      for (const s of SPLIT_NAMES) console.log(`  ${s.padEnd(10)} ${String(splits[s].length).padStart(6)} records`);
      if (panelPairs) console.log(`  ${'panel'.padEnd(10)} ${String(panelPairs.length).padStart(6)} preference pairs`);
      const mix = familyMix(SPLIT_NAMES.flatMap((s) => splits[s]));
      const total = Object.values(mix).reduce((a, b) => a + b, 0);
      console.log('task mix:');
      for (const [f, n] of Object.entries(mix)) console.log(`  ${f.padEnd(10)} ${String(n).padStart(6)}  ${((100 * n) / total).toFixed(1)}%`);
    });

  data
    .command('stats')
    .description('record counts, lengths, task mix and mean gold score of record files (or a generated folder)')
    .argument('<paths...>', 'record files (.jsonl, .json, .pb) or folders with a manifest.json')
    .option('--seed <n>', 'world seed for task families and gold scores (default: from the manifest beside the file)', int('--seed'))
    .option('--json', 'one JSON object per file')
    .action((paths: string[], o: { seed?: number; json?: boolean }) => {
      for (const file of recordFiles(paths)) {
        const seed = worldSeedFor(file, o.seed);
        const s = fileStats(file, seed === undefined ? null : createWorld({ seed }));
        if (o.json) { console.log(JSON.stringify(s)); continue; }
        const mw = s.mean_words as Record<string, number>;
        console.log(`${basename(file)}: ${s.records} ${s.kind} records, ${s.with_input} with input; mean words instruction ${mw.instruction}, input ${mw.input}, output ${mw.output}${s.mean_gold !== undefined ? `; mean gold ${s.mean_gold}` : ''}`);
        if (s.families) console.log(`  families: ${Object.entries(s.families as Record<string, number>).map(([f, n]) => `${f} ${n}`).join(', ')}`);
        if (s.preference) console.log(`  preferences: ${JSON.stringify(s.preference)}`);
      }
    });

  data
    .command('validate')
    .description('read and validate record files (every record) or a manifest (hashes and counts too); exit 1 on the first error')
    .argument('<paths...>', 'record files or manifest.json / folders')
    .addOption(new Option('--kind <kind>', 'record kind (default: guessed from the file)').choices(['instruction', 'preference', 'completion', 'pair']))
    .option('--json', 'one JSON object per path: {path, ok, files | records, world_seed}')
    .action((paths: string[], o: { kind?: RecordKind; json?: boolean }) => {
      for (const p of paths) {
        const isDir = existsSync(p) && statSync(p).isDirectory();
        if (isDir || basename(p).startsWith('manifest.')) {
          const m = verifyManifest(isDir ? join(p, 'manifest.json') : p);
          if (o.json) console.log(JSON.stringify({ path: p, ok: true, files: m.files.length, ...(m.world_seed !== undefined ? { world_seed: m.world_seed } : {}) }));
          else console.log(`ok ${p}: ${m.files.length} files match the manifest${m.world_seed !== undefined ? ` (world seed ${m.world_seed})` : ''}`);
        } else {
          const records = readRecords(p, o.kind ?? sniffKind(p));
          const ws = worldSeedOf(records, p);
          if (o.json) console.log(JSON.stringify({ path: p, ok: true, records: records.length, ...(ws !== undefined ? { world_seed: ws } : {}) }));
          else console.log(`ok ${p}: ${records.length} records${ws !== undefined ? ` (world seed ${ws})` : ''}`);
        }
      }
    });

  data
    .command('sample')
    .description('print generated tasks with demonstrator and reference responses and their gold scores')
    .option('--seed <n>', 'world seed', int('--seed'), 1)
    .option('-n, --count <n>', 'tasks to show', int('--count', 1), 5)
    .option('--family <name>', 'only this task family')
    .option('--json', 'one JSON object per task')
    .action((o: { seed: number; count: number; family?: string; json?: boolean }) => {
      const world = createWorld({ seed: o.seed });
      const rng = Rng.from(o.seed, 'cli-sample');
      const demo = world.demonstrator(0);
      const ref = world.referencePolicy(0);
      for (let i = 0; i < o.count; i++) {
        const t = world.sampleTask(rng, o.family);
        const outs = { demonstrator: demo.respondTask(t, i), reference: ref.respondTask(t, i) };
        const rows = Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, { output: v, gold: world.gradeTask(t, v) }]));
        if (o.json) { console.log(JSON.stringify({ family: t.family, instruction: t.instruction, input: t.input, ...rows })); continue; }
        console.log(`[${t.family}] ${t.instruction}${t.input ? `\n  input: ${t.input}` : ''}`);
        for (const [k, r] of Object.entries(rows)) {
          const f = Object.entries(r.gold.features).map(([n, v]) => `${n} ${v.toFixed(2)}`).join(', ');
          console.log(`  ${k}: ${JSON.stringify(r.output)}\n    gold ${r.gold.total.toFixed(3)} (${f})`);
        }
      }
    });

  data
    .command('calibrate')
    .description("measure the human panel on mixed-quality pairs: leave-one-out agreement and P(prefer longer)")
    .option('--seed <n>', 'world seed', int('--seed'), 1)
    .option('--pairs <n>', 'pairs to sample', int('--pairs', 1), 3000)
    .option('--panel-seed <n>', 'panel seed', int('--panel-seed'), 0)
    .option('--json', 'print the report as JSON')
    .action((o: { seed: number; pairs: number; panelSeed: number; json?: boolean }) => {
      const world = createWorld({ seed: o.seed });
      const r = measureCalibration(world, sampleMixedPairs(world, o.pairs), { seed: o.panelSeed });
      if (o.json) { console.log(JSON.stringify(r)); return; }
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      console.log(`${r.pairs} pairs, panel ${JSON.stringify(r.panel)}`);
      console.log(`  leave-one-out agreement (${r.looRaters} raters): ${pct(r.looAgreement)}   (humans 65.7%)`);
      console.log(`  P(majority prefers longer):        ${pct(r.pLongerMajority)}   (humans 64%)`);
      console.log(`  P(rater prefers longer):           ${pct(r.pLongerRater)}`);
      console.log(`  P(rater prefers first):            ${pct(r.pFirstRater)}   (humans 52%)`);
      console.log(`  majority agrees with gold:         ${pct(r.majorityGoldAgreement)}`);
      console.log(`  rater agrees with gold:            ${pct(r.raterGoldAgreement)}`);
    });
}
