// On-disk annotation cache: one append-only JSONL file, one line per labelled pair, keyed by a content hash
// of (instruction, input, output_1, output_2, annotator). Crash safety: every flush appends whole lines in one
// write, and on load a torn last line (a run killed mid-write) is ignored and fenced off with a newline, so
// the next append starts a clean line. Failed (null) labels are not cached, so they are retried next time;
// flipped (noisy) labels never reach the cache because pools apply flips after their members answer.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
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
  private readonly counters = { loaded: 0, hits: 0, misses: 0, writes: 0, badLines: 0, tornTail: false };

  private constructor(readonly path: string) {}

  /** Opens (and loads) the cache at `path`, creating its folder when needed. */
  static open(path: string = defaultCachePath()): AnnotationCache {
    const cache = new AnnotationCache(path);
    cache.load();
    return cache;
  }

  private load(): void {
    if (!existsSync(this.path)) return;
    const text = readFileSync(this.path, 'utf8');
    if (text.length === 0) return;
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
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  stats(): CacheStats {
    return { path: this.path, entries: this.map.size, ...this.counters };
  }
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
