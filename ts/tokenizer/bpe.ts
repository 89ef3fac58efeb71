// The BPE model of a tokenizer.json: vocabulary, ranked merges, byte fallback and unknown-token handling.
// Merging follows the Rust crate: repeatedly apply the lowest-rank adjacent pair, leftmost first.
import { byteFallbackToken, utf8Bytes } from './bytes.ts';
import { asObject } from './components.ts';

const PAIR_SHIFT = 2 ** 22; // ids < 4M: pair key a * 2^22 + b stays an exact double
const POS_SHIFT = 2 ** 26; // heap key rank * 2^26 + position: exact for 2^27 merges and 64M symbols

export interface BpeModelJson {
  type: 'BPE';
  dropout: number | null;
  unk_token: string | null;
  continuing_subword_prefix: string | null;
  end_of_word_suffix: string | null;
  fuse_unk: boolean;
  byte_fallback: boolean;
  ignore_merges: boolean;
  vocab: Record<string, number>;
  merges: [string, string][];
}

export class BpeModel {
  readonly vocab: Map<string, number>;
  readonly merges: [string, string][];
  readonly unkToken: string | null;
  readonly unkId: number;
  readonly byteFallback: boolean;
  readonly fuseUnk: boolean;
  readonly ignoreMerges: boolean;
  /** pair key -> rank * 2^22 + merged id, so one lookup gives both */
  private readonly pairs = new Map<number, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  // scratch buffers for merging, grown on demand
  private sym = new Int32Array(64); private next = new Int32Array(64); private prev = new Int32Array(64);
  private heapKey = new Float64Array(192); private heapPos = new Int32Array(192);

  constructor(vocab: Map<string, number>, merges: [string, string][], opts: {
    unkToken?: string | null; byteFallback?: boolean; fuseUnk?: boolean; ignoreMerges?: boolean;
  } = {}) {
    this.vocab = vocab;
    this.merges = merges;
    this.unkToken = opts.unkToken ?? null;
    this.byteFallback = opts.byteFallback ?? false;
    this.fuseUnk = opts.fuseUnk ?? false;
    this.ignoreMerges = opts.ignoreMerges ?? false;
    let maxId = -1;
    for (const id of vocab.values()) {
      if (!Number.isInteger(id) || id < 0 || id >= PAIR_SHIFT) throw new Error(`tokenizer.json: vocab id ${id} is not an integer in [0, ${PAIR_SHIFT})`);
      if (id > maxId) maxId = id;
    }
    if (this.unkToken !== null && !vocab.has(this.unkToken)) throw new Error(`tokenizer.json: unk_token "${this.unkToken}" is not in the vocab`);
    this.unkId = this.unkToken === null ? -1 : vocab.get(this.unkToken)!;
    merges.forEach(([a, b], rank) => {
      const ia = vocab.get(a), ib = vocab.get(b), ic = vocab.get(a + b);
      if (ia === undefined || ib === undefined) throw new Error(`tokenizer.json: merge ${rank} ("${a}" "${b}") uses a token that is not in the vocab`);
      if (ic === undefined) throw new Error(`tokenizer.json: merge ${rank} ("${a}" "${b}") makes "${a + b}", which is not in the vocab`);
      const key = ia * PAIR_SHIFT + ib;
      if (!this.pairs.has(key)) this.pairs.set(key, rank * PAIR_SHIFT + ic); // first (lowest) rank wins
    });
    if (this.byteFallback) for (let b = 0; b < 256; b++) this.byteIds[b] = vocab.get(byteFallbackToken(b)) ?? -1;
  }

