// Hand-built tokenizer.json objects in the layouts real LLaMA checkpoints use, small enough to derive ids by hand.
import { BYTE_TO_CHAR, byteFallbackToken } from '../../ts/tokenizer/bytes.ts';
import { LLAMA3_PATTERN } from '../../ts/tokenizer/regex.ts';

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/**
 * SentencePiece-converted BPE as in LLaMA-1/2: <unk>=0 <s>=1 </s>=2, <0x00>..<0xFF> = 3..258, then pieces.
 * style 'legacy': normalizer Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer (LLaMA-2 files);
 * style 'metaspace': no normalizer, Metaspace pre-tokenizer with prepend_scheme "first" (legacy=false files).
 */
export function llama2Json(style: 'legacy' | 'metaspace', opts: { byteFallback?: boolean; fuseUnk?: boolean } = {}): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[byteFallbackToken(b)] = 3 + b;
  const pieces = ['▁', 't', 'h', 'e', 'r', 'H', 'i', '▁t', 'he', '▁the', '▁H', '▁Hi', 're', '▁there', 'er'];
  pieces.forEach((p, i) => { vocab[p] = 259 + i; });
  const merges = ['▁ t', 'h e', '▁t he', '▁ H', '▁H i', 'r e', '▁the re', 'e r'];
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: style === 'legacy'
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] }
      : null,
    pre_tokenizer: style === 'legacy' ? null : { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence', decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: opts.fuseUnk ?? true, byte_fallback: opts.byteFallback ?? true, ignore_merges: false, vocab, merges,
    },
  };
}

/**
 * Byte-level BPE as in LLaMA-3: byte characters 0..255 (in byte order here), merges, a token reachable only
 * through ignore_merges, <|begin_of_text|>=261 <|end_of_text|>=262, the LLaMA-3 split pattern.
 */
export function llama3Json(ignoreMerges = true): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[BYTE_TO_CHAR[b]] = b;
  Object.assign(vocab, { 'Ġt': 256, he: 257, 'Ġthe': 258, in: 259, 'Ġfarm': 260 });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(261, '<|begin_of_text|>'), special(262, '<|end_of_text|>')],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'Sequence', processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [],
          special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [261], tokens: ['<|begin_of_text|>'] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: ignoreMerges, vocab,
      merges: [['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['i', 'n']],
    },
  };
}

/** Seeded generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random JS strings over many Unicode areas; with `loneSurrogates`, unpaired UTF-16 halves too. */
export function randomString(r: () => number, maxLen: number, loneSurrogates: boolean): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x00, 0x1f], [0xa0, 0xff], [0x300, 0x36f], [0x4e00, 0x9fff],
    [0x1f300, 0x1faff], [0x200d, 0x200d], [0xfe0f, 0xfe0f], [0x10000, 0x10ffff], [0x0590, 0x06ff], [0x3000, 0x303f],
  ];
  const ws = [' ', ' ', '\n', '\t', '\r\n', '  ', '\u00a0'];
  let s = '';
  const n = Math.floor(r() * maxLen);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.15) { s += ws[Math.floor(r() * ws.length)]; continue; }
    if (loneSurrogates && k < 0.2) { s += String.fromCharCode(0xd800 + Math.floor(r() * 0x800)); continue; }
    const [lo, hi] = ranges[Math.floor(r() * ranges.length)];
    let cp = lo + Math.floor(r() * (hi - lo + 1));
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}
