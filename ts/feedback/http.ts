// A pairwise judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp server,
// LiteLLM, ...). Several pairs per request when the template is batched; answers parsed by the template's
// regex; a request that fails after its retries (429, 5xx, timeouts) leaves its pairs unlabelled, a
// configuration error (401, 404, unreachable host) stops the run with a clear message. The API key is read
// from the environment and never written to logs, errors, annotations or the cache.
import { performance } from 'node:perf_hooks';
import { AnnotationCache, pairKey } from './cache.ts';
import { contentKey } from './hash.ts';
import { costOf, lookupPrice, type Price } from './pricing.ts';
import { loadTemplate, parseAnswers, renderMessages, type ChatMessage, type PromptTemplate } from './prompts.ts';
import { backoffDelay, parseRetryAfter, RateLimiter, Semaphore, sleep } from './ratelimit.ts';
import type { AnnotateOptions, Annotation, AnnotatorStats, AnnotatorWithStats, Pair } from './types.ts';
import { emptyStats, validatePairs } from './util.ts';

export interface HttpJudgeOptions {
  /** Model name sent to the endpoint. */
  model: string;
  /** Annotator name in annotations and cache keys (default "openai:MODEL"). */
  name?: string;
  /** Base URL up to /v1 (default $FARM_JUDGE_BASE_URL, $OPENAI_BASE_URL, else https://api.openai.com/v1). */
  baseUrl?: string;
  /** API key (default $FARM_JUDGE_API_KEY, else $OPENAI_API_KEY). Optional for local servers. */
  apiKey?: string;
  /** Template name in prompts/ or a path (default "pairwise_batch", or "pairwise_single" when soft). */
  template?: string | PromptTemplate;
  /** Pairs per request (default 5 for batched templates, 1 otherwise). */
  batchSize?: number;
  temperature?: number;
  maxTokens?: number;
  /** Token id -> bias, passed as logit_bias; dropped (once, with a log line) if the endpoint rejects it. */
  logitBias?: Record<string, number>;
  /** Ask for token log-probabilities and return soft preferences in [1, 2] (single-pair templates). */
  soft?: boolean;
  /** Per-request timeout (default 60 s). */
  timeoutMs?: number;
  /** Retries after the first try (default 5). */
  maxRetries?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Request starts per minute (default: no limit). */
  rpm?: number;
  /** $ per 1M tokens; default from the price table (pricing.ts). */
  price?: Price;
  /** Disk cache (null: none). */
  cache?: AnnotationCache | null;
  /** Extra fields merged into every request body (e.g. {"seed": 0} or provider options). */
  extraBody?: Record<string, unknown>;
  /** Where progress and retry messages go (never receives the key). */
  log?: (message: string) => void;
  /** Mixed into cache keys, e.g. the run index when a judge at temperature > 0 is sampled several times. */
  cacheSalt?: string;
  /** Jitter source (tests). */
  random?: () => number;
}

/** A configuration problem that retrying cannot fix: the run stops. */
export class JudgeConfigError extends Error {}

interface Completion {
  content: string;
  promptTokens: number;
  completionTokens: number;
  logprobs?: TokenLogprob[];
}

interface TokenLogprob {
  token: string;
  logprob: number;
  top_logprobs?: Array<{ token: string; logprob: number }>;
}

type RequestOutcome = { ok: true; completion: Completion; retries: number } | { ok: false; error: string; retries: number };

