// The non-model stages of a Hugging Face tokenizer.json pipeline: normalizers, pre-tokenizers, post-processors
// and decoders, built from their JSON. Semantics follow the Rust `tokenizers` crate (the reference that wrote
// these files); each stage type we do not implement is an error naming the type.
import { fromByteChars, parseByteFallbackToken, toByteChars } from './bytes.ts';
import { compilePattern, GPT2_PATTERN } from './regex.ts';

export type JsonObject = Record<string, unknown>;

export function asObject(x: unknown, what: string): JsonObject {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new Error(`tokenizer.json: ${what} must be an object`);
  return x as JsonObject;
}
function typeOf(cfg: JsonObject, what: string): string {
  if (typeof cfg.type !== 'string') throw new Error(`tokenizer.json: ${what} has no "type"`);
  return cfg.type;
}
function unsupported(what: string, type: string, supported: string[]): Error {
  return new Error(`tokenizer.json: unsupported ${what} type "${type}" (supported: ${supported.join(', ')})`);
}
function str(cfg: JsonObject, key: string, def?: string): string {
  const v = cfg[key];
  if (typeof v === 'string') return v;
  if (v === undefined && def !== undefined) return def;
  throw new Error(`tokenizer.json: ${String(cfg.type)} needs a string "${key}"`);
}

