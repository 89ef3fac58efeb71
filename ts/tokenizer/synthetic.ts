// Deterministic farm-like text for tokenizer training tests and benchmarks, used when the world module's own
// generators are not at hand: Alpaca-style instruction/response records about animals, crops and chores,
// with names, numbers, units, lists, punctuation and a little non-ASCII text.

const ANIMALS = ['cow', 'goat', 'sheep', 'pig', 'hen', 'duck', 'horse', 'donkey', 'rabbit', 'goose', 'llama', 'alpaca', 'turkey', 'bee'];
const CROPS = ['wheat', 'barley', 'corn', 'oats', 'potatoes', 'carrots', 'beans', 'pumpkins', 'apples', 'pears', 'cabbage', 'onions', 'garlic', 'sunflowers', 'strawberries', 'tomatoes'];
const NAMES = ['Mara', 'Tobias', 'Ines', 'Olu', 'Henrik', 'Priya', 'Zoé', 'Mateo', 'Aiko', 'Farid', 'Greta', 'Kwame', 'Lena', 'Sven', 'Noor', 'Rosa'];
const PLACES = ['north field', 'barn', 'orchard', 'hen house', 'duck pond', 'silo', 'meadow', 'greenhouse', 'market', 'dairy', 'stable', 'vegetable garden'];
const VERBS = ['feeds', 'milks', 'plants', 'harvests', 'waters', 'sells', 'counts', 'moves', 'shears', 'weighs', 'stores', 'repairs', 'checks', 'cleans'];
const ADJS = ['healthy', 'hungry', 'young', 'old', 'muddy', 'ripe', 'dry', 'wet', 'early', 'late', 'heavy', 'small', 'large', 'organic', 'fresh'];
const UNITS = ['kg', 'litres', 'bales', 'crates', 'rows', 'hectares', 'eggs', 'sacks', 'buckets', 'coins'];
const SEASONS = ['spring', 'summer', 'autumn', 'winter'];
const TASKS = [
  'How many {u} of {c} did {n} harvest from the {p}?',
  'Write a short note to {n} about the {a} in the {p}.',
  'List three chores for {s} on the farm.',
  'Explain why the {c} in the {p} are {j} this {s}.',
  'Rewrite the sentence so that it is more polite.',
  'Summarize the farm report below in one sentence.',
  'Compute the total weight of {k} {u} of {c} at {w} kg each.',
  'Give advice to {n} about keeping the {a}s {j}.',
  'Classify each item as an animal or a crop.',
  'Translate the market sign into plain English.',
];
const NON_ASCII = ['café', 'naïve', 'Jürgen’s tractor', '農場', 'ферма', '🐄', '🌾🌾', 'crème fraîche', '½ bale', '—', '…', 'São Paulo'];

/** Small, fast, seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One instruction/input/output record of farm-like text. */
export function syntheticRecord(r: () => number): { instruction: string; input: string; output: string } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const fill = (t: string): string => t
    .replaceAll('{a}', pick(ANIMALS)).replaceAll('{c}', pick(CROPS)).replaceAll('{n}', pick(NAMES))
    .replaceAll('{p}', pick(PLACES)).replaceAll('{s}', pick(SEASONS)).replaceAll('{j}', pick(ADJS))
    .replaceAll('{u}', pick(UNITS)).replaceAll('{k}', String(1 + Math.floor(r() * 400)))
    .replaceAll('{w}', (r() * 50).toFixed(1));
  const sentence = (): string => {
    const n = pick(NAMES), v = pick(VERBS), obj = r() < 0.5 ? `the ${pick(ADJS)} ${pick(ANIMALS)}s` : `${1 + Math.floor(r() * 999)} ${pick(UNITS)} of ${pick(CROPS)}`;
    let s = `${n} ${v} ${obj} in the ${pick(PLACES)}`;
    if (r() < 0.3) s += ` every ${pick(SEASONS)} morning`;
    if (r() < 0.15) s += ` (${pick(NON_ASCII)})`;
    if (r() < 0.2) s += `, about ${Math.floor(r() * 10000)} in all`;
    return s + (r() < 0.1 ? '!' : '.');
  };
  const instruction = fill(pick(TASKS));
  const input = r() < 0.4 ? Array.from({ length: 1 + Math.floor(r() * 3) }, sentence).join(' ') : '';
  let output: string;
  if (r() < 0.3) output = Array.from({ length: 2 + Math.floor(r() * 4) }, (_, i) => `${i + 1}. ${sentence()}`).join('\n');
  else output = Array.from({ length: 1 + Math.floor(r() * 5) }, sentence).join(' ');
  return { instruction, input, output };
}

/** About `bytes` UTF-8 bytes of farm-like text (records separated by blank lines), the same for the same seed. */
export function syntheticFarmText(bytes: number, seed = 1): string {
  const r = rng(seed);
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const rec = syntheticRecord(r);
    const block = `${rec.instruction}\n${rec.input ? rec.input + '\n' : ''}${rec.output}\n\n`;
    parts.push(block);
    size += Buffer.byteLength(block);
  }
  return parts.join('');
}
