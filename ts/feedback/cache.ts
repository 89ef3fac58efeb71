// On-disk annotation cache: one append-only JSONL file, one line per labelled pair, keyed by a content hash
// of (instruction, input, output_1, output_2, annotator). Crash safety: every flush appends whole lines in one
// write, and on load a torn last line (a run killed mid-write) is ignored and fenced off with a newline, so
// the next append starts a clean line. Failed (null) labels are not cached, so they are retried next time;
// flipped (noisy) labels never reach the cache because pools apply flips after their members answer.
//
// Several processes may share one cache file: appends are single O_APPEND writes of whole lines (no process
// overwrites another's), refresh() picks up lines other processes appended since the last read, and claims
// (one small file per pair key in `<cache>.claims/`, created exclusively) let a process skip pairs another
// one is judging right now instead of paying for them twice.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { contentKey } from './hash.ts';
import type { Pair } from './types.ts';

export interface CachedLabel {
  preference: number;
  price_per_example?: number;
  time_per_example?: number;
}

interface CacheLine extends CachedLabel {
  key: string;
  annotator: string;
}

export interface CacheStats {
  path: string;
  /** Entries loaded from disk plus entries added since. */
  entries: number;
  loaded: number;
  hits: number;
  misses: number;
  writes: number;
  /** Lines that could not be parsed on load (a torn line from a crash, or damage). */
  badLines: number;
  /** Whether the file ended in a torn line when loaded. */
  tornTail: boolean;
  /** Entries other processes appended while this one had the cache open (picked up by refresh()). */
  refreshed: number;
}

/** Where caches go unless told otherwise: $FARM_CACHE_DIR, else $XDG_CACHE_HOME/alpacafarm-ts, else ~/.cache. */
export function defaultCachePath(): string {
  const dir = process.env.FARM_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'alpacafarm-ts');
  return join(dir, 'annotations.jsonl');
}

export function pairKey(pair: Pair, annotator: string): string {
  return contentKey(pair.instruction, pair.input ?? '', pair.output_1, pair.output_2, annotator);
}

export class AnnotationCache {
  private readonly map = new Map<string, CachedLabel>();
  private pending: string[] = [];
  private fd: number | null = null;
  private needsFence = false;
  private readonly counters = { loaded: 0, hits: 0, misses: 0, writes: 0, badLines: 0, tornTail: false, refreshed: 0 };
  /** Bytes of the file read so far (up to the last complete line). */
  private offset = 0;
  private readonly claimed = new Set<string>();

  private constructor(readonly path: string) {}

  /** Opens (and loads) the cache at `path`, creating its folder when needed. */
  static open(path: string = defaultCachePath()): AnnotationCache {
    const cache = new AnnotationCache(path);
    cache.load();
    return cache;
  }

  private load(): void {
    if (!existsSync(this.path)) return;
    if (statSync(this.path).isDirectory()) throw new Error(`annotation cache ${this.path} is a folder; give a file path (e.g. ${join(this.path, 'annotations.jsonl')})`);
    const buf = readFileSync(this.path);
    const text = buf.toString('utf8');
    if (text.length === 0) return;
    const nl = text.indexOf('\n');
    const firstLine = nl >= 0 ? text.slice(0, nl).trim() : '';
    // one torn line (a crash during the very first write) starts like every entry we write
    if ((firstLine && !isCacheLine(firstLine)) || (nl < 0 && !text.startsWith('{"key":'))) {
      throw new Error(`${this.path} is not an annotation cache (its first line is not a {key, annotator, preference} entry); refusing to append to it: give a new file or an existing cache to --cache-path`);
    }
    const end = buf.lastIndexOf(0x0a);
    this.offset = end + 1;
    const lines = text.split('\n');
    const tail = lines.pop() ?? '';
    if (tail.length > 0) {
      // No newline after the last record: the writer died mid-line. Ignore it and fence it off.
      this.counters.tornTail = true;
      this.counters.badLines += 1;
      this.needsFence = true;
    }
    for (const line of lines) {
      if (line.length === 0) continue;
      let rec: CacheLine;
      try {
        rec = JSON.parse(line) as CacheLine;
      } catch {
        this.counters.badLines += 1;
        continue;
      }
      if (typeof rec?.key !== 'string' || typeof rec.preference !== 'number' || !Number.isFinite(rec.preference)) {
        this.counters.badLines += 1;
        continue;
      }
      const { key, annotator: _annotator, ...label } = rec;
      this.map.set(key, label);
      this.counters.loaded += 1;
    }
  }

  get size(): number {
    return this.map.size;
  }

