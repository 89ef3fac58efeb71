// Tokenizer: a Hugging Face tokenizer.json (BPE model) loaded into our own pipeline, with BOS/EOS/PAD ids.
//
// Text handling contract: JS strings may hold lone surrogates, which have no UTF-8 form. encode() first makes
// the string well-formed (each lone surrogate -> U+FFFD, as the WHATWG UTF-8 encoder and
// String.prototype.toWellFormed do), so decode(encode(s)) === wellFormed(s) for byte-level tokenizers, and
// === s for every well-formed s.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BpeModel } from './bpe.ts';
import { byteCharsToBytes, toByteChars, utf8Decode, wellFormed } from './bytes.ts';
import {
  asObject, buildDecoder, buildNormalizer, buildPostProcessor, buildPreTokenizer,
  type Decoder, type JsonObject, type Normalizer, type PostProcessor, type PreTokenizerPlan,
} from './components.ts';

export interface AddedToken {
  id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean;
}

export interface EncodeOptions {
  /** Prepend the BOS id (unless the ids already start with it). Default false. */
  addBos?: boolean;
  /** Append the EOS id. Default false. */
  addEos?: boolean;
  /** Apply the file's post-processor (e.g. LLaMA's template that adds <s>). Default false. */
  addSpecialTokens?: boolean;
  /** Recognise special tokens written in the text (e.g. "</s>") as single ids. Default true; set false for
   * untrusted text so that it cannot inject control tokens. Non-special added tokens are always recognised. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, PAD, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
  /** What to do with an id that has no token: 'error' (default) or 'skip' (as the Rust crate does). */
  unknownIds?: 'error' | 'skip';
}

/** Names of the special tokens, as in tokenizer_config.json. */
export interface SpecialTokenNames { bos?: string | null; eos?: string | null; pad?: string | null; unk?: string | null }

const GUESSES: Record<keyof SpecialTokenNames, string[]> = {
  bos: ['<|bos|>', '<s>', '<|begin_of_text|>', '<bos>', '[BOS]', '<|startoftext|>'],
  eos: ['<|eos|>', '</s>', '<|end_of_text|>', '<eos>', '[EOS]', '<|endoftext|>'],
  pad: ['<|pad|>', '<pad>', '[PAD]', '<|finetune_right_pad_id|>'],
  unk: ['<unk>', '[UNK]', '<|unk|>'],
};

interface Section { text: string; token: AddedToken | null; atStart: boolean }

export class Tokenizer {
  /** The tokenizer.json object this tokenizer was built from; save() writes it back unchanged. */
  readonly json: JsonObject;
  readonly model: BpeModel;
  readonly addedTokens: readonly AddedToken[];
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  readonly specialNames: Required<SpecialTokenNames>;
  private readonly idToTokenTable: (string | undefined)[];
  private readonly specialIds: Set<number>;
  private readonly normalizer: Normalizer | null;
  private readonly preTokenizer: PreTokenizerPlan | null;
  /** pre-tokenized piece (before the byte mapping) -> ids */
  private readonly cache = new Map<string, Int32Array>();
  private readonly postProcessor: PostProcessor | null;
  private readonly decoder: Decoder | null;
  private readonly rawMatcher: RegExp | null;        // added tokens matched before normalization
  private readonly rawMatcherNoSpecial: RegExp | null;
  private readonly normMatcher: RegExp | null;       // added tokens with normalized: true, matched after it
  private readonly normMatcherNoSpecial: RegExp | null;
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly addedByNormalizedContent = new Map<string, AddedToken>();
  private readonly byteLevelDecoder: boolean;
  private readonly tokenBytes = new Map<string, Uint8Array>();