/** Limits that would hang, hammer or silently disable a judge (rpm -5, timeout 0, retries -1) are refused. */
export function checkHttpLimits(o: Partial<HttpJudgeOptions>): void {
  const int = (k: keyof HttpJudgeOptions, min: number) => {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) throw new Error(`HTTP judge: ${k} must be an integer >= ${min}, got ${v}`);
  };
  int('timeoutMs', 1); int('maxRetries', 0); int('concurrency', 1); int('maxTokens', 1); int('backoffBaseMs', 0); int('backoffMaxMs', 0);
  if (o.rpm !== undefined && (typeof o.rpm !== 'number' || !(o.rpm > 0) || !Number.isFinite(o.rpm))) throw new Error(`HTTP judge: rpm must be a number > 0 (leave it out for no limit), got ${o.rpm}`);
  if (o.temperature !== undefined && (typeof o.temperature !== 'number' || !(o.temperature >= 0 && o.temperature <= 2))) throw new Error(`HTTP judge: temperature must be in [0, 2], got ${o.temperature}`);
}

export function judgeBaseUrl(): string {
  return process.env.FARM_JUDGE_BASE_URL || process.env.OPENAI_BASE_URL || 'https://api.openai.com/v1';
}

export class HttpJudge implements AnnotatorWithStats {
  readonly name: string;
  readonly template: PromptTemplate;
  readonly batchSize: number;
  /** Identity of this judge's configuration in cache keys: name + template text + sampling settings. */
  readonly cacheId: string;
  private readonly url: string;
  private readonly key: string | undefined;
  private readonly price: Price | undefined;
  private readonly semaphore: Semaphore;
  private readonly limiter: RateLimiter;
  private logitBias: Record<string, number> | undefined;
  private readonly counters: AnnotatorStats = emptyStats();

  constructor(private readonly opts: HttpJudgeOptions) {
    if (!opts.model) throw new Error('HTTP judge: model name is required (openai:MODEL)');
    this.name = opts.name ?? `openai:${opts.model}`;
    this.template = typeof opts.template === 'object' ? opts.template : loadTemplate(opts.template ?? (opts.soft ? 'pairwise_single' : 'pairwise_batch'));
    this.batchSize = opts.batchSize ?? (this.template.batched ? 5 : 1);
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new Error(`HTTP judge: batch size must be a positive integer, got ${opts.batchSize}`);
    if (!this.template.batched && this.batchSize !== 1) throw new Error(`HTTP judge: template ${this.template.name} takes one pair per request; use a batched template for batch size ${this.batchSize}`);
    if (opts.soft && this.batchSize !== 1) throw new Error('HTTP judge: soft preferences need one pair per request');
    checkHttpLimits(opts);
    const base = (opts.baseUrl ?? judgeBaseUrl()).replace(/\/+$/, '');
    try {
      new URL(base);
    } catch {
      throw new Error(`HTTP judge: invalid base URL "${base}"`);
    }
    this.url = `${base}/chat/completions`;
    this.key = opts.apiKey ?? (process.env.FARM_JUDGE_API_KEY || process.env.OPENAI_API_KEY || undefined);
    this.price = opts.price ?? lookupPrice(opts.model);
    this.semaphore = new Semaphore(opts.concurrency ?? 8);
    this.limiter = new RateLimiter(opts.rpm ?? 0);
    this.logitBias = opts.logitBias;
    this.cacheId = `${this.name}#${contentKey(this.template.text, String(opts.temperature ?? 0), String(opts.maxTokens ?? ''), JSON.stringify(opts.logitBias ?? {}), String(!!opts.soft), String(this.batchSize), opts.cacheSalt ?? '').slice(0, 16)}`;
  }

  /** Whether the price of this model is known (unknown prices count as $0). */
  get priceKnown(): boolean {
    return this.price !== undefined;
  }

  stats(): AnnotatorStats {
    return { ...this.counters };
  }

  private log(message: string): void {
    this.opts.log?.(this.redact(message));
  }

  /** Removes the key from any text that might echo it (server error bodies, proxies, completions). */
  private redact(text: string): string {
    return redactSecret(text, this.key);
  }

