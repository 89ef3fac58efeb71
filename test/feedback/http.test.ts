// The HTTP judge against a real local server: requests, batching, parsing, retries, timeouts, limits, cache,
// and the API key staying out of every log, error, annotation and cache file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnnotationCache } from '../../ts/feedback/cache.ts';
import { HttpJudge, JudgeConfigError, softPreference } from '../../ts/feedback/http.ts';
import { backoffDelay, parseRetryAfter, RateLimiter } from '../../ts/feedback/ratelimit.ts';
import type { Pair } from '../../ts/feedback/types.ts';
import { deadUrl, startFakeServer, type FakeServer } from './fake-judge-server.ts';

const KEY = 'sk-test-SECRET-9f8e7d6c5b4a';
let server: FakeServer;
const dir = mkdtempSync(join(tmpdir(), 'farm-http-'));

function pairs(n: number, tag = 'p'): Pair[] {
  // The GOOD output alternates sides so that a judge that ignores content cannot pass.
  return Array.from({ length: n }, (_, i) => ({
    instruction: `Task ${tag}${i}: name a fruit`,
    input: i % 3 === 0 ? `context ${i}` : '',
    output_1: i % 2 === 0 ? `apple GOOD ${i}` : `rock ${i}`,
    output_2: i % 2 === 0 ? `rock ${i}` : `pear GOOD ${i}`,
  }));
}
const expected = (ps: Pair[]) => ps.map((p) => (p.output_1.includes('GOOD') ? 1 : 2));

function judge(extra: Partial<ConstructorParameters<typeof HttpJudge>[0]> = {}, logs: string[] = []) {
  return new HttpJudge({
    model: 'gpt-4o-mini',
    baseUrl: server.url,
    apiKey: KEY,
    backoffBaseMs: 5,
    backoffMaxMs: 40,
    maxRetries: 3,
    timeoutMs: 2000,
    cache: null,
    log: (m) => logs.push(m),
    ...extra,
  });
}

test.before(async () => {
  server = await startFakeServer();
});
test.after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
test.before.each(async () => {
  // Slow answers from a previous test may still be running on the server: let them finish first.
  while (server.inFlight() > 0) await new Promise((r) => setTimeout(r, 10));
  server.requests.length = 0;
  server.behave = null;
  server.maxInFlight = 0;
});

test('batches of 5: correct requests, parsing, usage and cost', async () => {
  const ps = pairs(12);
  const j = judge({ temperature: 0.7, maxTokens: 50, logitBias: { '64': 5 } });
  const out = await j.annotate(ps);
  assert.equal(server.requests.length, 3);
  assert.equal(server.requests.map((r) => r.pairs.length).sort(), [2, 5, 5]);
  const body = server.requests[0].body;
  assert.is(body.model, 'gpt-4o-mini');
  assert.is(body.temperature, 0.7);
  assert.is(body.max_tokens, 50);
  assert.equal(body.logit_bias, { '64': 5 });
  assert.is(body.messages[0].role, 'system');
  assert.is(server.requests[0].authorization, `Bearer ${KEY}`);
  assert.equal(out.map((a) => a.preference), expected(ps));
  assert.ok(out.every((a, i) => a.instruction === ps[i].instruction && a.annotator === 'openai:gpt-4o-mini'));
  const s = j.stats();
  assert.is(s.requests, 3);
  assert.ok(s.promptTokens > 0 && s.completionTokens === 6 * 12);
  // gpt-4o-mini: $0.15 / 1M prompt, $0.60 / 1M completion.
  const cost = (s.promptTokens * 0.15 + s.completionTokens * 0.6) / 1e6;
  assert.ok(Math.abs(s.cost - cost) < 1e-12);
  const perPair = out.reduce((t, a) => t + (a.price_per_example ?? 0), 0);
  assert.ok(Math.abs(perPair - cost) < 1e-12, 'per-pair prices add up to the cost');
  assert.ok(j.priceKnown);
});

test('identical outputs give 0 without a request; duplicates are judged once', async () => {
  const p = pairs(1)[0];
  const same = { ...p, output_2: p.output_1 };
  const out = await judge().annotate([same, p, { ...p }]);
  assert.equal(out.map((a) => a.preference), [0, 1, 1]);
  assert.is(server.requests.length, 1);
  assert.is(server.requests[0].pairs.length, 1);
});

test('a batch with the wrong number of answers yields no labels for that batch only', async () => {
  const ps = pairs(10);
  server.behave = (r) => (r.pairs.some(([a, b]) => /\b3\b/.test(a + b)) ? { answers: ['Request 1: Output (a)', 'Request 2: Output (b)'] } : undefined);
  const logs: string[] = [];
  const out = await judge({}, logs).annotate(ps);
  const bad = out.slice(0, 5);
  const good = out.slice(5);
  assert.ok(bad.every((a) => a.preference === null && /expected 5 answers, got 2/.test(a.error ?? '')));
  assert.equal(good.map((a) => a.preference), expected(ps.slice(5)));
  assert.ok(logs.some((l) => /5 pair\(s\) unlabelled/.test(l)));
});