  constructor(json: unknown, names: SpecialTokenNames = {}) {
    this.json = asObject(json, 'tokenizer.json root');
    this.normalizer = buildNormalizer(this.json.normalizer);
    this.preTokenizer = buildPreTokenizer(this.json.pre_tokenizer);
    this.model = BpeModel.fromJSON(this.json.model);
    this.postProcessor = buildPostProcessor(this.json.post_processor);
    this.decoder = buildDecoder(this.json.decoder);
    this.byteLevelDecoder = (this.json.decoder as JsonObject | null)?.type === 'ByteLevel';

    const added = (Array.isArray(this.json.added_tokens) ? this.json.added_tokens : []).map((t, i): AddedToken => {
      const o = asObject(t, `added_tokens[${i}]`);
      if (typeof o.content !== 'string' || o.content === '' || !Number.isInteger(o.id) || (o.id as number) < 0) {
        throw new Error(`tokenizer.json: added_tokens[${i}] needs a non-empty "content" and an integer "id" >= 0`);
      }
      return {
        id: o.id as number, content: o.content, single_word: o.single_word === true, lstrip: o.lstrip === true,
        rstrip: o.rstrip === true, normalized: typeof o.normalized === 'boolean' ? o.normalized : o.special !== true,
        special: o.special === true,
      };
    });
    this.addedTokens = added;
    const table: (string | undefined)[] = [];
    for (const [tok, id] of this.model.vocab) table[id] = tok;
    for (const t of added) { table[t.id] = t.content; this.addedByContent.set(t.content, t); }
    this.idToTokenTable = table;
    this.vocabSize = table.length;
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));

    const matcher = (all: AddedToken[]): RegExp | null => {
      const list = all.filter((t) => t.content.length > 0);
      if (!list.length) return null;
      const alts = list.sort((a, b) => b.content.length - a.content.length)
        .map((t) => t.content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      return new RegExp(alts.join('|'), 'gu');
    };
    const raw = added.filter((t) => !t.normalized || !this.normalizer);
    const norm = this.normalizer ? added.filter((t) => t.normalized) : [];
    for (const t of norm) this.addedByNormalizedContent.set(this.normalizer!(t.content), t);
    this.rawMatcher = matcher(raw);
    this.rawMatcherNoSpecial = matcher(raw.filter((t) => !t.special));
    const normalizedCopies = norm.map((t) => ({ ...t, content: this.normalizer!(t.content) }));
    this.normMatcher = matcher(normalizedCopies);
    this.normMatcherNoSpecial = matcher(normalizedCopies.filter((t) => !t.special));

    const resolve = (kind: keyof SpecialTokenNames): string | null => {
      const given = names[kind];
      if (given !== undefined) return given;
      if (kind === 'unk' && this.model.unkToken) return this.model.unkToken;
      return GUESSES[kind].find((g) => this.tokenToId(g) !== null) ?? null;
    };
    this.specialNames = { bos: resolve('bos'), eos: resolve('eos'), pad: resolve('pad'), unk: resolve('unk') };
    const idOf = (name: string | null, kind: string): number | null => {
      if (name === null) return null;
      const id = this.tokenToId(name);
      if (id === null) throw new Error(`tokenizer: ${kind} token "${name}" is not in the vocabulary`);
      return id;
    };
    this.bosId = idOf(this.specialNames.bos, 'bos');
    this.eosId = idOf(this.specialNames.eos, 'eos');
    this.padId = idOf(this.specialNames.pad, 'pad');
    this.unkId = idOf(this.specialNames.unk, 'unk');
  }

  /** Loads tokenizer.json (a file, or a folder holding one); special token names come from a
   * tokenizer_config.json beside it when present, else from well-known names. */
  static load(path: string, names: SpecialTokenNames = {}): Tokenizer {
    const file = existsSync(join(path, 'tokenizer.json')) ? join(path, 'tokenizer.json') : path;
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (e) { throw new Error(`tokenizer: cannot read ${file}: ${(e as Error).message}`); }
    let json: unknown;
    try { json = JSON.parse(text); } catch (e) { throw new Error(`tokenizer: ${file} is not valid JSON: ${(e as Error).message}`); }
    const configFile = join(dirname(file), 'tokenizer_config.json');
    const fromConfig: SpecialTokenNames = {};
    if (existsSync(configFile)) {
      const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
      for (const kind of ['bos', 'eos', 'pad', 'unk'] as const) {
        const v = cfg[`${kind}_token`];
        if (typeof v === 'string') fromConfig[kind] = v;
        else if (v && typeof v === 'object' && typeof (v as JsonObject).content === 'string') fromConfig[kind] = (v as JsonObject).content as string;
        else if (v === null) fromConfig[kind] = null;
      }
    }
    try {
      return new Tokenizer(json, { ...fromConfig, ...names });
    } catch (e) {
      throw new Error(`${(e as Error).message} (in ${file})`);
    }
  }

  /** Writes tokenizer.json to `path` (a file path, or a folder); beside a file named tokenizer.json it also
   * writes tokenizer_config.json with the special token names, as Hugging Face folders have. */
  save(path: string): void {
    const isDir = existsSync(path) && !path.endsWith('.json');
    const file = isDir ? join(path, 'tokenizer.json') : path;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(this.json, null, 2));
    if (basename(file) === 'tokenizer.json') {
      const n = this.specialNames;
      writeFileSync(join(dirname(file), 'tokenizer_config.json'), JSON.stringify({
        tokenizer_class: 'PreTrainedTokenizerFast', bos_token: n.bos, eos_token: n.eos, pad_token: n.pad, unk_token: n.unk,
        add_bos_token: false, add_eos_token: false, clean_up_tokenization_spaces: false, model_max_length: 1e30,
      }, null, 2));
    }
  }

  /**
   * A new tokenizer with `contents` added as tokens after the current vocabulary (ids vocabSize, vocabSize + 1, ...),
   * as Hugging Face's add_tokens / add_special_tokens do: special tokens (the default) are matched as one id
   * only where special tokens are parsed, and skipped by decode({ skipSpecialTokens }). Tokens already present
   * keep their ids. The special token names (BOS, EOS, PAD, UNK) carry over.
   */
  withAddedTokens(contents: readonly string[], opts: { special?: boolean } = {}): Tokenizer {
    const special = opts.special ?? true;
    const json = JSON.parse(JSON.stringify(this.json)) as JsonObject;
    const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as JsonObject[];
    let next = this.vocabSize;
    for (const content of contents) {
      if (typeof content !== 'string' || content === '') throw new Error('withAddedTokens: tokens must be non-empty strings');
      if (this.tokenToId(content) !== null) continue;
      added.push({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
    }
    json.added_tokens = added;
    return new Tokenizer(json, this.specialNames);
  }

  tokenToId(token: string): number | null {
    return this.addedByContent.get(token)?.id ?? this.model.vocab.get(token) ?? null;
  }
  idToToken(id: number): string | null { return this.idToTokenTable[id] ?? null; }
  isSpecial(id: number): boolean { return this.specialIds.has(id); }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`tokenizer.encode: expected a string, got ${typeof text}`);
    const ids: number[] = [];
    const special = opts.parseSpecial !== false;
    const sections = splitAdded(wellFormed(text), special ? this.rawMatcher : this.rawMatcherNoSpecial, this.addedByContent, true);
    for (const sec of sections) {
      if (sec.token) { ids.push(sec.token.id); continue; }
      if (!this.normalizer) { this.encodeText(sec.text, sec.atStart, ids); continue; }
      const normalized = this.normalizer(sec.text);
      const inner = splitAdded(normalized, special ? this.normMatcher : this.normMatcherNoSpecial, this.addedByNormalizedContent, sec.atStart);
      for (const s of inner) {
        if (s.token) ids.push(s.token.id); else this.encodeText(s.text, s.atStart, ids);
      }
    }
    let out = opts.addSpecialTokens && this.postProcessor ? this.postProcessor(ids) : ids;
    if (opts.addBos) {
      if (this.bosId === null) throw new Error('tokenizer.encode: addBos, but this tokenizer has no BOS token');
      if (out[0] !== this.bosId) out = [this.bosId, ...out];
    }
    if (opts.addEos) {
      if (this.eosId === null) throw new Error('tokenizer.encode: addEos, but this tokenizer has no EOS token');
      out.push(this.eosId);
    }
    return out;
  }

  /** Encodes each text; see encode(). */
  encodeBatch(texts: readonly string[], opts: EncodeOptions = {}): number[][] {
    if (!Array.isArray(texts)) throw new TypeError('tokenizer.encodeBatch: expected an array of strings');
    return texts.map((t) => this.encode(t, opts));
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = Number.isInteger(id) ? this.idToTokenTable[id] : undefined;
      if (tok === undefined) {
        if (opts.unknownIds === 'skip') continue;
        throw new RangeError(`tokenizer.decode: id ${String(id)} at position ${i} is not in the vocabulary (size ${this.vocabSize})`);
      }
      if (opts.skipSpecialTokens && this.specialIds.has(id)) continue;
      tokens.push(tok);
    }
    if (!this.decoder) return tokens.join(' ');
    if (this.byteLevelDecoder) return this.decodeBytes(tokens);
    return this.decoder(tokens).join('');
  }

  /** The plain ByteLevel decoder without building the joined string: bytes per token are cached. */
  private decodeBytes(tokens: string[]): string {
    const parts: Uint8Array[] = new Array(tokens.length);
    let size = 0;
    for (let i = 0; i < tokens.length; i++) {
      let b = this.tokenBytes.get(tokens[i]);
      if (!b) { b = byteCharsToBytes(tokens[i]); this.tokenBytes.set(tokens[i], b); }
      parts[i] = b; size += b.length;
    }
    const all = new Uint8Array(size);
    let at = 0;
    for (const b of parts) { all.set(b, at); at += b.length; }
    return utf8Decode(all);
  }

  decodeBatch(batch: readonly ArrayLike<number>[], opts: DecodeOptions = {}): string[] {
    return batch.map((ids) => this.decode(ids, opts));
  }

  private encodeText(text: string, atStart: boolean, out: number[]): void {
    if (text.length === 0) return;
    const plan = this.preTokenizer;
    const pieces = plan?.split ? plan.split([text], atStart) : [text];
    const byteLevel = plan?.byteLevel === true;
    for (const p of pieces) {
      let ids = this.cache.get(p);
      if (!ids) {
        ids = this.model.encodePiece(byteLevel ? toByteChars(p) : p);
        if (p.length <= 256) {
          if (this.cache.size >= 200_000) this.cache.clear();
          this.cache.set(p, ids);
        }
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    }
  }
}