  async annotate(pairs: Pair[], opts: AnnotateOptions = {}): Promise<Annotation[]> {
    validatePairs(pairs);
    const t0 = performance.now();
    const cache = opts.noCache ? null : (this.opts.cache ?? null);
    const out: Annotation[] = new Array(pairs.length);
    // Identical outputs need no judge; repeated pairs are judged once.
    const todo = new Map<string, number[]>();
    let done = 0;
    for (let i = 0; i < pairs.length; i++) {
      const p = pairs[i];
      if (p.output_1 === p.output_2) {
        out[i] = { ...p, preference: 0, annotator: this.name, price_per_example: 0, time_per_example: 0 };
        done += 1;
        continue;
      }
      const key = pairKey(p, this.cacheId);
      const hit = cache?.getByKey(key);
      if (hit) {
        out[i] = { ...p, preference: hit.preference, annotator: this.name, price_per_example: hit.price_per_example ?? 0, time_per_example: hit.time_per_example ?? 0 };
        this.counters.cacheHits += 1;
        done += 1;
        continue;
      }
      const list = todo.get(key);
      if (list) list.push(i);
      else todo.set(key, [i]);
    }
    opts.onProgress?.(done, pairs.length);

    const keys = [...todo.keys()];
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += this.batchSize) batches.push(keys.slice(i, i + this.batchSize));