/** {String: "x"} or {Regex: "..."} -> a global RegExp. */
function patternOf(p: unknown, owner: string): RegExp {
  const o = asObject(p, `${owner}.pattern`);
  if (typeof o.String === 'string') return new RegExp(o.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
  if (typeof o.Regex === 'string') return compilePattern(o.Regex);
  throw new Error(`tokenizer.json: ${owner}.pattern must be {"String": ...} or {"Regex": ...}`);
}

// ---------------------------------------------------------------- normalizers

export type Normalizer = (text: string) => string;
const NORMALIZERS = ['Sequence', 'Prepend', 'Replace', 'NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase', 'Strip'];

export function buildNormalizer(json: unknown): Normalizer | null {
  if (json === null || json === undefined) return null;
  const cfg = asObject(json, 'normalizer');
  const type = typeOf(cfg, 'normalizer');
  switch (type) {
    case 'Sequence': {
      const parts = (cfg.normalizers as unknown[] ?? []).map(buildNormalizer).filter((n): n is Normalizer => n !== null);
      return (s) => parts.reduce((acc, n) => n(acc), s);
    }
    case 'Prepend': { const pre = str(cfg, 'prepend'); return (s) => (s.length ? pre + s : s); }
    case 'Replace': { const re = patternOf(cfg.pattern, 'Replace'); const content = str(cfg, 'content'); return (s) => s.replace(re, () => content); }
    case 'NFC': case 'NFD': case 'NFKC': case 'NFKD': return (s) => s.normalize(type);
    case 'Lowercase': return (s) => s.toLowerCase();
    case 'Strip': {
      const left = cfg.strip_left !== false, right = cfg.strip_right !== false;
      return (s) => (left && right ? s.trim() : left ? s.trimStart() : right ? s.trimEnd() : s);
    }
    default: throw unsupported('normalizer', type, NORMALIZERS);
  }
}

// ---------------------------------------------------------------- pre-tokenizers

/** Splits of a section; `atStart` is true when pieces[0] begins at offset 0 of the whole input. */
export type PreTokenizer = (pieces: string[], atStart: boolean) => string[];
const PRE_TOKENIZERS = ['ByteLevel', 'Split', 'Metaspace', 'Sequence', 'Digits', 'Whitespace', 'WhitespaceSplit'];

type Behavior = 'removed' | 'isolated' | 'mergedwithprevious' | 'mergedwithnext' | 'contiguous';

/** Split one string by a regex the way the Rust crate's `split(pattern, behavior)` does. */
export function splitBy(text: string, re: RegExp, behavior: Behavior, invert = false): string[] {
  if (behavior === 'isolated') {
    const out: string[] = [];
    let last = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const start = m.index, end = start + m[0].length;
      if (end === start) { re.lastIndex++; continue; }
      if (start > last) out.push(text.slice(last, start));
      out.push(m[0]);
      last = end;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }
  const segs: { s: number; e: number; m: boolean }[] = [];
  let last = 0;
  re.lastIndex = 0;
  for (const m of text.matchAll(re)) {
    const start = m.index ?? 0, end = start + m[0].length;
    if (end === start) continue;
    if (start > last) segs.push({ s: last, e: start, m: invert });
    segs.push({ s: start, e: end, m: !invert });
    last = end;
  }
  if (last < text.length) segs.push({ s: last, e: text.length, m: invert });
  const out: { s: number; e: number }[] = [];
  switch (behavior) {
    case 'removed': for (const g of segs) if (!g.m) out.push(g); break;
    case 'contiguous': {
      let prev = false;
      for (const g of segs) { if (g.m && prev) out[out.length - 1].e = g.e; else out.push({ ...g }); prev = g.m; }
      break;
    }
    case 'mergedwithprevious': {
      let prev = false;
      for (const g of segs) { if (g.m && !prev && out.length) out[out.length - 1].e = g.e; else out.push({ ...g }); prev = g.m; }
      break;
    }
    case 'mergedwithnext': {
      let prev = false;
      for (let i = segs.length - 1; i >= 0; i--) {
        const g = segs[i];
        if (g.m && !prev && out.length) out[out.length - 1].s = g.s; else out.push({ ...g });
        prev = g.m;
      }
      out.reverse();
      break;
    }
  }
  return out.map((g) => text.slice(g.s, g.e));
}

function behaviorOf(cfg: JsonObject): Behavior {
  const b = str(cfg, 'behavior', 'Isolated').toLowerCase();
  if (!['removed', 'isolated', 'mergedwithprevious', 'mergedwithnext', 'contiguous'].includes(b)) {
    throw new Error(`tokenizer.json: unknown split behavior "${String(cfg.behavior)}"`);
  }
  return b as Behavior;
}

/** A pre-tokenizer whose final ByteLevel stage (bytes -> characters) is left to the caller, so that it runs
 * only for pieces missing from the encode cache. */
export interface PreTokenizerPlan { split: PreTokenizer | null; byteLevel: boolean }

export function buildPreTokenizer(json: unknown): PreTokenizerPlan | null {
  if (json === null || json === undefined) return null;
  const cfg = asObject(json, 'pre_tokenizer');
  const type = typeOf(cfg, 'pre_tokenizer');
  const perPiece = (f: (p: string, first: boolean) => string[]): PreTokenizer =>
    (pieces, atStart) => {
      if (pieces.length === 1) return f(pieces[0], atStart);
      const out: string[] = [];
      pieces.forEach((p, i) => { for (const x of f(p, atStart && i === 0)) out.push(x); });
      return out;
    };
  switch (type) {
    case 'Sequence': {
      const parts = (cfg.pretokenizers as unknown[] ?? []).map(buildPreTokenizer).filter((p): p is PreTokenizerPlan => p !== null);
      if (!parts.length) return null;
      const steps: PreTokenizer[] = [];
      parts.forEach((p, i) => {
        if (p.split) steps.push(p.split);
        if (p.byteLevel && i < parts.length - 1) steps.push((pieces) => pieces.map(toByteChars)); // later stages see bytes
      });
      return { split: steps.length ? (pieces, atStart) => steps.reduce((acc, f) => f(acc, atStart), pieces) : null, byteLevel: parts[parts.length - 1].byteLevel };
    }
    case 'ByteLevel': {
      const prefix = cfg.add_prefix_space === true;
      const re = cfg.use_regex === false ? null : compilePattern(GPT2_PATTERN);
      if (!prefix && !re) return { split: null, byteLevel: true };
      return {
        split: perPiece((p) => {
          if (prefix && !p.startsWith(' ')) p = ' ' + p;
          return re ? splitBy(p, re, 'isolated') : [p];
        }),
        byteLevel: true,
      };
    }
    case 'Split': {
      const re = patternOf(cfg.pattern, 'Split');
      const behavior = behaviorOf(cfg);
      const invert = cfg.invert === true;
      return { split: perPiece((p) => splitBy(p, re, behavior, invert)), byteLevel: false };
    }
    case 'Metaspace': {
      const rep = str(cfg, 'replacement', '\u2581');
      const scheme = prependScheme(cfg);
      const split = cfg.split !== false;
      const splitRe = new RegExp(rep.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
      return {
        split: perPiece((p, first) => {
          p = p.replaceAll(' ', rep);
          if (!p.startsWith(rep) && (scheme === 'always' || (scheme === 'first' && first))) p = rep + p;
          return split ? splitBy(p, splitRe, 'mergedwithnext') : [p];
        }),
        byteLevel: false,
      };
    }
    case 'Digits': {
      const re = cfg.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu;
      return { split: perPiece((p) => splitBy(p, re, 'isolated')), byteLevel: false };
    }
    case 'Whitespace':
      return { split: perPiece((p) => p.match(/[\p{L}\p{N}\p{M}\p{Pc}]+|[^\p{L}\p{N}\p{M}\p{Pc}\s]+/gu) ?? []), byteLevel: false };
    case 'WhitespaceSplit': return { split: perPiece((p) => p.split(/\s+/u).filter((x) => x.length > 0)), byteLevel: false };
    default: throw unsupported('pre_tokenizer', type, PRE_TOKENIZERS);
  }
}

function prependScheme(cfg: JsonObject): 'always' | 'first' | 'never' {
  if (typeof cfg.prepend_scheme === 'string') {
    const s = cfg.prepend_scheme.toLowerCase();
    if (s === 'always' || s === 'first' || s === 'never') return s;
    throw new Error(`tokenizer.json: Metaspace prepend_scheme "${cfg.prepend_scheme}" is not always/first/never`);
  }
  return cfg.add_prefix_space === false ? 'never' : 'always'; // files older than prepend_scheme
}

// ---------------------------------------------------------------- post-processors

/** Adds special tokens around one sequence of ids (pairs are not needed by this project). */
export type PostProcessor = (ids: number[]) => number[];
const POST_PROCESSORS = ['TemplateProcessing', 'ByteLevel', 'Sequence', 'RobertaProcessing', 'BertProcessing'];

export function buildPostProcessor(json: unknown): PostProcessor | null {
  if (json === null || json === undefined) return null;
  const cfg = asObject(json, 'post_processor');
  const type = typeOf(cfg, 'post_processor');
  switch (type) {
    case 'ByteLevel': return null; // only adjusts offsets
    case 'Sequence': {
      const parts = (cfg.processors as unknown[] ?? []).map(buildPostProcessor).filter((p): p is PostProcessor => p !== null);
      return parts.length ? (ids) => parts.reduce((acc, p) => p(acc), ids) : null;
    }
    case 'TemplateProcessing': {
      const special = asObject(cfg.special_tokens ?? {}, 'TemplateProcessing.special_tokens');
      const steps: (number[] | 'A')[] = [];
      for (const piece of (cfg.single as unknown[]) ?? []) {
        const p = asObject(piece, 'TemplateProcessing.single[]');
        if (p.Sequence) { steps.push('A'); continue; }
        const sp = asObject(p.SpecialToken, 'TemplateProcessing.single[].SpecialToken');
        const name = String(sp.id);
        const entry = special[name] as JsonObject | undefined;
        if (!entry || !Array.isArray(entry.ids)) throw new Error(`tokenizer.json: template special token "${name}" has no ids in special_tokens`);
        steps.push(entry.ids.map(Number));
      }
      return (ids) => steps.flatMap((s) => (s === 'A' ? ids : s));
    }
    case 'RobertaProcessing': case 'BertProcessing': {
      const cls = cfg.cls as [string, number], sep = cfg.sep as [string, number];
      if (!Array.isArray(cls) || !Array.isArray(sep)) throw new Error(`tokenizer.json: ${type} needs cls and sep`);
      return (ids) => [cls[1], ...ids, sep[1]];
    }
    default: throw unsupported('post_processor', type, POST_PROCESSORS);
  }
}

// ---------------------------------------------------------------- decoders

export type Decoder = (tokens: string[]) => string[];
const DECODERS = ['ByteLevel', 'Metaspace', 'Sequence', 'Replace', 'ByteFallback', 'Fuse', 'Strip'];

export function buildDecoder(json: unknown): Decoder | null {
  if (json === null || json === undefined) return null;
  const cfg = asObject(json, 'decoder');
  const type = typeOf(cfg, 'decoder');
  switch (type) {
    case 'Sequence': {
      const parts = (cfg.decoders as unknown[] ?? []).map(buildDecoder).filter((d): d is Decoder => d !== null);
      return (tokens) => parts.reduce((acc, d) => d(acc), tokens);
    }
    case 'ByteLevel': return (tokens) => [fromByteChars(tokens.join(''))];
    case 'Metaspace': {
      const rep = str(cfg, 'replacement', '\u2581');
      const strip = prependScheme(cfg) !== 'never';
      // As the Rust crate: in the first token every replacement char is dropped, elsewhere it becomes a space.
      return (tokens) => tokens.map((t, i) => t.replaceAll(rep, i === 0 && strip ? '' : ' '));
    }
    case 'Replace': {
      const re = patternOf(cfg.pattern, 'Replace');
      const content = str(cfg, 'content');
      return (tokens) => tokens.map((t) => t.replace(re, () => content));
    }
    case 'ByteFallback': return byteFallbackDecode;
    case 'Fuse': return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content = str(cfg, 'content', ' ');
      const start = Number(cfg.start ?? 0), stop = Number(cfg.stop ?? 0);
      return (tokens) => tokens.map((t) => {
        const chars = Array.from(t);
        let a = 0, b = chars.length;
        while (a < start && a < b && chars[a] === content) a++;
        while (chars.length - b < stop && b > a && chars[b - 1] === content) b--;
        return chars.slice(a, b).join('');
      });
    }
    default: throw unsupported('decoder', type, DECODERS);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Runs of <0xXX> tokens become their UTF-8 text; a run that is not valid UTF-8 becomes one U+FFFD per byte. */
function byteFallbackDecode(tokens: string[]): string[] {
  const out: string[] = [];
  let run: number[] = [];
  const flush = (): void => {
    if (!run.length) return;
    try { out.push(strictUtf8.decode(Uint8Array.from(run))); } catch { for (let i = 0; i < run.length; i++) out.push('\uFFFD'); }
    run = [];
  };
  for (const t of tokens) {
    const b = parseByteFallbackToken(t);
    if (b >= 0) run.push(b); else { flush(); out.push(t); }
  }
  flush();
  return out;
}
