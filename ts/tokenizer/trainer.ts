// Byte-level BPE training (GPT-2 / LLaMA-3 style) that writes a Hugging Face tokenizer.json.
//
// Speed comes from three choices: the corpus is split into words once and only the unique words (with counts)
// are kept; pair counts are updated incrementally, touching only the words that hold the merged pair
// (found through a pair -> words index); the best pair comes from a max-heap whose stale entries are
// re-checked against the live count when popped.
import { BYTE_TO_CHAR, utf8Bytes, wellFormed } from './bytes.ts';
import { compilePattern, GPT2_PATTERN, LLAMA3_PATTERN } from './regex.ts';
import { Tokenizer } from './tokenizer.ts';

export interface TrainOptions {
  /** Total vocabulary size: 256 byte tokens + merges + special tokens. */
  vocabSize: number;
  /** Special token names; null leaves a role out. Defaults: <|bos|>, <|eos|>, <|pad|>. */
  bos?: string | null;
  eos?: string | null;
  pad?: string | null;
  /** More special tokens (e.g. chat markers), after bos/eos/pad. */
  extraSpecialTokens?: string[];
  /** Fixed phrases that become single non-special added tokens (always recognised in text, kept on decode):
   * e.g. the prompt template's boilerplate (TEMPLATE_PHRASES), which otherwise costs ~30 tokens per example. */
  phrases?: string[];
  /** Split pattern (Oniguruma syntax, as stored in the file): 'llama3' (default), 'gpt2', or a pattern. */
  pattern?: 'llama3' | 'gpt2' | string;
  /** Stop early when the best pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
  /** Called every 100 merges and at the end. */
  onProgress?: (merges: number, target: number) => void;
}

export interface TrainStats { uniqueWords: number; totalWords: number; merges: number; seconds: { count: number; merge: number } }

const KEY = 2 ** 22; // pair key = a * 2^22 + b

/** Counts the pre-tokenized words of a corpus; occurrences of `specialTokens` are cut out first, as the
 * tokenizer will encode them as single ids. */
