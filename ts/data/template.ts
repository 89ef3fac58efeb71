// The Alpaca prompt template (Stanford Alpaca's wording, which AlpacaFarm uses for every method), and SFT
// example building with the prompt masked out of the loss.

export const PROMPT_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:';

export const PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:';

/** The fixed pieces of both prompts (header, input marker, response marker): a tokenizer trained for the
 * template can make each one token (trainBpe's `phrases`), so that prompts cost their content, not ~30
 * tokens of boilerplate. Leftmost-longest matching keeps the two headers apart. */
export const TEMPLATE_PHRASES: readonly string[] = [
  PROMPT_WITH_INPUT.slice(0, PROMPT_WITH_INPUT.indexOf('{instruction}')),
  PROMPT_NO_INPUT.slice(0, PROMPT_NO_INPUT.indexOf('{instruction}')),
  '\n\n### Input:\n',
  '\n\n### Response:',
];

/** The line that ends every prompt; the response follows it directly. */
export const RESPONSE_MARKER = '### Response:';

/** Label value for positions that do not count in the loss (PyTorch's cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;

export interface AlpacaExample { instruction: string; input?: string | null }
export interface AlpacaRecord extends AlpacaExample { output: string }

/** The Alpaca prompt for an example; an empty or missing input selects the no-input wording. */
export function formatPrompt(ex: AlpacaExample): string {
  if (typeof ex?.instruction !== 'string') throw new TypeError('formatPrompt: "instruction" must be a string');
  if (ex.input !== undefined && ex.input !== null && typeof ex.input !== 'string') throw new TypeError('formatPrompt: "input" must be a string when given');
  // one pass with a function replacer: `$&` or a "{input}" inside the user's text stays literal
  const values: Record<string, string> = { instruction: ex.instruction, input: ex.input ?? '' };
  return (ex.input ? PROMPT_WITH_INPUT : PROMPT_NO_INPUT).replace(/\{(instruction|input)\}/g, (_, key: string) => values[key]);
}

/** Splits a full text (prompt + response) at the last response marker; throws when there is none. */
export function splitPromptResponse(text: string): { prompt: string; response: string } {
  const at = text.lastIndexOf(RESPONSE_MARKER);
  if (at < 0) throw new Error(`splitPromptResponse: no "${RESPONSE_MARKER}" in the text`);
  const end = at + RESPONSE_MARKER.length;
  return { prompt: text.slice(0, end), response: text.slice(end) };
}

/** Parses a prompt built by formatPrompt back into its fields; null when the text is not such a prompt. */
export function parsePrompt(prompt: string): AlpacaExample | null {
  const head = (t: string): string => t.slice(0, t.indexOf('{instruction}'));
  for (const [template, withInput] of [[PROMPT_WITH_INPUT, true], [PROMPT_NO_INPUT, false]] as const) {
    const prefix = head(template);
    if (!prompt.startsWith(prefix) || !prompt.endsWith(`\n\n${RESPONSE_MARKER}`)) continue;
    const body = prompt.slice(prefix.length, prompt.length - RESPONSE_MARKER.length - 2);
    if (!withInput) return { instruction: body, input: '' };
    const sep = body.lastIndexOf('\n\n### Input:\n');
    if (sep < 0) continue;
    return { instruction: body.slice(0, sep), input: body.slice(sep + '\n\n### Input:\n'.length) };
  }
  return null;
}

/** What SFT example building needs from a tokenizer. */
export interface TextEncoderLike {
  encode(text: string, opts?: { addBos?: boolean; addEos?: boolean; parseSpecial?: boolean }): number[];
  readonly bosId: number | null;
  readonly eosId: number | null;
}

export interface SftExample {
  /** [BOS] prompt ids, response ids, [EOS] */
  inputIds: number[];
  /** IGNORE_INDEX over the prompt, the ids over the response and EOS; aligned with inputIds as in Hugging Face
   * (the loss shifts by one: position i predicts labels[i + 1]) */
  labels: number[];
  /** number of leading positions that belong to the prompt (BOS included) */
  promptLength: number;
  /** true when maxLength cut the example */
  truncated: boolean;
}

export interface SftOptions {
  /** Prepend BOS. Default true when the tokenizer has one. */
  addBos?: boolean;
  /** Append EOS after the response, so the model learns to stop. Default true. */
  addEos?: boolean;
  /** Cut the example to this many tokens (response end first; the prompt is never cut). */
  maxLength?: number;
}

/**
 * Tokenizes prompt and response separately and concatenates the ids, so the prompt/response boundary is exact
 * (tokenizing the joined text could merge the last prompt bytes with the first response bytes). The ids still
 * decode to prompt + response.
 */
export function buildSftExample(tok: TextEncoderLike, rec: AlpacaRecord, opts: SftOptions = {}): SftExample {
  if (typeof rec?.output !== 'string') throw new TypeError('buildSftExample: "output" must be a string');
  const addBos = opts.addBos ?? tok.bosId !== null;
  const addEos = opts.addEos ?? true;
  if (addEos && tok.eosId === null) throw new Error('buildSftExample: addEos, but the tokenizer has no EOS token');
  // data text never yields control tokens: a literal "</s>" in a response stays text
  const promptIds = tok.encode(formatPrompt(rec), { addBos, parseSpecial: false });
  const responseIds = tok.encode(rec.output, { addEos, parseSpecial: false });
  let inputIds = [...promptIds, ...responseIds];
  let truncated = false;
  if (opts.maxLength !== undefined) {
    if (!Number.isInteger(opts.maxLength) || opts.maxLength <= 0) throw new RangeError(`buildSftExample: maxLength must be a positive integer, got ${opts.maxLength}`);
    if (promptIds.length >= opts.maxLength) {
      throw new RangeError(`buildSftExample: the prompt alone has ${promptIds.length} tokens, not less than maxLength ${opts.maxLength}`);
    }
    if (inputIds.length > opts.maxLength) { inputIds = inputIds.slice(0, opts.maxLength); truncated = true; }
  }
  const labels = inputIds.map((id, i) => (i < promptIds.length ? IGNORE_INDEX : id));
  return { inputIds, labels, promptLength: promptIds.length, truncated };
}
