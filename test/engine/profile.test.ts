// The kernel profiler: the table's kernel times add up to the measured step, FLOP counts are exact for the
// GEMMs, nothing is recorded when off, and the trace is valid trace-event JSON with the expected tracks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../ts/engine/index.ts';
import { native } from '../../ts/engine/native.ts';
import { formatProfileTable, profilingMode, resetProfile, setProfiling, type TraceFile } from '../../ts/engine/profile.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cfg = { vocab_size: 512, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 64 };
const B = 4, T = 64;
function batch() {
  const tokens = new Int32Array(B * T), targets = new Int32Array(B * T), weights = new Float32Array(B * T).fill(1 / (B * T));
  for (let i = 0; i < B * T; i++) { tokens[i] = (i * 37) % cfg.vocab_size; targets[i] = (i * 37 + 11) % cfg.vocab_size; }
  return { tokens, targets, weights, batch: B, seqLen: T, numTargets: B * T };
}

test('off: nothing is recorded, profile() says how to turn it on', async () => {
  setProfiling('off');
  resetProfile();
  const engine = await Engine.create({ threads: 2 });
  const model = engine.createModel(cfg);
  await engine.sftStep(model, batch(), engine.createOptimizer(model, { lr: 1e-3 }));
  assert.is(native.profiler.snapshot().rows.length, 0);
  try {
    await engine.profile();
    assert.unreachable('profile() with profiling off');
  } catch (e) {
    assert.match((e as Error).message, /profiling is off/);
  }
  assert.throws(() => setProfiling('loud' as any), /off, aggregate or trace/);
});

test("the table's kernel times add up to the measured step (within 10%), GEMM FLOPs are exact", async () => {
  const engine = await Engine.create({ threads: 2, profile: true });
  assert.is(profilingMode(), 'aggregate');
  const model = engine.createModel(cfg);
  const opt = engine.createOptimizer(model, { lr: 1e-3 });
  const b = batch();
  await engine.sftStep(model, b, opt);  // warm-up: allocation of activations
  // Step by step: on a machine shared with other work, a step may wait for a core between its native
  // jobs (time no kernel accounts for); the least disturbed step shows what the table covers.
  const ratios: string[] = [];
  let best = 0;
  for (let i = 0; i < 5; i++) {
    engine.resetProfile();
    const t = performance.now();
    await engine.sftStep(model, b, opt);
    const wallMs = performance.now() - t;
    const { kernelMs } = await engine.profile();
    assert.ok(kernelMs <= wallMs * 1.0001, `kernels ${kernelMs} ms within the step's ${wallMs} ms`);
    best = Math.max(best, kernelMs / wallMs);
    ratios.push(`${kernelMs.toFixed(1)}/${wallMs.toFixed(1)} ms`);
  }
  assert.ok(best > 0.9, `kernel time over measured step time: ${ratios.join(', ')}`);
  engine.resetProfile();
  const steps = 4;
  for (let i = 0; i < steps; i++) await engine.sftStep(model, b, opt);
  const table = await engine.profile({ reset: true });
  const shares = table.rows.reduce((s, r) => s + r.share, 0);
  assert.ok(Math.abs(shares - 1) < 1e-9, `shares sum to ${shares}`);
  // Every layer's up projection backward (dW): [I, C] += dup^T [BT, I]^T x [BT, C], 2*I*C*BT FLOPs a call.
  const up = table.rows.find((r) => r.kernel === 'gemm' && r.op === 'up_proj.dw');
  assert.ok(up, 'a gemm row labelled up_proj.dw');
  assert.is(up!.calls, steps * cfg.num_hidden_layers);
  assert.is(up!.shape, `${cfg.intermediate_size}x${cfg.hidden_size}x${B * T} TN +=`);
  assert.is(up!.gflops * up!.totalMs * 1e6, up!.calls * 2 * cfg.intermediate_size * cfg.hidden_size * B * T);
  for (const name of ['attention_forward', 'attention_backward', 'adamw', 'grad_norm', 'zero_grad', 'rmsnorm_backward', 'logsoftmax_forward'])
    assert.ok(table.rows.some((r) => r.kernel === name), `a row for ${name}`);
  assert.ok(table.peaks.fmaGflops > 0 && table.peaks.memGbps > 0, 'measured peaks');
  assert.equal(table.jobs.map((j) => j.name).sort(), ['adamw.step', 'model.forwardBackward']);
  assert.equal(table.phases.map((p) => [p.name, p.calls]), [['engine.sftStep', steps]]);
  const text = formatProfileTable(table);
  assert.match(text, /up_proj\.dw/);
  assert.match(text, /GFLOP\/s/);
  setProfiling('off');
});

