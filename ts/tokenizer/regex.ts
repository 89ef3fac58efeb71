// Pre-tokenizer split patterns, and translation of the Oniguruma patterns found in tokenizer.json files
// (written for the Rust `tokenizers` crate) into JavaScript RegExps.

/** GPT-2's split pattern (also the ByteLevel pre-tokenizer's built-in one). */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** LLaMA-3's split pattern (Oniguruma syntax, as stored in its tokenizer.json). */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const cache = new Map<string, RegExp>();
const WORD = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';

/**
 * A global, unicode JS RegExp for an Oniguruma pattern. Handles what tokenizer.json files use and JS lacks:
 * inline case-insensitive groups `(?i:...)` (ASCII letters expanded to both cases), possessive quantifiers
 * (`?+`, `++`, `*+`, `{n}+`: taken as greedy ones, which is exact for the patterns used by GPT-4/LLaMA-3/Qwen
 * style splits because their alternatives cannot backtrack into a shorter match that succeeds), and the
 * absolute anchors `\A`, `\z`, `\Z`, and the Unicode meaning of `\s`, `\d`, `\w` (White_Space, Nd, word chars).
 */
export function compilePattern(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re) return new RegExp(re.source, re.flags); // fresh lastIndex
  const source = translate(pattern);
  try {
    re = new RegExp(source, 'gu');
  } catch (e) {
    throw new Error(`tokenizer: cannot compile split pattern ${JSON.stringify(pattern)} as a JavaScript RegExp: ${(e as Error).message}`);
  }
  cache.set(pattern, re);
  return new RegExp(re.source, re.flags);
}

function bothCases(ch: string): string {
  const lo = ch.toLowerCase(), up = ch.toUpperCase();
  return lo === up ? ch : lo + up;
}

function translate(p: string): string {
  let out = '';
  let inClass = 0;           // nesting depth of [...]
  let ciDepth = -1;          // paren depth at which a (?i: group opened, -1 when none
  let depth = 0;             // paren depth
  let afterQuantifier = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      const next = p[i + 1] ?? '';
      if (!inClass && next === 'A') out += '^';
      else if (!inClass && next === 'z') out += '$';
      else if (!inClass && next === 'Z') out += '(?=\\n?$)';
      // Oniguruma's shorthands are Unicode-wide, JavaScript's are not (\s also differs: U+0085 vs U+FEFF)
      else if (next === 's') out += '\\p{White_Space}';
      else if (next === 'S') out += '\\P{White_Space}';
      else if (next === 'd') out += '\\p{Nd}';
      else if (next === 'D') out += '\\P{Nd}';
      else if (next === 'w') out += inClass ? WORD : `[${WORD}]`;
      else if (next === 'W' && !inClass) out += `[^${WORD}]`;
      else if (next === 'p' || next === 'P' || next === 'x' || next === 'u') {
        // \p{..}, \x{..}/\xHH, \uHHHH: copy whole escape
        let j = i + 2;
        if (p[j] === '{') { while (j < p.length && p[j] !== '}') j++; j++; }
        else if (next === 'x') j += 2; else if (next === 'u') j += 4;
        let esc = p.slice(i, j);
        if (next === 'x' && esc[2] === '{') esc = `\\u{${esc.slice(3, -1)}}`;
        out += esc; i = j - 1; afterQuantifier = false; continue;
      } else out += c + next;
      i++; afterQuantifier = false; continue;
    }
    if (inClass) {
      if (c === '[') inClass++;
      else if (c === ']') inClass--;
      if (ciDepth >= 0 && /[A-Za-z]/.test(c)) {
        // a-f in a case-insensitive group: add the other case's range too
        if (p[i + 1] === '-' && /[A-Za-z]/.test(p[i + 2] ?? '')) {
          const hi = p[i + 2];
          out += `${c}-${hi}`;
          const other = c === c.toLowerCase() ? `${c.toUpperCase()}-${hi.toUpperCase()}` : `${c.toLowerCase()}-${hi.toLowerCase()}`;
          out += other; i += 2; continue;
        }
        out += bothCases(c); continue;
      }
      out += c; continue;
    }
    if (c === '[') { inClass = 1; out += c; afterQuantifier = false; continue; }
    if (c === '(') {
      depth++;
      if (p.startsWith('(?i:', i)) { if (ciDepth < 0) ciDepth = depth; out += '(?:'; i += 3; afterQuantifier = false; continue; }
      if (p.startsWith('(?>', i)) { out += '(?:'; i += 2; afterQuantifier = false; continue; } // atomic group: plain group
      if (p[i + 1] === '?') {
        // (?:  (?=  (?!  (?<=  (?<!  (?<name>
        let j = i + 2;
        if (p[j] === '<' && (p[j + 1] === '=' || p[j + 1] === '!')) j++;
        out += p.slice(i, j + 1); i = j; afterQuantifier = false; continue;
      }
      out += c; afterQuantifier = false; continue;
    }
    if (c === ')') {
      if (depth === ciDepth) ciDepth = -1;
      depth--; out += c; afterQuantifier = false; continue;
    }
    if (c === '+' && afterQuantifier) { afterQuantifier = false; continue; } // possessive -> greedy
    if (c === '?' || c === '*' || c === '+') {
      out += c;
      afterQuantifier = c !== '?' || !out.endsWith('??'); // `x??` lazy: nothing further to strip
      continue;
    }
    if (c === '{') {
      const m = /^\{\d+(,\d*)?\}/.exec(p.slice(i));
      if (m) { out += m[0]; i += m[0].length - 1; afterQuantifier = true; continue; }
    }
    afterQuantifier = false;
    if (ciDepth >= 0 && /[A-Za-z]/.test(c)) { out += `[${bothCases(c)}]`; continue; }
    out += c;
  }
  return out;
}
