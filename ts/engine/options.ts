// Unknown option keys are errors: a misspelled key (world_seed for worldSeed, warmup for warmupSteps) would
// otherwise be ignored and the call would run with the default, giving a silently different result.

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

/** The known key closest to `key` (case, '_' and '-' ignored), when one is close enough to be a typo. */
export function closestKey(key: string, known: readonly string[]): string | null {
  const norm = (k: string) => k.toLowerCase().replace(/[_-]/g, '');
  const n = norm(key);
  // a shortened name (warmup for warmupSteps) is a typo too
  const prefix = n.length >= 4 ? known.find((k) => norm(k).startsWith(n)) : undefined;
  if (prefix && editDistance(n, norm(prefix)) > Math.max(2, Math.floor(key.length / 4))) return prefix;
  let best: string | null = null, bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(norm(key), norm(k));
    if (dist < bestD) { bestD = dist; best = k; }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(key.length / 4)) ? best : null;
}

/** Throws when `options` holds a key outside `known`, naming the closest known key. */
export function checkOptionKeys(what: string, options: object | null | undefined, known: readonly string[]): void {
  if (options === null || options === undefined) return;
  if (typeof options !== 'object' || Array.isArray(options)) throw new Error(`${what} must be an object, got ${Array.isArray(options) ? 'an array' : typeof options}`);
  for (const k of Object.keys(options)) {
    if (known.includes(k)) continue;
    const hint = closestKey(k, known);
    throw new Error(`${what}: unknown option "${k}"${hint ? `; did you mean "${hint}"?` : ''} (known: ${[...known].sort().join(', ')})`);
  }
}