    const inner = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, inner.signal]) : inner.signal;
    let fatal: Error | null = null;
    // Labels another process (sharing the cache) wrote meanwhile; pairs it is judging right now wait for it.
    const fromCache = (k: string): boolean => {
      if (!cache?.has(k)) return false;
      const hit = cache.getByKey(k)!;
      for (const idx of todo.get(k) as number[]) {
        out[idx] = { ...pairs[idx], preference: hit.preference, annotator: this.name, price_per_example: hit.price_per_example ?? 0, time_per_example: hit.time_per_example ?? 0 };
        this.counters.cacheHits += 1;
        done += 1;
      }
      return true;
    };
    let deferred: string[] = [];
    const runBatch = async (planned: string[]) => {
      const release = await this.semaphore.acquire();
      let batchKeys = planned;
      try {
        if (signal.aborted) return;
        if (cache) {
          cache.refresh();
          const claims = cache.claim(batchKeys.filter((k) => !fromCache(k)));
          deferred.push(...claims.others);
          // A claim freed just now may be one whose labels were flushed (flush comes before release): look again.
          cache.refresh();
          const landed = claims.mine.filter((k) => fromCache(k));
          cache.release(landed);
          batchKeys = claims.mine.filter((k) => !landed.includes(k));
          if (batchKeys.length === 0) { opts.onProgress?.(done, pairs.length); return; }
        }
        const shown = batchKeys.map((k) => pairs[(todo.get(k) as number[])[0]]);
        const started = performance.now();
        const outcome = await this.request(renderMessages(this.template, shown), signal);
        const seconds = (performance.now() - started) / 1000;
        this.counters.requests += 1;
        this.counters.retries += outcome.retries;
        let prefs: Array<number | null> = batchKeys.map(() => null);
        let error: string | undefined;
        let raw: string | undefined;
        let pricePer = 0;
        if (outcome.ok) {
          const c = outcome.completion;
          // An endpoint (or a proxy) may echo the request, key included: nothing stored may hold it.
          raw = this.redact(c.content);
          this.counters.promptTokens += c.promptTokens;
          this.counters.completionTokens += c.completionTokens;
          const cost = costOf(this.price, c.promptTokens, c.completionTokens);
          this.counters.cost += cost;
          pricePer = cost / batchKeys.length;
          const parsed = parseAnswers(this.template, c.content, batchKeys.length);
          if (parsed.ok) {
            prefs = parsed.preferences;
            if (this.opts.soft) {
              const soft = softPreference(c.logprobs);
              if (soft !== null) prefs = [soft];
            }
          } else error = this.redact(`unparsable answer: ${parsed.error}`);
        } else error = this.redact(outcome.error);
        const timePer = seconds / batchKeys.length;
        batchKeys.forEach((k, j) => {
          const pref = prefs[j];
          for (const idx of todo.get(k) as number[]) {
            const a: Annotation = { ...pairs[idx], preference: pref, annotator: this.name, price_per_example: pricePer, time_per_example: timePer };
            if (raw !== undefined) a.raw_completion = raw;
            if (pref === null && error) a.error = error;
            out[idx] = a;
            done += 1;
          }
          if (pref !== null && cache) cache.putByKey(k, this.cacheId, { preference: pref, price_per_example: pricePer, time_per_example: timePer });
        });
        cache?.flush();
        if (error) this.log(`${this.name}: ${batchKeys.length} pair(s) unlabelled: ${error}`);
        opts.onProgress?.(done, pairs.length);
      } catch (err) {
        if (!fatal) fatal = err as Error;
        inner.abort(err);
      } finally {
        cache?.release(batchKeys);
        release();
      }
    };
    await Promise.all(batches.map(runBatch));
    // Pairs claimed by another process: take its labels as they land, or the pairs themselves when it
    // gives them up (failed labels) or dies.
    while (deferred.length > 0 && !fatal && !signal.aborted) {
      await sleep(100, signal).catch(() => undefined);
      cache!.refresh();
      const claims = cache!.claim(deferred.filter((k) => !fromCache(k)));
      deferred = claims.others;
      const again: string[][] = [];
      for (let i = 0; i < claims.mine.length; i += this.batchSize) again.push(claims.mine.slice(i, i + this.batchSize));
      cache!.release(claims.mine);  // runBatch claims them again
      await Promise.all(again.map(runBatch));
      opts.onProgress?.(done, pairs.length);
    }
    cache?.flush();
    if (fatal) throw fatal;
    if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('annotation aborted');

    this.counters.pairs += pairs.length;
    for (const a of out) {
      if (a.preference === null) this.counters.failed += 1;
      else this.counters.labelled += 1;
    }
    this.counters.seconds += (performance.now() - t0) / 1000;
    return out;
  }

  private body(messages: ChatMessage[]): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.opts.model,
      messages,
      temperature: this.opts.temperature ?? 0,
      ...(this.opts.maxTokens !== undefined ? { max_tokens: this.opts.maxTokens } : {}),
      ...(this.logitBias ? { logit_bias: this.logitBias } : {}),
      ...(this.opts.soft ? { logprobs: true, top_logprobs: 5 } : {}),
      ...(this.opts.extraBody ?? {}),
    };
    return body;
  }

  /** One chat completion with retries. Throws JudgeConfigError for errors that retrying cannot fix. */
  private async request(messages: ChatMessage[], signal: AbortSignal): Promise<RequestOutcome> {
    const maxRetries = this.opts.maxRetries ?? 5;
    const base = this.opts.backoffBaseMs ?? 1000;
    const max = this.opts.backoffMaxMs ?? 60_000;
    const timeoutMs = this.opts.timeoutMs ?? 60_000;
    const random = this.opts.random ?? Math.random;
    let lastError = 'no attempt';
    let connectionOnly = true;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (attempt > 0) this.log(`${this.name}: retry ${attempt}/${maxRetries} after ${lastError}`);
      await this.limiter.wait(signal);
      const timeout = AbortSignal.timeout(timeoutMs);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.key) headers.authorization = `Bearer ${this.key}`;
      let retryAfter: number | undefined;
      const sentBias = this.logitBias !== undefined;
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers,
          body: JSON.stringify(this.body(messages)),
          signal: AbortSignal.any([signal, timeout]),
        });
        connectionOnly = false;
        const text = await res.text();
        if (res.ok) {
          const completion = readCompletion(text);
          if (typeof completion === 'string') lastError = completion; // malformed body: retry like a 5xx
          else return { ok: true, completion, retries: attempt };
        } else if (res.status === 429 || res.status >= 500) {
          lastError = `HTTP ${res.status}${snippet(this.redact(text))}`;
          retryAfter = parseRetryAfter(res.headers.get('retry-after'));
        } else if (res.status === 400 && sentBias && /logit[_ ]?bias/i.test(text)) {
          if (this.logitBias) this.log(`${this.name}: endpoint rejects logit_bias; continuing without it`);
          this.logitBias = undefined;
          attempt -= 1; // not the endpoint's fault: this retry is free
          continue;
        } else {
          const hint = res.status === 401 || res.status === 403 ? ' (check FARM_JUDGE_API_KEY / OPENAI_API_KEY)' : res.status === 404 ? ' (check the base URL and model name)' : '';
          throw new JudgeConfigError(`${this.name}: ${this.url} answered HTTP ${res.status}${hint}${snippet(this.redact(text))}`);
        }
      } catch (err) {
        if (err instanceof JudgeConfigError) throw err;
        if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('annotation aborted');
        if (timeout.aborted) {
          connectionOnly = false;
          lastError = `timeout after ${timeoutMs} ms`;
        } else {
          const cause = (err as { cause?: { code?: string; message?: string } }).cause;
          lastError = `cannot reach ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
        }
      }
      if (attempt < maxRetries) await sleep(backoffDelay(attempt, base, max, random, retryAfter), signal);
    }
    // Never got an HTTP answer at all: the endpoint is unreachable, which is a configuration problem.
    if (connectionOnly) throw new JudgeConfigError(this.redact(`${this.name}: ${lastError} (after ${maxRetries + 1} tries)`));
    return { ok: false, error: `${lastError} (after ${maxRetries + 1} tries)`, retries: maxRetries };
  }
}

/**
 * `text` with every occurrence of `secret` replaced by "***", also when it is echoed JSON-escaped or
 * URL-encoded. Short secrets (< 4 characters) are left alone: replacing them would garble ordinary text.
 */
export function redactSecret(text: string, secret: string | undefined): string {
  if (!secret || secret.length < 4 || typeof text !== 'string') return text;
  let out = text;
  for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) out = out.split(form).join('***');
  return out;
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t ? `: ${t.slice(0, 200)}` : '';
}

/** Reads an OpenAI chat-completions response body, or returns why it cannot. */
function readCompletion(text: string): Completion | string {
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    return 'response is not JSON';
  }
  const choice = json?.choices?.[0];
  const content = choice?.message?.content ?? choice?.text;
  if (typeof content !== 'string') return 'response has no choices[0].message.content';
  return {
    content,
    promptTokens: Number(json?.usage?.prompt_tokens ?? 0) || 0,
    completionTokens: Number(json?.usage?.completion_tokens ?? 0) || 0,
    logprobs: Array.isArray(choice?.logprobs?.content) ? choice.logprobs.content : undefined,
  };
}

/**
 * Soft preference 1 + P(b) / (P(a) + P(b)) from the top log-probs of the first answer token ("a" or "b",
 * the token after "Output ("), or null when the endpoint returned none.
 */
export function softPreference(logprobs: TokenLogprob[] | undefined): number | null {
  if (!logprobs?.length) return null;
  for (let i = 0; i < logprobs.length; i++) {
    const tok = logprobs[i].token.trim().toLowerCase();
    if (tok !== 'a' && tok !== 'b') continue;
    const before = logprobs.slice(Math.max(0, i - 3), i).map((t) => t.token).join('');
    if (!/\(\s*$/.test(before) && i > 0) continue;
    let pa = 0;
    let pb = 0;
    for (const alt of logprobs[i].top_logprobs ?? [{ token: logprobs[i].token, logprob: logprobs[i].logprob }]) {
      const t = alt.token.trim().toLowerCase();
      if (t === 'a') pa += Math.exp(alt.logprob);
      else if (t === 'b') pb += Math.exp(alt.logprob);
    }
    if (pa + pb === 0) return null;
    return 1 + pb / (pa + pb);
  }
  return null;
}