export function countWords(texts: string | Iterable<string>, pattern: string, specialTokens: readonly string[] = []): Map<string, number> {
  const re = compilePattern(pattern);
  const specialRe = specialTokens.length
    ? new RegExp([...specialTokens].sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gu')
    : null;
  const counts = new Map<string, number>();
  for (const raw of typeof texts === 'string' ? [texts] : texts) {
    for (const text of specialRe ? wellFormed(raw).split(specialRe) : [wellFormed(raw)]) countInto(counts, re, text);
  }
  return counts;
}

function countInto(counts: Map<string, number>, re: RegExp, text: string): void {
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const w = m[0];
    if (w.length === 0) { re.lastIndex++; continue; }
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
}

/** Max-heap of (count, pair key); ties go to the smaller key, i.e. the lexicographically smaller id pair. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number { return this.keys.length; }
  private above(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]; this.counts[i] = this.counts[j]; this.counts[j] = c;
    const k = this.keys[i]; this.keys[i] = this.keys[j]; this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count); this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) { const p = (i - 1) >> 1; if (!this.above(i, p)) break; this.swap(i, p); i = p; }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    if (this.keys.length) {
      this.counts[0] = lastC; this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < this.keys.length && this.above(l, m)) m = l;
        if (r < this.keys.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m); i = m;
      }
    }
    return top;
  }
}

/** Trains and returns the tokenizer.json object. */
export function trainBpeJson(texts: string | Iterable<string>, opts: TrainOptions, stats?: Partial<TrainStats>): Record<string, unknown> {
  const specials = [opts.bos === undefined ? '<|bos|>' : opts.bos, opts.eos === undefined ? '<|eos|>' : opts.eos,
    opts.pad === undefined ? '<|pad|>' : opts.pad, ...(opts.extraSpecialTokens ?? [])].filter((s): s is string => s !== null);
  if (new Set(specials).size !== specials.length) throw new Error(`trainBpe: special tokens repeat: ${specials.join(', ')}`);
  if (specials.some((s) => s.length === 0)) throw new Error('trainBpe: a special token is the empty string');
  const phrases = [...new Set(opts.phrases ?? [])];
  if (phrases.some((s) => typeof s !== 'string' || s.length === 0)) throw new Error('trainBpe: a phrase is empty or not a string');
  if (phrases.some((s) => specials.includes(s))) throw new Error('trainBpe: a phrase is also a special token');
  const reserved = specials.length + phrases.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 256 + reserved || opts.vocabSize >= KEY) {
    throw new Error(`trainBpe: vocabSize must be an integer in [${256 + reserved}, ${KEY}) (256 bytes + ${specials.length} special tokens + ${phrases.length} phrases), got ${opts.vocabSize}`);
  }
  const minFrequency = opts.minFrequency ?? 2;
  const pattern = opts.pattern === undefined || opts.pattern === 'llama3' ? LLAMA3_PATTERN : opts.pattern === 'gpt2' ? GPT2_PATTERN : opts.pattern;
  const targetMerges = opts.vocabSize - 256 - reserved;

  const t0 = performance.now();
  const counts = countWords(texts, pattern, [...specials, ...phrases]);
  const t1 = performance.now();

  // unique words as byte-id sequences; ids 0..255 are the bytes themselves
  const words: Int32Array[] = [];
  const weight: number[] = [];
  let totalWords = 0;
  for (const [w, c] of counts) {
    totalWords += c;
    const bytes = utf8Bytes(w);
    if (bytes.length < 2) continue; // holds no pair
    words.push(Int32Array.from(bytes)); weight.push(c);
  }
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>(); // may hold stale or repeated word indices
  words.forEach((s, w) => {
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * KEY + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + weight[w]);
      const list = pairWords.get(key);
      if (!list) pairWords.set(key, [w]); else if (list[list.length - 1] !== w) list.push(w);
    }
  });
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);

  const tokens: string[] = BYTE_TO_CHAR.slice();
  const tokenIds = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const merges: [string, string][] = [];
  const seen = new Int32Array(words.length).fill(-1); // last merge step that visited each word
  while (tokens.length < 256 + targetMerges && heap.size > 0) {
    const [c, key] = heap.pop();
    const live = pairCount.get(key) ?? 0;
    if (live !== c) { if (live > 0) heap.push(live, key); continue; }
    if (c < minFrequency) break;
    const a = Math.floor(key / KEY), b = key - a * KEY;
    // two different pairs can spell the same bytes ("ab"+"c", "a"+"bc"): they share one id, as in HF's trainer
    const spelled = tokens[a] + tokens[b];
    let id = tokenIds.get(spelled);
    if (id === undefined) { id = tokens.length; tokens.push(spelled); tokenIds.set(spelled, id); }
    merges.push([tokens[a], tokens[b]]);
    const touched = new Set<number>();
    const step = merges.length;
    for (const w of pairWords.get(key) ?? []) {
      if (seen[w] === step) continue;
      seen[w] = step;
      const s = words[w];
      let found = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) { found = true; break; }
      if (!found) continue;
      const merged = new Int32Array(s.length);
      let n = 0;
      for (let i = 0; i < s.length;) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { merged[n++] = id; i += 2; } else merged[n++] = s[i++];
      }
      const ns = merged.slice(0, n);
      const wt = weight[w];
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i] * KEY + s[i + 1];
        pairCount.set(k, pairCount.get(k)! - wt);
      }
      for (let i = 0; i + 1 < ns.length; i++) {
        const k = ns[i] * KEY + ns[i + 1];
        pairCount.set(k, (pairCount.get(k) ?? 0) + wt);
        if (ns[i] === id || ns[i + 1] === id) {
          touched.add(k);
          const list = pairWords.get(k);
          if (!list) pairWords.set(k, [w]); else if (list[list.length - 1] !== w) list.push(w);
        }
      }
      words[w] = ns;
    }
    pairWords.delete(key);
    pairCount.delete(key);
    for (const k of touched) { const live2 = pairCount.get(k)!; if (live2 > 0) heap.push(live2, k); }
    if (opts.onProgress && merges.length % 100 === 0) opts.onProgress(tokens.length - 256, targetMerges);
  }
  opts.onProgress?.(tokens.length - 256, targetMerges);
  const t2 = performance.now();
  if (stats) Object.assign(stats, { uniqueWords: counts.size, totalWords, merges: merges.length, seconds: { count: (t1 - t0) / 1e3, merge: (t2 - t1) / 1e3 } });

  // a short corpus may stop early: the vocabulary is then smaller than asked, specials follow the merges
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => { vocab[t] = i; });
  const added = [...specials, ...phrases].map((content, i) => ({
    id: tokens.length + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: i < specials.length,
  }));
  const bos = opts.bos === undefined ? '<|bos|>' : opts.bos;
  const bosId = bos === null ? -1 : added.find((t) => t.content === bos)!.id;
  const splitStage = { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false };
  const byteStage = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: pattern === GPT2_PATTERN };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: pattern === GPT2_PATTERN ? byteStage : { type: 'Sequence', pretokenizers: [splitStage, byteStage] },
    post_processor: bos === null ? { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true } : {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

/** Trains a byte-level BPE tokenizer on a corpus. */
export function trainBpe(texts: string | Iterable<string>, opts: TrainOptions, stats?: Partial<TrainStats>): Tokenizer {
  const json = trainBpeJson(texts, opts, stats);
  return new Tokenizer(json, { bos: opts.bos === undefined ? '<|bos|>' : opts.bos, eos: opts.eos === undefined ? '<|eos|>' : opts.eos,
    pad: opts.pad === undefined ? '<|pad|>' : opts.pad, unk: null });
}
