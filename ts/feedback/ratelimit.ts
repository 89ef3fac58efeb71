// Concurrency and request-rate limits, and the retry delay (exponential backoff with jitter).

/** Resolves after `ms`, or rejects with the signal's reason when aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** At most `limit` holders at once; waiters are served in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`concurrency must be a positive integer, got ${limit}`);
  }
  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.active -= 1;
    };
  }
}

/**
 * Spaces request starts evenly so that no more than `rpm` start in any minute (a smooth limit, not bursts
 * that then stall). rpm <= 0 or Infinity: no limit.
 */
export class RateLimiter {
  private next = 0;
  private readonly interval: number;
  constructor(rpm: number, private readonly now: () => number = Date.now) {
    this.interval = rpm > 0 && Number.isFinite(rpm) ? 60_000 / rpm : 0;
  }
  async wait(signal?: AbortSignal): Promise<void> {
    if (this.interval === 0) return;
    const t = this.now();
    const slot = Math.max(t, this.next);
    this.next = slot + this.interval;
    if (slot > t) await sleep(slot - t, signal);
  }
}

/**
 * Delay before retry number `attempt` (0-based): base * 2^attempt capped at max, times a jitter factor in
 * [0.5, 1.5) so that many clients hit by the same 429 do not retry in lockstep. A server's Retry-After wins
 * when it asks for longer (still capped at max).
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random, retryAfterMs?: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** attempt);
  const jittered = exp * (0.5 + random());
  const wanted = retryAfterMs !== undefined && retryAfterMs > jittered ? retryAfterMs : jittered;
  return Math.min(maxMs, wanted);
}

/** Parses an HTTP Retry-After header (seconds or a date) into milliseconds. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}
