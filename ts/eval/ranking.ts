// Ranking validation, as AlpacaFarm validates its simulator: rank methods under two evaluations
// (simulated vs human feedback, or two judges) and correlate the rankings.

/** 1-based ranks, ties sharing their average rank (scipy.stats.rankdata 'average'). */
export function rankValues(xs: readonly number[]): number[] {
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i])) throw new Error(`rankValues: value ${xs[i]} at ${i} is not finite`);
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Array<number>(xs.length);
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && xs[order[j + 1]] === xs[order[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let p = i; p <= j; p++) ranks[order[p]] = avg;
    i = j + 1;
  }
  return ranks;
}

function checkPair(a: readonly number[], b: readonly number[], what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} vs ${b.length} values`);
  if (a.length < 2) throw new Error(`${what}: needs at least two items, got ${a.length}`);
}

/** Pearson correlation; NaN when either side is constant. */
export function pearson(a: readonly number[], b: readonly number[]): number {
  checkPair(a, b, 'pearson');
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}

/** Spearman rank correlation (Pearson on average ranks, so ties are handled as scipy does). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  checkPair(a, b, 'spearman');
  return pearson(rankValues(a), rankValues(b));
}

/** Kendall's tau-b (ties corrected, as scipy.stats.kendalltau's default). */
export function kendallTau(a: readonly number[], b: readonly number[]): number {
  checkPair(a, b, 'kendallTau');
  let concordant = 0, discordant = 0, tiesA = 0, tiesB = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const da = Math.sign(a[i] - a[j]);
      const db = Math.sign(b[i] - b[j]);
      if (da === 0 && db === 0) continue;
      if (da === 0) tiesA++;
      else if (db === 0) tiesB++;
      else if (da === db) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiesA) * (concordant + discordant + tiesB));
  return denom === 0 ? NaN : (concordant - discordant) / denom;
}

export interface RankingComparison {
  /** Items scored by both evaluations, the ones compared. */
  items: string[];
  spearman: number;
  kendall_tau: number;
  /** Fraction of item pairs ordered the same way by both (ties in either count as disagreement). */
  pairwise_agreement: number;
  only_in_a: string[];
  only_in_b: string[];
}

/**
 * Compares two scorings of the same methods (e.g. win-rates under simulated and under human feedback).
 * Only items present in both are compared; the others are listed.
 */
export function compareRankings(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): RankingComparison {
  const items = Object.keys(a).filter((k) => k in b).sort();
  const onlyA = Object.keys(a).filter((k) => !(k in b)).sort();
  const onlyB = Object.keys(b).filter((k) => !(k in a)).sort();
  if (items.length < 2) {
    throw new Error(`compareRankings: ${items.length} shared items (need 2); only in first: ${onlyA.length}, only in second: ${onlyB.length}`);
  }
  const va = items.map((k) => a[k]);
  const vb = items.map((k) => b[k]);
  let same = 0, total = 0;
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      total++;
      const da = Math.sign(va[i] - va[j]);
      if (da !== 0 && da === Math.sign(vb[i] - vb[j])) same++;
    }
  }
  return {
    items,
    spearman: spearman(va, vb),
    kendall_tau: kendallTau(va, vb),
    pairwise_agreement: same / total,
    only_in_a: onlyA,
    only_in_b: onlyB,
  };
}
