// Stable, process-independent hashing and hash-derived randomness.
// AlpacaFarm seeded its routing with Python's per-process string hash, which is not reproducible across runs;
// everything random in the simulator derives from these functions of content and seed instead.
import { createHash } from 'node:crypto';

const M1 = 0x85ebca6b;
const M2 = 0xc2b2ae35;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, M1);
  h ^= h >>> 13;
  h = Math.imul(h, M2);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Two 32-bit lanes over the UTF-16 code units of `s`, started from `state` (for chaining fields). */
function mixString(s: string, a: number, b: number): [number, number] {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x9e3779b1);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  // The length separates ('ab','c') from ('a','bc') when fields are chained.
  a = Math.imul(a ^ s.length, 0x27d4eb2f);
  b = Math.imul(b ^ (s.length + 0x1f), 0x165667b1);
  return [a, b];
}

/**
 * A 32-bit hash of several string fields and a numeric seed; identical in every process and platform.
 * Fields are separated by their lengths, so ('ab', 'c') and ('a', 'bc') hash differently.
 */
export function hashFields(seed: number, ...fields: string[]): number {
  let a = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  let b = (0x1b873593 ^ (seed >>> 0)) >>> 0;
  for (const f of fields) [a, b] = mixString(f, a, b);
  return fmix32((a ^ fmix32(b)) >>> 0);
}

/** Uniform in [0, 1) from a 32-bit hash. */
export function unitFromHash(h: number): number {
  return (h >>> 0) / 4294967296;
}

/** A small deterministic generator (mulberry32-style) for the draws one pair needs after its hash. */
export class HashRng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform 32-bit integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Standard normal (Box-Muller; one value per call, the second is dropped for simplicity). */
  normal(): number {
    let u = this.next();
    if (u < 1e-12) u = 1e-12;
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** Logistic noise (difference of two Gumbels): makes a Bradley-Terry choice from a score gap. */
  logistic(): number {
    let u = this.next();
    if (u < 1e-12) u = 1e-12;
    return Math.log(u / (1 - u));
  }
}

/** A content-addressed key (hex SHA-256) for the on-disk cache: collision-safe, independent of the process. */
export function contentKey(...fields: string[]): string {
  const h = createHash('sha256');
  for (const f of fields) {
    h.update(String(Buffer.byteLength(f, 'utf8')));
    h.update(':');
    h.update(f, 'utf8');
  }
  return h.digest('hex');
}
