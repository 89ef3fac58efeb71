// A lock file beside a shared file, for read-modify-write cycles that several processes may run at once
// (leaderboard CSVs): `<file>.lock`, created exclusively, holding the owner's pid, host and start time.
// A lock whose process is gone (same host) or that is older than `staleMs` is taken over.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function stale(lock: string, staleMs: number): boolean {
  let text: string;
  try { text = readFileSync(lock, 'utf8'); } catch { return true; }
  const m = /^(\d+)@(\S*) (\d+)/.exec(text);
  if (!m) return false;  // being written right now
  if (Date.now() - Number(m[3]) > staleMs) return true;
  if (m[2] !== hostname()) return false;
  try { process.kill(Number(m[1]), 0); return false; } catch (e) { return (e as NodeJS.ErrnoException).code === 'ESRCH'; }
}

/** Runs `fn` holding `<file>.lock`; waits (up to waitMs) for another holder to finish. */
export function withFileLock<T>(file: string, fn: () => T, opts: { waitMs?: number; staleMs?: number } = {}): T {
  const lock = `${file}.lock`;
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  for (let delay = 2; ; delay = Math.min(100, delay * 2)) {
    try {
      const fd = openSync(lock, 'wx');
      try { writeSync(fd, `${process.pid}@${hostname()} ${Date.now()}\n`); } finally { closeSync(fd); }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (stale(lock, opts.staleMs ?? 30_000)) { try { unlinkSync(lock); } catch { /* taken over by another */ } continue; }
      if (Date.now() > deadline) {
        let holder = '';
        try { holder = readFileSync(lock, 'utf8').trim(); } catch { /* gone meanwhile */ }
        throw new Error(`${file}: could not take the lock ${lock} within ${opts.waitMs ?? 60_000} ms (held by ${holder || 'another process'}); remove it if no farm command is running`);
      }
      sleepSync(delay);
    }
  }
  try {
    return fn();
  } finally {
    try { unlinkSync(lock); } catch { /* removed as stale by another process: nothing to do */ }
  }
}
