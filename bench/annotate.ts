// Throughput of the feedback simulator: the farm pool on 20,000 pairs (target >= 20,000 pairs/s, so that the
// simulator is never the bottleneck) and the HTTP judge against a local OpenAI-compatible server at a
// concurrency of 16. Prints one JSON line per figure (medians after a warm-up).
import { performance } from 'node:perf_hooks';
import { createWorld } from '../ts/world/index.ts';
import { createFarmPool, farmPairs, DEFAULT_FLIP_P } from '../ts/feedback/farm.ts';
import { HttpJudge } from '../ts/feedback/http.ts';
import { startFakeServer } from '../test/feedback/fake-judge-server.ts';

const quick = process.argv.includes('--quick');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const emit = (figure: string, value: number, unit: string, config: object, reference?: object) =>
  console.log(JSON.stringify({ bench: 'annotate', figure, value: Number(value.toPrecision(6)), unit, config, ...(reference ? { reference } : {}) }));

const world = createWorld({ seed: 1 });
const nPairs = quick ? 5000 : 20000;
const reps = quick ? 3 : 5;
const warm = farmPairs(world, { n: quick ? 5000 : 20000, seed: 101 });
const pairs = farmPairs(world, { n: nPairs, seed: 102 });

for (const [figure, flipP] of [['pool_pairs_per_s', 0], ['pool_train_pairs_per_s', DEFAULT_FLIP_P]] as const) {
  await createFarmPool(createWorld({ seed: 1 }), { seed: 99, flipP }).annotate(warm); // JIT warm-up
  const rates: number[] = [];
  for (let r = 0; r < reps; r++) {
    // A fresh world and pool each time: instructions unseen and the grade memo cold, as for new pairs.
    const fresh = createWorld({ seed: 1 });
    const pool = createFarmPool(fresh, { seed: r, flipP });
    const t0 = performance.now();
    await pool.annotate(pairs);
    rates.push(pairs.length / ((performance.now() - t0) / 1000));
  }
  emit(figure, median(rates), 'pairs/s', { pairs: pairs.length, judges: 12, flipP, reps, world_seed: 1, cold: 'fresh world and pool per repetition' }, { name: 'target (DESIGN.md section 7)', value: 20000, source: 'the simulator must never be the bottleneck' });
}

const server = await startFakeServer();
try {
  const n = quick ? 1000 : 4000;
  const httpPairs = pairs.slice(0, n);
  const judge = () => new HttpJudge({ model: 'bench-judge', baseUrl: server.url, apiKey: 'bench', concurrency: 16, batchSize: 5, cache: null, backoffBaseMs: 10 });
  await judge().annotate(warm.slice(0, 200));
  const rates: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const out = await judge().annotate(httpPairs, { noCache: true });
    const secs = (performance.now() - t0) / 1000;
    if (out.some((a) => a.preference === null)) throw new Error('bench: the local judge left pairs unlabelled');
    rates.push(httpPairs.length / secs);
  }
  emit('http_pairs_per_s', median(rates), 'pairs/s', { pairs: n, batch_size: 5, concurrency: 16, server: 'local node:http OpenAI-compatible server in the same process', reps });
  emit('http_requests_per_s', median(rates) / 5, 'requests/s', { pairs: n, batch_size: 5, concurrency: 16, reps });
} finally {
  await server.close();
}
