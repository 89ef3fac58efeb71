// Padded batches for the engine: tokens [B,T], next-token targets (-1 where no loss), loss weights.

export interface SequenceExample {
  /** Tokens the model conditions on (no loss): BOS + formatted prompt. */
  prompt: ArrayLike<number>;
  /** Tokens the model learns to produce (loss), usually ending with EOS. */
  response: ArrayLike<number>;
}

export interface TokenBatch {
  tokens: Int32Array;
  /** targets[b*T + t] is the token at t+1 when it is a response token, else -1. */
  targets: Int32Array;
  /** Loss weight per position: 1/(response tokens in the batch) on response targets (mean over tokens), else 0. */
  weights: Float32Array;
  batch: number;
  seqLen: number;
  /** Response tokens with a target (what the loss averages over). */
  numTargets: number;
}

/** Token ids must be non-negative integers: NaN, 2.5 or "7" would be coerced into another token by Int32Array. */
function checkIds(ids: ArrayLike<number>, where: string): void {
  if (ids instanceof Int32Array || ids instanceof Uint32Array || ids instanceof Uint16Array || ids instanceof Uint8Array) return;
  if (!ids || typeof ids.length !== 'number') throw new Error(`packBatch: ${where} must be an array of token ids`);
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) throw new Error(`packBatch: ${where}[${i}] = ${JSON.stringify(t) ?? String(t)} is not a token id (a non-negative integer)`);
  }
}

/**
 * Packs prompt+response sequences, right-padded with padId. With maxLen (the model's context), a sequence that
 * does not fit is an error, not silently cut: the caller decides how to shorten (the SFT method's maxLength).
 */
export function packBatch(examples: SequenceExample[], opts: { padId: number; maxLen?: number; seqLen?: number }): TokenBatch {
  if (!Array.isArray(examples) || examples.length === 0) throw new Error('packBatch: empty batch');
  examples.forEach((e, b) => {
    if (!e || typeof e !== 'object') throw new Error(`packBatch: example ${b} is not {prompt, response}`);
    checkIds(e.prompt, `example ${b}: prompt`);
    checkIds(e.response, `example ${b}: response`);
  });
  const lens = examples.map((e) => e.prompt.length + e.response.length);
  if (opts.maxLen !== undefined) {
    // A sequence of L tokens takes L - 1 positions: its last token is only a target.
    const b = lens.findIndex((L) => L - 1 > opts.maxLen!);
    if (b >= 0) throw new Error(`packBatch: example ${b} has ${lens[b]} tokens (prompt ${examples[b].prompt.length} + response ${examples[b].response.length}), more than the model's context of ${opts.maxLen} positions allows (${opts.maxLen + 1} tokens); shorten it first`);
  }
  let T = opts.seqLen ?? Math.max(...lens) - 1;
  if (opts.maxLen !== undefined) T = Math.min(T, opts.maxLen);
  if (T < 1) throw new Error('packBatch: sequences need at least 2 tokens (prompt + response)');
  const B = examples.length;
  const tokens = new Int32Array(B * T).fill(opts.padId);
  const targets = new Int32Array(B * T).fill(-1);
  let count = 0;
  examples.forEach((e, b) => {
    if (e.response.length === 0) throw new Error(`packBatch: example ${b} has an empty response`);
    const seq = [...Array.from(e.prompt), ...Array.from(e.response)];
    const P = e.prompt.length;
    for (let t = 0; t < Math.min(T, seq.length); t++) tokens[b * T + t] = seq[t];
    for (let t = 0; t < Math.min(T, seq.length - 1); t++) {
      if (t + 1 >= P) { targets[b * T + t] = seq[t + 1]; count++; }
    }
  });
  const weights = new Float32Array(B * T);
  if (count > 0) for (let i = 0; i < B * T; i++) if (targets[i] >= 0) weights[i] = 1 / count;
  return { tokens, targets, weights, batch: B, seqLen: T, numTargets: count };
}