  static fromJSON(json: unknown): BpeModel {
    const cfg = asObject(json, 'model');
    if (cfg.type !== 'BPE' && !(cfg.type === undefined && 'merges' in cfg)) {
      const known = ['WordPiece', 'Unigram', 'WordLevel'].includes(String(cfg.type));
      throw new Error(`tokenizer.json: unsupported model type "${String(cfg.type)}"${known ? '' : ' (unknown)'}: only BPE models (byte-level or SentencePiece-style with byte_fallback) are supported`);
    }
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      if (typeof cfg[key] === 'string' && cfg[key] !== '') throw new Error(`tokenizer.json: BPE ${key} is not supported`);
    }
    const vocab = new Map<string, number>(Object.entries(asObject(cfg.vocab, 'model.vocab')).map(([k, v]) => [k, Number(v)]));
    if (!Array.isArray(cfg.merges)) throw new Error('tokenizer.json: model.merges must be an array');
    const merges = (cfg.merges as unknown[]).map((m, i): [string, string] => {
      if (Array.isArray(m) && m.length === 2) return [String(m[0]), String(m[1])];
      if (typeof m === 'string') {
        const at = m.indexOf(' ', 1); // legacy "a b" form: tokens never contain the separating space
        if (at > 0) return [m.slice(0, at), m.slice(at + 1)];
      }
      throw new Error(`tokenizer.json: merge ${i} is neither ["a", "b"] nor "a b"`);
    });
    return new BpeModel(vocab, merges, {
      unkToken: typeof cfg.unk_token === 'string' ? cfg.unk_token : null,
      byteFallback: cfg.byte_fallback === true,
      fuseUnk: cfg.fuse_unk === true,
      ignoreMerges: cfg.ignore_merges === true,
    });
  }

  toJSON(): BpeModelJson {
    const vocab: Record<string, number> = {};
    for (const [k, v] of [...this.vocab].sort((x, y) => x[1] - y[1])) vocab[k] = v;
    return {
      type: 'BPE', dropout: null, unk_token: this.unkToken, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: this.fuseUnk, byte_fallback: this.byteFallback, ignore_merges: this.ignoreMerges, vocab, merges: this.merges,
    };
  }

  /** The ids of one pre-tokenized piece (in the model's alphabet: byte characters for byte-level models). */
  encodePiece(piece: string): Int32Array {
    if (piece.length === 0) return new Int32Array(0);
    if (this.ignoreMerges) {
      const id = this.vocab.get(piece);
      if (id !== undefined) return Int32Array.of(id);
    }
    return this.mergePiece(piece);
  }

  private initialSymbols(piece: string): number {
    let n = 0;
    const grow = (need: number): void => {
      if (need <= this.sym.length) return;
      const size = Math.max(need, this.sym.length * 2);
      const s = new Int32Array(size); s.set(this.sym.subarray(0, n)); this.sym = s;
      this.next = new Int32Array(size); this.prev = new Int32Array(size);
      this.heapKey = new Float64Array(size * 3); this.heapPos = new Int32Array(size * 3);
    };
    grow(piece.length);
    let lastUnk = false;
    for (const ch of piece) {
      const id = this.vocab.get(ch);
      if (id !== undefined) { this.sym[n++] = id; lastUnk = false; continue; }
      if (this.byteFallback) {
        const bytes = utf8Bytes(ch);
        let ok = true;
        for (const b of bytes) if (this.byteIds[b] < 0) ok = false;
        if (ok) {
          grow(n + bytes.length);
          for (const b of bytes) this.sym[n++] = this.byteIds[b];
          lastUnk = false;
          continue;
        }
      }
      if (this.unkId >= 0) {
        if (!(this.fuseUnk && lastUnk)) this.sym[n++] = this.unkId;
        lastUnk = true;
      } // no unk token: the character is dropped, as the Rust crate does
    }
    return n;
  }

  private mergePiece(piece: string): Int32Array {
    const n = this.initialSymbols(piece);
    const { sym, next, prev, heapKey, heapPos, pairs } = this;
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    // min-heap over (rank, position): key = rank * POS_SHIFT + position
    let size = 0;
    const push = (key: number, pos: number): void => {
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heapKey[p] <= key) break;
        heapKey[i] = heapKey[p]; heapPos[i] = heapPos[p]; i = p;
      }
      heapKey[i] = key; heapPos[i] = pos;
    };
    const pop = (): void => {
      const key = heapKey[--size], pos = heapPos[size];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heapKey[c + 1] < heapKey[c]) c++;
        if (heapKey[c] >= key) break;
        heapKey[i] = heapKey[c]; heapPos[i] = heapPos[c]; i = c;
      }
      heapKey[i] = key; heapPos[i] = pos;
    };
    const consider = (pos: number): void => {
      const nx = next[pos];
      if (nx < 0) return;
      const v = pairs.get(sym[pos] * PAIR_SHIFT + sym[nx]);
      if (v !== undefined) push(Math.floor(v / PAIR_SHIFT) * POS_SHIFT + pos, pos);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (size > 0) {
      const key = heapKey[0], pos = heapPos[0];
      pop();
      if (sym[pos] < 0) continue;
      const nx = next[pos];
      if (nx < 0) continue;
      const v = pairs.get(sym[pos] * PAIR_SHIFT + sym[nx]);
      const rank = Math.floor(key / POS_SHIFT);
      if (v === undefined || Math.floor(v / PAIR_SHIFT) !== rank) continue; // stale entry
      sym[pos] = v - rank * PAIR_SHIFT;
      sym[nx] = -1;
      const after = next[nx];
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      if (prev[pos] >= 0) consider(prev[pos]);
      consider(pos);
    }
    let count = 0;
    for (let i = 0; i >= 0 && i < n; i = next[i]) count++;
    const out = new Int32Array(count);
    let k = 0;
    for (let i = 0; i >= 0 && i < n; i = next[i]) out[k++] = sym[i];
    return out;
  }
}