/** Pads sequences into one row-major matrix. */
export function padBatch(seqs: readonly number[][], padId: number, opts: { side?: 'left' | 'right'; length?: number } = {}):
  { ids: Int32Array; lengths: Int32Array; width: number } {
  const width = opts.length ?? Math.max(0, ...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * width).fill(padId);
  const lengths = new Int32Array(seqs.length);
  seqs.forEach((s, r) => {
    if (s.length > width) throw new RangeError(`padBatch: sequence ${r} has ${s.length} tokens, more than the width ${width}`);
    lengths[r] = s.length;
    ids.set(s, r * width + (opts.side === 'left' ? width - s.length : 0));
  });
  return { ids, lengths, width };
}

/** Splits text around added tokens (leftmost-longest), applying their lstrip/rstrip/single_word flags. */
function splitAdded(text: string, matcher: RegExp | null, byContent: Map<string, AddedToken>, atStart: boolean): Section[] {
  if (!matcher) return [{ text, token: null, atStart }];
  const out: Section[] = [];
  let last = 0;
  matcher.lastIndex = 0;
  for (let m = matcher.exec(text); m; m = matcher.exec(text)) {
    const tok = byContent.get(m[0])!;
    let start = m.index, end = start + m[0].length;
    if (tok.single_word && (isWordChar(text, start - 1) || isWordChar(text, end))) { matcher.lastIndex = start + 1; continue; }
    if (tok.lstrip) while (start > last && /\s/u.test(text[start - 1])) start--;
    if (tok.rstrip) while (end < text.length && /\s/u.test(text[end])) end++;
    if (start > last) out.push({ text: text.slice(last, start), token: null, atStart: atStart && last === 0 });
    out.push({ text: m[0], token: tok, atStart: false });
    last = end;
    matcher.lastIndex = end;
  }
  if (last < text.length) out.push({ text: text.slice(last), token: null, atStart: atStart && last === 0 });
  return out;
}

function isWordChar(text: string, i: number): boolean {
  return i >= 0 && i < text.length && /[\p{L}\p{N}_]/u.test(text[i]);
}