test('malformed answers give no label', async () => {
  server.behave = () => ({ answers: ['I think both are fine.'] });
  const out = await judge().annotate(pairs(2));
  assert.ok(out.every((a) => a.preference === null && a.raw_completion === 'I think both are fine.'));
  server.behave = () => ({ body: '{"choices": []}' });
  const out2 = await judge({ maxRetries: 1 }).annotate(pairs(2));
  assert.ok(out2.every((a) => a.preference === null && /no choices/.test(a.error ?? '')));
});

test('answers by index may come out of order; duplicates or gaps give no labels', async () => {
  server.behave = (r) => ({ answers: [...r.pairs.map((_, i) => `Request ${i + 1}: Output (a)`)].reverse() });
  const out = await judge().annotate(pairs(3));
  assert.equal(out.map((a) => a.preference), [1, 1, 1]);
  server.behave = () => ({ answers: ['Request 1: Output (a)', 'Request 1: Output (b)', 'Request 3: Output (a)'] });
  const out2 = await judge().annotate(pairs(3));
  assert.ok(out2.every((a) => a.preference === null));
});

test('429 then success: retried with backoff, Retry-After honoured', async () => {
  server.behave = (r) => (r.n === 1 ? { status: 429, headers: { 'retry-after': '0' }, body: '{"error":{"message":"slow down"}}' } : undefined);
  const logs: string[] = [];
  const j = judge({}, logs);
  const ps = pairs(4);
  const out = await j.annotate(ps);
  assert.equal(out.map((a) => a.preference), expected(ps));
  assert.is(server.requests.length, 2);
  assert.is(j.stats().retries, 1);
  assert.ok(logs.some((l) => /retry 1\/3 after HTTP 429/.test(l)));
});

test('500 then success; 500s exhausted leave the batch unlabelled', async () => {
  server.behave = (r) => (r.n <= 2 ? { status: 502 } : undefined);
  const ps = pairs(3);
  const out = await judge().annotate(ps);
  assert.equal(out.map((a) => a.preference), expected(ps));
  server.requests.length = 0;
  server.behave = () => ({ status: 500 });
  const j = judge({ maxRetries: 2 });
  const out2 = await j.annotate(ps);
  assert.is(server.requests.length, 3);
  assert.ok(out2.every((a) => a.preference === null && /HTTP 500.*after 3 tries/.test(a.error ?? '')));
  assert.is(j.stats().failed, 3);
});

test('timeouts: a slow first answer is retried; always slow gives no labels', async () => {
  server.behave = (r) => (r.n === 1 ? { delayMs: 400 } : undefined);
  const ps = pairs(2);
  const out = await judge({ timeoutMs: 100 }).annotate(ps);
  assert.equal(out.map((a) => a.preference), expected(ps));
  assert.is(server.requests.length, 2);
  server.requests.length = 0;
  server.behave = () => ({ delayMs: 300 });
  const out2 = await judge({ timeoutMs: 60, maxRetries: 1 }).annotate(ps);
  assert.ok(out2.every((a) => a.preference === null && /timeout after 60 ms/.test(a.error ?? '')));
});

test('the concurrency limit bounds requests in flight', async () => {
  server.behave = () => ({ delayMs: 30 });
  const ps = pairs(40);
  const out = await judge({ concurrency: 3, batchSize: 2 }).annotate(ps);
  assert.equal(out.map((a) => a.preference), expected(ps));
  assert.is(server.requests.length, 20);
  assert.ok(server.maxInFlight <= 3, `max in flight ${server.maxInFlight}`);
  assert.ok(server.maxInFlight >= 2, 'requests do overlap');
});

test('rate limiter spaces request starts by 60/rpm seconds', async () => {
  let now = 1000;
  const rl = new RateLimiter(120, () => now); // 500 ms apart
  const starts: number[] = [];
  // Requests that find their slot already due start at once; the clock is advanced by hand.
  await rl.wait();
  starts.push(now);
  now += 600;
  await rl.wait();
  starts.push(now);
  assert.equal(starts, [1000, 1600]);
  const rl2 = new RateLimiter(60_000); // 1 ms apart, real clock
  const t0 = Date.now();
  for (let i = 0; i < 5; i++) await rl2.wait();
  assert.ok(Date.now() - t0 >= 3);
});

test('backoff: exponential, jittered, capped; Retry-After parsed', () => {
  assert.is(backoffDelay(0, 100, 10_000, () => 0.5), 100);
  assert.is(backoffDelay(3, 100, 10_000, () => 0.5), 800);
  assert.is(backoffDelay(3, 100, 10_000, () => 0), 400);
  assert.is(backoffDelay(20, 100, 10_000, () => 0.99), 10_000);
  assert.is(backoffDelay(0, 100, 10_000, () => 0.5, 3000), 3000);
  assert.is(parseRetryAfter('2'), 2000);
  assert.is(parseRetryAfter(null), undefined);
  assert.is(parseRetryAfter(new Date(5000).toUTCString(), 3000), 2000);
});

