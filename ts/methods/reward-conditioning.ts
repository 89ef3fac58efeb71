// Binary reward conditioning (AlpacaFarm): SFT on (good token, x, preferred y) and (bad token, x, rejected y),
// then generation conditioned on the good token. The two control tokens are added to the tokenizer as
// special tokens (never produced from text, dropped when decoding) and to the model's vocabulary, whose new
// embedding rows start at the mean of the old ones. The trained policy is a new, larger model.
import type { Engine, Model, SequenceExample } from '../engine/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { addControlTokens, ConfigError, padIdOf, type Conditioning, type PromptControl } from './common.ts';
import { preferredRecords } from './feedme.ts';
import type { PreferenceRecord } from './reward-model.ts';
import { resolveSftConfig, sftExamples, trainSupervised, type SftConfig, type SftResult, type SftStepLog, type TrainHooks } from './sft.ts';

export const GOOD_TOKEN = '<|reward_good|>';
export const BAD_TOKEN = '<|reward_bad|>';

/** SFT settings (AlpacaFarm: its SFT recipe); see SftConfig. */
export type RewardConditioningConfig = SftConfig;

export interface RewardConditioningResult extends SftResult {
  /** The trained policy (the input model with two more vocabulary rows). */
  model: Model;
  /** The input tokenizer with the control tokens; save it beside the model. */
  tokenizer: Tokenizer;
  /** How to prompt the policy: save as conditioning.json beside it. */
  conditioning: Conditioning;
  /** Prompt control for sampling with the good token. */
  control: PromptControl;
  /** Pairs used (each gives a good and a bad example) and left out. */
  used: number;
  skipped: number;
}

/** The conditioning of a reward-conditioned policy: generate after the good token. */
export const REWARD_CONDITIONING: Conditioning = Object.freeze({ method: 'reward-conditioning', tokens: [GOOD_TOKEN, BAD_TOKEN], generateWith: GOOD_TOKEN }) as Conditioning;

/** The control tokens added to `tokenizer` and a model resized for them (the input model is left as it was). */
export function conditionedPolicy(engine: Engine, policy: Model, tokenizer: Tokenizer) {
  return addControlTokens(engine, policy, tokenizer, [GOOD_TOKEN, BAD_TOKEN]);
}

/** Trains a copy of `policy` with the control tokens; see the file comment. */
export async function rewardConditioning(engine: Engine, policy: Model, tokenizer: Tokenizer, pairs: readonly PreferenceRecord[],
  config: RewardConditioningConfig = {}, hooks: TrainHooks<SftStepLog> = {}): Promise<RewardConditioningResult> {
  resolveSftConfig('reward conditioning', config);
  const chosen = preferredRecords(pairs);
  if (chosen.records.length === 0) throw new ConfigError(`reward conditioning: no usable preference among ${pairs.length} pairs (draws, failed labels and identical outputs are left out)`);
  const { model, tokenizer: tok, ids: [good, bad] } = conditionedPolicy(engine, policy, tokenizer);
  const maxLength = Math.min(config.maxLength ?? model.config.max_position_embeddings, model.config.max_position_embeddings);
  const rejected = pairs.filter((p) => typeof p.preference === 'number' && p.preference >= 1 && p.preference <= 2 && p.preference !== 1.5 && p.output_1 !== p.output_2)
    .map((p) => ({ instruction: p.instruction, input: p.input ?? '', output: p.preference < 1.5 ? p.output_2 : p.output_1 }));
  // interleaved so that a batch sees both sides of the same pairs
  const goodEx = sftExamples(tok, chosen.records, maxLength, [good]), badEx = sftExamples(tok, rejected, maxLength, [bad]);
  const examples: SequenceExample[] = goodEx.flatMap((g, i) => [g, badEx[i]]);
  const r = await trainSupervised(engine, model, examples, padIdOf(tok), config, 'reward conditioning', hooks);
  return { ...r, model, tokenizer: tok, conditioning: { ...REWARD_CONDITIONING }, control: { prefix: [good], strip: [good, bad] }, used: chosen.records.length, skipped: chosen.skipped };
}