  /** Reads the lines other processes appended since the last read; returns how many entries were new. */
  refresh(): number {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return 0;
    }
    let added = 0;
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return 0;
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      const end = buf.subarray(0, n).lastIndexOf(0x0a);
      if (end < 0) return 0;  // another writer's line is not complete yet
      for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
        if (!line) continue;
        let rec: CacheLine;
        try { rec = JSON.parse(line) as CacheLine; } catch { continue; }
        if (typeof rec?.key !== 'string' || typeof rec.preference !== 'number' || !Number.isFinite(rec.preference) || this.map.has(rec.key)) continue;
        const { key, annotator: _annotator, ...label } = rec;
        this.map.set(key, label);
        added++;
      }
      this.offset += end + 1;
    } finally {
      closeSync(fd);
    }
    this.counters.refreshed += added;
    return added;
  }

  /** Whether a label for `key` is known (no hit/miss counting). */
  has(key: string): boolean {
    return this.map.has(key);
  }

  private claimPath(key: string): string {
    return join(`${this.path}.claims`, key.replace(/[^\w.-]/g, '_'));
  }

  /**
   * Claims keys before judging them: returns the keys this process may judge now, and those another live
   * process is judging (wait for them with refresh(), or claim them again later). Claims of dead processes,
   * or older than `staleMs`, are taken over.
   */
  claim(keys: readonly string[], staleMs = 15 * 60_000): { mine: string[]; others: string[] } {
    const mine: string[] = [], others: string[] = [];
    mkdirSync(`${this.path}.claims`, { recursive: true });
    for (const key of keys) {
      if (this.claimed.has(key)) { mine.push(key); continue; }
      const p = this.claimPath(key);
      let got = false;
      for (let attempt = 0; attempt < 2 && !got; attempt++) {
        try {
          const fd = openSync(p, 'wx');
          writeSync(fd, `${process.pid}@${hostname()} ${Date.now()}\n`);
          closeSync(fd);
          got = true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          if (!claimIsStale(p, staleMs)) break;
          try { unlinkSync(p); } catch { /* another process took it over first */ }
        }
      }
      if (got) { this.claimed.add(key); mine.push(key); } else others.push(key);
    }
    return { mine, others };
  }

  /** Gives claims back (after the labels were flushed, or when the work failed). */
  release(keys: readonly string[]): void {
    for (const key of keys) {
      if (!this.claimed.delete(key)) continue;
      try { unlinkSync(this.claimPath(key)); } catch { /* already gone */ }
    }
  }

  get(pair: Pair, annotator: string): CachedLabel | undefined {
    return this.getByKey(pairKey(pair, annotator));
  }

  getByKey(key: string): CachedLabel | undefined {
    const hit = this.map.get(key);
    if (hit) this.counters.hits += 1;
    else this.counters.misses += 1;
    return hit;
  }

  /** Records a label (in memory now, on disk at the next flush). Null or non-finite labels are refused. */
  put(pair: Pair, annotator: string, label: CachedLabel): void {
    this.putByKey(pairKey(pair, annotator), annotator, label);
  }

  putByKey(key: string, annotator: string, label: CachedLabel): void {
    if (typeof label.preference !== 'number' || !Number.isFinite(label.preference)) return;
    if (this.map.has(key)) return;
    const clean: CachedLabel = { preference: label.preference };
    if (label.price_per_example !== undefined) clean.price_per_example = label.price_per_example;
    if (label.time_per_example !== undefined) clean.time_per_example = label.time_per_example;
    this.map.set(key, clean);
    const line: CacheLine = { key, annotator, ...clean };
    this.pending.push(JSON.stringify(line));
  }

  /** Appends pending lines in one write. Call after each finished batch so a crash loses only in-flight work. */
  flush(): void {
    if (this.pending.length === 0) return;
    if (this.fd === null) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'a');
      // A file written by someone else may also end without a newline: check the last byte.
      if (!this.needsFence) this.needsFence = !endsWithNewline(this.path, this.fd);
    }
    const body = (this.needsFence ? '\n' : '') + this.pending.join('\n') + '\n';
    writeSync(this.fd, body);
    this.needsFence = false;
    this.counters.writes += this.pending.length;
    this.pending = [];
  }

  close(): void {
    this.flush();
    this.release([...this.claimed]);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  stats(): CacheStats {
    return { path: this.path, entries: this.map.size, ...this.counters };
  }
}

function isCacheLine(line: string): boolean {
  try {
    const rec = JSON.parse(line) as Partial<CacheLine>;
    return typeof rec?.key === 'string' && typeof rec.preference === 'number';
  } catch {
    return false;
  }
}

/** A claim is stale when its process is gone (same host) or it is older than staleMs. */
function claimIsStale(path: string, staleMs: number): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return true;
  }
  const m = /^(\d+)@(\S*) (\d+)/.exec(text);
  if (!m) return Date.now() - safeMtime(path) > staleMs;  // being written right now, or damaged
  const [, pid, host, t] = m;
  if (Date.now() - Number(t) > staleMs) return true;
  if (host !== hostname()) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function safeMtime(path: string): number {
  try { return statSync(path).mtimeMs; } catch { return 0; }
}

function endsWithNewline(path: string, fd: number): boolean {
  const size = fstatSync(fd).size;
  if (size === 0) return true;
  let rfd: number | null = null;
  try {
    rfd = openSync(path, 'r');
    const buf = Buffer.alloc(1);
    readSync(rfd, buf, 0, 1, size - 1);
    return buf[0] === 0x0a;
  } catch {
    return false; // unknown: a spare newline costs one empty line, a missing one a corrupted record
  } finally {
    if (rfd !== null) closeSync(rfd);
  }
}
