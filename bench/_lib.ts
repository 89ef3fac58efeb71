// Shared bench plumbing: one JSON line per figure (DESIGN.md section 8), medians, flags.
export interface Reference { name: string; value: number; source: string }
export interface Figure {
  bench: string; figure: string; value: number; unit: string;
  config?: Record<string, unknown>; reference?: Reference | null;
}
export function emit(f: Figure): void {
  console.log(JSON.stringify({ ...f, value: round(f.value) }));
}
export function round(x: number): number { return Number.isFinite(x) ? Number(x.toPrecision(6)) : x; }
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
export const quick = process.argv.includes('--quick');
export function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
export async function timeit(fn: () => Promise<unknown> | unknown, reps: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return out;
}
