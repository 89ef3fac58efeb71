// Binary FeedME (AlpacaFarm): supervised fine-tuning from the SFT model on the preferred output of each pair.
// The pairs' rejected outputs are not used; draws, failed labels and identical outputs are left out.
import type { Engine, Model } from '../engine/index.ts';
import type { AlpacaRecord } from '../data/template.ts';
import { ConfigError, type MethodTokenizer } from './common.ts';
import type { PreferenceRecord } from './reward-model.ts';
import { sft, type SftConfig, type SftResult, type SftStepLog, type TrainHooks } from './sft.ts';

/** AlpacaFarm trains FeedME with its SFT recipe; the farm default is SFT's (see SFT_DEFAULTS). */
export type FeedMEConfig = SftConfig;

/** The preferred output of each usable pair (preference 1 or 2, or a soft value away from 1.5), as SFT records. */
export function preferredRecords(pairs: readonly PreferenceRecord[]): { records: AlpacaRecord[]; skipped: number } {
  const records: AlpacaRecord[] = [];
  let skipped = 0;
  for (const p of pairs) {
    const y = p.preference;
    if (typeof y !== 'number' || !(y >= 1 && y <= 2) || y === 1.5 || p.output_1 === p.output_2) { skipped++; continue; }
    records.push({ instruction: p.instruction, input: p.input ?? '', output: y < 1.5 ? p.output_1 : p.output_2 });
  }
  return { records, skipped };
}

/** Trains `policy` in place on the preferred outputs of `pairs`. */
export async function feedme(engine: Engine, policy: Model, tokenizer: MethodTokenizer, pairs: readonly PreferenceRecord[],
  config: FeedMEConfig = {}, hooks: TrainHooks<SftStepLog> = {}): Promise<SftResult & { used: number; skipped: number }> {
  const { records, skipped } = preferredRecords(pairs);
  if (records.length === 0) throw new ConfigError(`FeedME: no usable preference among ${pairs.length} pairs (draws, failed labels and identical outputs are left out)`);
  const r = await sft(engine, policy, tokenizer, records, config, hooks);
  return { ...r, used: records.length, skipped };
}