test('trace: valid trace-event JSON; phases, async jobs and native kernels on their own tracks', async () => {
  const engine = await Engine.create({ threads: 2, profile: 'trace' });
  engine.resetProfile();
  const model = engine.createModel(cfg);
  const opt = engine.createOptimizer(model, { lr: 1e-3 });
  await engine.phase('optimizer', () => engine.sftStep(model, batch(), opt));
  await engine.phase('rollout', () => engine.generate(model, [[1, 2, 3], [4, 5]], { n: 2, maxNewTokens: 4 }));
  const partial = batch();
  partial.targets.fill(-1, 0, T);  // a prompt row: the LM head runs on the gathered target rows
  await engine.forward(model, partial.tokens, { batch: B, targets: partial.targets, logits: false });
  const dir = mkdtempSync(join(tmpdir(), 'farm-trace-'));
  try {
    const path = join(dir, 'trace.json');
    engine.writeTrace(path);
    const trace = JSON.parse(readFileSync(path, 'utf8')) as TraceFile;
    assert.ok(Array.isArray(trace.traceEvents) && trace.traceEvents.length > 50);
    const ev = trace.traceEvents;
    for (const e of ev) {
      assert.ok(typeof e.name === 'string' && typeof e.ph === 'string' && Number.isInteger(e.pid), JSON.stringify(e));
      if (e.ph !== 'M') assert.ok(Number.isFinite(e.ts) && e.ts! >= 0, `ts of ${JSON.stringify(e)}`);
      if (e.ph === 'X') assert.ok(Number.isFinite(e.dur) && e.dur! >= 0, `dur of ${JSON.stringify(e)}`);
    }
    const trackName = new Map(ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [e.tid, String(e.args!.name)]));
    const tidOf = (re: RegExp) => [...trackName].find(([, n]) => re.test(n))?.[0];
    const phases = tidOf(/^JS phases$/), asyncT = tidOf(/^async native jobs/), worker = tidOf(/^native worker thread/);
    assert.ok(phases !== undefined && asyncT !== undefined && worker !== undefined, `tracks: ${[...trackName.values()].join(', ')}`);
    const on = (tid: number | undefined) => ev.filter((e) => e.tid === tid && e.ph === 'X');
    // JS phases: the user's and the engine's own, nested.
    const pnames = on(phases).map((e) => e.name);
    for (const n of ['optimizer', 'rollout', 'engine.sftStep', 'engine.generate']) assert.ok(pnames.includes(n), `phase ${n} in ${pnames}`);
    // Async jobs: begin/end pairs with matching ids on their track.
    const asyncEv = ev.filter((e) => e.ph === 'b' || e.ph === 'e');
    assert.ok(asyncEv.length >= 8 && asyncEv.every((e) => e.tid === asyncT && e.cat === 'async'));
    const open = new Map<string, number>();
    for (const e of asyncEv) {
      if (e.ph === 'b') open.set(e.id!, e.ts!);
      else { assert.ok(open.has(e.id!), `end without begin: ${e.id}`); assert.ok(e.ts! >= open.get(e.id!)!); open.delete(e.id!); }
    }
    assert.is(open.size, 0);
    assert.ok(asyncEv.some((e) => e.name === 'model.forwardBackward') && asyncEv.some((e) => e.name === 'session.sample'));
    // The worker track: jobs containing kernels; every kernel lies inside a job.
    const jobs = on(worker).filter((e) => e.cat === 'job'), kernels = on(worker).filter((e) => e.cat === 'kernel');
    assert.ok(jobs.length >= 4 && kernels.length > 20);
    const eps = 1;  // microseconds: a kernel's clock reads happen inside its job's
    for (const k of kernels)
      assert.ok(jobs.some((j) => k.ts! >= j.ts! - eps && k.ts! + k.dur! <= j.ts! + j.dur! + eps), `kernel ${k.name} at ${k.ts} outside every job`);
    // Kernels are leaves: on one thread they never overlap (a scope around other kernels would count twice).
    const sorted = [...kernels].sort((x, y) => x.ts! - y.ts!);
    for (let i = 1; i < sorted.length; i++)
      assert.ok(sorted[i].ts! >= sorted[i - 1].ts! + sorted[i - 1].dur! - eps, `${sorted[i].name} overlaps ${sorted[i - 1].name}`);
    const g = kernels.find((k) => k.name === 'gemm q_proj');
    assert.ok(g && typeof g.args!.shape === 'string' && Number(g.args!['GFLOP/s']) > 0 && g.args!.layer === 0);
    assert.ok(kernels.some((k) => k.name.startsWith('decode.linear')), 'decode kernels traced');
    // The sync native call on the JS thread (zeroGrad) has a track of its own.
    const jsNative = tidOf(/^JS main thread/);
    assert.ok(jsNative !== undefined && on(jsNative).some((e) => e.name === 'zero_grad'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    setProfiling('off');
  }
});

test('FARM_TRACE=file writes the trace at exit; FARM_PROFILE=1 prints the table to stderr', () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-trace-env-'));
  try {
    const script = join(dir, 'run.mts');
    writeFileSync(script, `
      import { Engine } from ${JSON.stringify(join(root, 'ts/engine/index.ts'))};
      const engine = await Engine.create({ threads: 1 });
      const m = engine.createModel(${JSON.stringify(cfg)});
      await engine.forward(m, [[1, 2, 3, 4]]);
    `);
    const path = join(dir, 'out.json');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8', env: { ...process.env, FARM_TRACE: path } });
    assert.is(r.status, 0, r.stderr);
    assert.ok(existsSync(path), 'trace file written');
    const t = JSON.parse(readFileSync(path, 'utf8')) as TraceFile;
    assert.ok(t.traceEvents.some((e) => e.name === 'model.forward' && e.ph === 'X'));
    assert.match(r.stderr, /trace written to/);
    const p = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, encoding: 'utf8', env: { ...process.env, FARM_PROFILE: '1' } });
    assert.is(p.status, 0, p.stderr);
    assert.match(p.stderr, /farm profile \(FARM_PROFILE=1\)/);
    assert.match(p.stderr, /gemm\s+q_proj/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('farm profile <workload> prints the table of a bench workload (and --json)', () => {
  const cli = join(root, 'ts/cli/main.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'profile', 'forward', '--reps', '1', '--warmup', '0', '--json'], { cwd: root, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.workload, 'forward');
  assert.ok(out.rows.some((row: any) => row.kernel === 'gemm' && row.op === 'lm_head' && row.shape.startsWith('2048x4096x256')));
  assert.ok(out.kernelShareOfWall > 0.5 && out.kernelShareOfWall <= 1.0001, `kernel share ${out.kernelShareOfWall}`);
  const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, 'profile', 'nope'], { cwd: root, encoding: 'utf8' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /unknown workload "nope"; known: train-step, forward, sample/);
});

test('profiler bindings check their arguments', async () => {
  assert.throws(() => native.profiler.setMode(1), /profiler mode must be an object/);
  assert.throws(() => native.profiler.readGbps({ bytes: 10 }), /bytes must be in \[4096/);
  assert.throws(() => native.profiler.peaks({ threads: 0 }), /threads must be in \[1, 1024\]/);
  assert.throws(() => native.profiler.setMode({ trace: 'yes' }), /trace must be a boolean/);
});

test.run();