test('the API key never appears in logs, errors, annotations or the cache', async () => {
  const cachePath = join(dir, 'key-check.jsonl');
  const cache = AnnotationCache.open(cachePath);
  const logs: string[] = [];
  // The server echoes the authorization header back in its error bodies, as some proxies do.
  server.behave = (r) => (r.n <= 2 ? { status: 500, body: JSON.stringify({ error: `bad auth ${r.authorization}` }) } : undefined);
  const out = await judge({ cache }, logs).annotate(pairs(3));
  cache.close();
  server.behave = (r) => ({ status: 401, body: `invalid key ${r.authorization}` });
  let message = '';
  try {
    await judge({}, logs).annotate(pairs(1, 'other'));
  } catch (err) {
    assert.instance(err, JudgeConfigError);
    message = `${(err as Error).message}\n${(err as Error).stack}`;
  }
  assert.match(message, /HTTP 401/);
  assert.match(message, /check FARM_JUDGE_API_KEY/);
  const everything = [logs.join('\n'), message, JSON.stringify(out), readFileSync(cachePath, 'utf8')].join('\n');
  assert.ok(logs.some((l) => l.includes('bad auth Bearer ***')), 'the echoed key was redacted');
  assert.not.ok(everything.includes(KEY));
  assert.not.ok(everything.includes('SECRET'));
});

test('unreachable endpoint and bad configuration give clear errors', async () => {
  const url = await deadUrl();
  const j = new HttpJudge({ model: 'x', baseUrl: url, apiKey: KEY, maxRetries: 1, backoffBaseMs: 1, cache: null });
  await j.annotate(pairs(1)).then(
    () => assert.unreachable('should throw'),
    (err: Error) => {
      assert.instance(err, JudgeConfigError);
      assert.ok(err.message.includes(`cannot reach ${url}/chat/completions: ECONNREFUSED (after 2 tries)`), err.message);
      assert.not.ok(err.message.includes(KEY));
    },
  );
  assert.throws(() => new HttpJudge({ model: 'x', baseUrl: 'not a url' }), /invalid base URL/);
  assert.throws(() => new HttpJudge({ model: 'x', template: 'no-such-template' }), /unknown prompt template/);
  assert.throws(() => new HttpJudge({ model: 'x', template: 'pairwise_single', batchSize: 4 }), /one pair per request/);
  await judge().annotate([{ instruction: 'a', output_1: 'b' } as unknown as Pair]).then(
    () => assert.unreachable('should throw'),
    (err: Error) => assert.match(err.message, /pair 0: missing field "output_2"/),
  );
});

test('logit_bias rejected by the endpoint is dropped once and the run goes on', async () => {
  server.behave = (r) => (r.body.logit_bias ? { status: 400, body: '{"error":{"message":"logit_bias is not supported"}}' } : undefined);
  const logs: string[] = [];
  const ps = pairs(6);
  const out = await judge({ logitBias: { '1': 1 } }, logs).annotate(ps);
  assert.equal(out.map((a) => a.preference), expected(ps));
  assert.ok(logs.some((l) => /rejects logit_bias/.test(l)));
});

test('cache: second run sends no request; noCache bypasses; failures are not cached', async () => {
  const path = join(dir, 'cache.jsonl');
  const ps = pairs(7);
  server.behave = (r) => (r.pairs.some(([a, b]) => / 5$/.test(a)) ? { answers: ['nonsense'] } : undefined);
  const c1 = AnnotationCache.open(path);
  const out1 = await judge({ cache: c1 }).annotate(ps);
  c1.close();
  assert.is(out1.filter((a) => a.preference === null).length, 2);
  server.requests.length = 0;
  server.behave = null;
  const c2 = AnnotationCache.open(path);
  const j2 = judge({ cache: c2 });
  const out2 = await j2.annotate(ps);
  assert.equal(out2.map((a) => a.preference), expected(ps));
  assert.is(server.requests.length, 1, 'only the failed batch is asked again');
  assert.is(j2.stats().cacheHits, 5);
  server.requests.length = 0;
  await j2.annotate(ps, { noCache: true });
  assert.is(server.requests.length, 2);
  // A different prompt or temperature is a different judge: no stale hits.
  server.requests.length = 0;
  await judge({ cache: c2, temperature: 1 }).annotate(ps);
  assert.is(server.requests.length, 2);
  c2.close();
});

test('soft preferences from token log-probabilities', async () => {
  const ps = pairs(2);
  const out = await judge({ soft: true }).annotate(ps);
  assert.is(server.requests[0].body.logprobs, true);
  // GOOD in (a) -> answer a with P(a)=0.8 -> 1.2; GOOD in (b) -> P(b)=0.7 -> 1.7.
  assert.ok(Math.abs((out[0].preference as number) - 1.2) < 1e-9);
  assert.ok(Math.abs((out[1].preference as number) - 1.7) < 1e-9);
  assert.is(softPreference(undefined), null);
});

test('abort signal stops the run', async () => {
  server.behave = () => ({ delayMs: 200 });
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('stop now')), 30);
  await judge({ concurrency: 1 }).annotate(pairs(20), { signal: ac.signal }).then(
    () => assert.unreachable('should throw'),
    (err: Error) => assert.match(err.message, /stop now/),
  );
  assert.ok(server.requests.length < 4);
});

test.run();
