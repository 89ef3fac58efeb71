// Byte <-> character maps of GPT-2 style byte-level BPE, and the <0xXX> tokens of SentencePiece byte fallback.

/** byte value -> the printable character that stands for it in byte-level vocabularies (GPT-2's table). */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const out = new Array<string>(256);
  for (const b of printable) out[b] = String.fromCharCode(b);
  let shifted = 0;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCharCode(256 + shifted++);
  return out;
})();

/** char code -> byte value, -1 where the character is not one of the 256 byte characters. */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(512).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => { out[c.charCodeAt(0)] = b; });
  return out;
})();

const utf8 = new TextEncoder();
// fatal: false: invalid sequences (a token cut inside a character) become U+FFFD, as in HF's lossy decode.
const utf8Lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 bytes of a string; lone surrogates become EF BF BD (U+FFFD), per the WHATWG encoder. */
export function utf8Bytes(text: string): Uint8Array {
  // TextEncoder costs ~1 us per call in Node: hand-encode the short strings that pre-tokenization yields
  if (text.length > 256) return utf8.encode(text);
  const out = new Uint8Array(text.length * 3);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) { out[n++] = c; continue; }
    if (c < 0x800) { out[n++] = 0xc0 | (c >> 6); out[n++] = 0x80 | (c & 63); continue; }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++;
        out[n++] = 0xf0 | (c >> 18); out[n++] = 0x80 | ((c >> 12) & 63); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63);
        continue;
      }
      c = 0xfffd; // lone surrogate
    }
    out[n++] = 0xe0 | (c >> 12); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63);
  }
  return out.subarray(0, n);
}
export function utf8Decode(bytes: Uint8Array): string { return utf8Lossy.decode(bytes); }

/** The byte-level form of a string: each UTF-8 byte replaced by its character. */
export function toByteChars(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) { ascii = false; break; }
  let out = '';
  if (ascii) { for (let i = 0; i < text.length; i++) out += BYTE_TO_CHAR[text.charCodeAt(i)]; return out; }
  const bytes = utf8Bytes(text);
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]];
  return out;
}

/** Bytes of a byte-level token string; characters outside the byte table stand for their own UTF-8. */
export function byteCharsToBytes(chars: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of chars) {
    const code = ch.charCodeAt(0);
    const b = ch.length === 1 && code < 512 ? CHAR_TO_BYTE[code] : -1;
    if (b >= 0) bytes.push(b);
    else for (const x of utf8.encode(ch)) bytes.push(x);
  }
  return Uint8Array.from(bytes);
}

/** Inverse of toByteChars over a joined token string (lossy: invalid UTF-8 becomes U+FFFD). */
export function fromByteChars(chars: string): string {
  return utf8Lossy.decode(byteCharsToBytes(chars));
}

/** SentencePiece byte-fallback token for a byte: <0x0A>. */
export function byteFallbackToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** The byte of a <0xXX> token, or -1. */
export function parseByteFallbackToken(token: string): number {
  if (token.length !== 6 || !token.startsWith('<0x') || token[5] !== '>') return -1;
  const hex = token.slice(3, 5);
  return /^[0-9A-Fa-f]{2}$/.test(hex) ? parseInt(hex, 16) : -1;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The string with each lone surrogate replaced by U+FFFD (String.prototype.toWellFormed, ES2024). */
export function wellFormed(text: string): string {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATE, '\uFFFD') : text;
}
