// The task families: how each one is generated, phrased, answered (well or badly) and checked.
import { article, CATEGORIES, JOBS, NUMBER_WORDS, REGIONS, type KnowledgeBase, type Person } from './kb.ts';
import type { Rng } from './rng.ts';
import { fill, template, type CheckResult, type Family, type Flaws, type Template } from './family.ts';
import { capitalize, clamp01, joinList, numbers, rawTokens, similarity, words } from './text.ts';

const PERSON_SENTENCE_SLOTS = ['town', 'job', 'pet', 'fruit', 'age'] as const;
type PersonAttr = (typeof PERSON_SENTENCE_SLOTS)[number];

// ---------------------------------------------------------------------------------------------
// shared pieces

function catOf(kb: KnowledgeBase, plural: string) {
  return kb.categoryByPlural.get(plural) ?? null;
}

/** Another member of a different category (a "wrong item"). */
function foreignWord(kb: KnowledgeBase, rng: Rng, notCategory: string): string {
  const others = CATEGORIES.filter((c) => c.name !== notCategory);
  return rng.pick(rng.pick(others).members);
}

/** Score for a single numeric answer: exact 1, off by one 0.25, within 5% 0.1, else 0. */
function numericCredit(got: number | undefined, want: number): number {
  if (got === undefined) return 0;
  if (got === want) return 1;
  const d = Math.abs(got - want);
  if (d === 1) return 0.25;
  if (d <= Math.max(1, Math.abs(want) * 0.05)) return 0.1;
  return 0;
}

function lastNumber(text: string): number | undefined {
  const ns = numbers(text);
  return ns.length ? ns[ns.length - 1] : undefined;
}

/** Perturb a number by a small nonzero amount; offByOne gives +-1. */
function perturb(rng: Rng, v: number, offByOne: boolean): number {
  const d = offByOne ? 1 : rng.range(2, 9);
  const s = rng.chance(0.5) ? 1 : -1;
  return v + s * d < 0 ? v + d : v + s * d;
}

function parseList(input: string): string[] {
  return input.split(/,\s*/).map((s) => s.trim()).filter((s) => s.length > 0);
}

// Sentence material for counting and rewriting.
const VERBS = ['eats', 'sees', 'likes', 'finds', 'carries', 'wants', 'needs', 'takes'];
const TAILS = ['', '', ' every day', ' in the morning', ' near the river', ' at the market'];

function randomSentence(rng: Rng, kb: KnowledgeBase): string {
  const cat = (n: string) => kb.categoryByName.get(n)!.members;
  const subject = rng.pick([
    () => `the ${rng.pick(cat('color'))} ${rng.pick(cat('animal'))}`,
    () => rng.pick(kb.people).name,
    () => `my ${rng.pick(cat('animal'))}`,
    () => `the old ${rng.pick(cat('bird'))}`,
  ])();
  const fruit = rng.pick(cat('fruit'));
  const obj = rng.pick([`${article(fruit)} ${fruit}`, `the ${rng.pick(cat('tool'))}`, `some ${rng.pick(cat('drink'))}`, `a ${rng.pick(cat('vegetable'))}`]);
  return capitalize(`${subject} ${rng.pick(VERBS)} ${obj}${rng.pick(TAILS)}.`);
}

const FRIENDLY_OPENERS = ['Sure!', 'Of course.', 'Here you go.'];

/** Whether the text names every one of `ws` (case-insensitive words). */
function mentions(text: string, ...ws: string[]): boolean {
  const w = new Set(words(text));
  return ws.every((x) => words(x).every((y) => w.has(y)));
}

/**
 * Explanation of a short answer: 1 when the answer is stated about its subject ("17 plus 25 is 42", "A carrot is
 * a vegetable"), so that a reader can use it without the question; 0 for a bare or vague one ("42", "It is
 * negative.") and for no answer. Visible without checking the answer; this is where longer is better here.
 */
function explained(answered: boolean, context: boolean): number {
  return answered && context ? 1 : 0;
}

function maybeTerse(flaws: Flaws, rng: Rng, sentence: string, bare: string): string {
  if (flaws.terse) return bare;
  return rng.chance(0.15) ? `${rng.pick(FRIENDLY_OPENERS)} ${sentence}` : sentence;
}

// ---------------------------------------------------------------------------------------------
// 1. list: name members of a category

interface ListP { t: number; n: number; cat: string; exclude: string[] }
const listTemplates = [
  template('Name {n} {cat}.'),
  template('List {n} {cat}.'),
  template('Give me {n} examples of {cat}.'),
  template('What are {n} common {cat}?'),
  template('List {n} {cat}, separated by commas.'),
  template('Name {n} {cat}, one per line.'),
  template('Can you name {n} {cat}?'),
  template('Tell me {n} {cat}.'),
  template('Name {n} different {cat}.'),
  template('Name {n} {cat} that are not in this list.', 'list of words'),
  template('List {n} more {cat}, other than the ones below.', 'list of words'),
];
const LIST_FORMAT: Record<number, 'comma' | 'lines'> = { 4: 'comma', 5: 'lines' };

/** Members of any category mentioned in the text, in order (duplicates kept). */
function memberMentions(kb: KnowledgeBase, text: string): string[] {
  return words(text).filter((w) => kb.categoryOf.has(w));
}

const list: Family<ListP> = {
  name: 'list',
  description: 'name n members of a category (optionally other than those in the input)',
  weight: 1.2,
  explains: true,
  templates: listTemplates,
  sample(rng) {
    const t = rng.int(listTemplates.length);
    const cat = rng.pick(CATEGORIES);
    const exclude = listTemplates[t].input ? rng.sample(cat.members, rng.range(1, 3)) : [];
    return { t, n: rng.range(2, 5), cat: cat.plural, exclude };
  },
  render: (p) => ({ instruction: fill(listTemplates[p.t], { n: NUMBER_WORDS[p.n], cat: p.cat }), input: p.exclude.join(', ') }),
  fromMatch(t, g, input, kb) {
    const cat = catOf(kb, g.cat);
    if (!cat) return null;
    const exclude = listTemplates[t].input ? parseList(input) : [];
    if (exclude.some((w) => !cat.members.includes(w)) || cat.members.length - exclude.length < 5) return null;
    return { t, n: NUMBER_WORDS.indexOf(g.n), cat: g.cat, exclude };
  },
  respond(p, kb, rng, flaws) {
    const cat = catOf(kb, p.cat)!;
    let k = p.n;
    if (flaws.missing) k -= 1;
    if (flaws.offByOne) k += 1;
    const items = rng.sample(cat.members.filter((m) => !p.exclude.includes(m)), Math.max(1, k));
    if (flaws.wrong) items[rng.int(items.length)] = p.exclude.length && rng.chance(0.5) ? rng.pick(p.exclude) : foreignWord(kb, rng, cat.name);
    const fmt = LIST_FORMAT[p.t];
    if (fmt === 'lines') return rng.chance(0.3) ? joinList(items, 'bullets') : joinList(items, 'lines');
    if (fmt === 'comma') return joinList(items, 'comma') + (rng.chance(0.4) ? '.' : '');
    if (flaws.terse) return joinList(items, 'comma');
    if (flaws.vague) return rng.chance(0.5) ? `${capitalize(joinList(items, 'and'))}.` : joinList(items, 'bullets');
    if (rng.chance(0.5)) return `Here are ${NUMBER_WORDS[p.n]} ${p.exclude.length ? 'more ' : ''}${p.cat}: ${joinList(items, 'and')}.`;
    return `Some ${p.exclude.length ? 'other ' : ''}${p.cat} are ${joinList(items, 'and')}.`;
  },
  check(p, kb, output) {
    const cat = catOf(kb, p.cat)!;
    const distinct = [...new Set(memberMentions(kb, output))];
    const valid = distinct.filter((w) => kb.categoryOf.get(w) === cat.name && !p.exclude.includes(w)).length;
    const wrong = distinct.length - valid;
    const correctness = distinct.length ? valid / distinct.length : 0;
    const fmt = LIST_FORMAT[p.t];
    // free-form lists are complete when they say what they list ("Here are three birds: ...")
    const framed = fmt !== undefined || mentions(output, p.cat) || mentions(output, cat.name);
    const completeness = Math.min(valid, p.n) / p.n;
    let format = 1;
    const lines = output.split('\n').filter((l) => l.trim()).length;
    if (fmt === 'comma' && (!output.includes(',') || lines > 1)) format = 0.3;
    if (fmt === 'lines' && lines < Math.min(p.n, distinct.length)) format = 0.3;
    if (valid + wrong > p.n) format *= 0.6; // asked for n, gave more
    return { correctness, completeness, format, explanation: explained(valid > 0, framed) };
  },
  lengthRange: (p) => [p.n, 5 + 2 * p.n],
};

// ---------------------------------------------------------------------------------------------
// 2. filter: pick the members of a category out of a list

interface FilterP { t: number; cat: string; items: string[] }
const filterTemplates = [
  template('Which of these are {cat}?', 'list of words'),
  template('List the {cat} in the following list.', 'list of words'),
  template('Pick out the {cat} from the words below.', 'list of words'),
  template('Find all the {cat} in this list.', 'list of words'),
];

const filter: Family<FilterP> = {
  name: 'filter',
  description: 'select the members of a category from an input list',
  weight: 0.8,
  explains: true,
  templates: filterTemplates,
  sample(rng) {
    const cat = rng.pick(CATEGORIES);
    const inside = rng.sample(cat.members, rng.range(2, 3));
    const outside: string[] = [];
    const others = CATEGORIES.filter((c) => c.name !== cat.name).flatMap((c) => c.members);
    for (const w of rng.sample(others, rng.range(2, 4))) outside.push(w);
    return { t: rng.int(filterTemplates.length), cat: cat.plural, items: rng.shuffle([...inside, ...outside]) };
  },
  render: (p) => ({ instruction: fill(filterTemplates[p.t], { cat: p.cat }), input: p.items.join(', ') }),
  fromMatch(t, g, input, kb) {
    const items = parseList(input);
    if (!catOf(kb, g.cat) || items.length < 2 || items.some((w) => !kb.categoryOf.has(w))) return null;
    return { t, cat: g.cat, items };
  },
  respond(p, kb, rng, flaws) {
    const cat = catOf(kb, p.cat)!;
    let chosen = p.items.filter((w) => kb.categoryOf.get(w) === cat.name);
    const rest = p.items.filter((w) => kb.categoryOf.get(w) !== cat.name);
    if (flaws.missing && chosen.length > 1) chosen = chosen.filter((_, i) => i !== rng.int(chosen.length));
    if (flaws.wrong && rest.length) chosen = [...chosen, rng.pick(rest)];
    if (flaws.terse) return joinList(chosen, 'comma');
    if (flaws.vague) return rng.chance(0.5) ? `${capitalize(joinList(chosen, 'and'))}.` : joinList(chosen, 'comma');
    return rng.chance(0.5) ? `The ${p.cat} are ${joinList(chosen, 'and')}.` : `${capitalize(joinList(chosen, 'and'))} are ${p.cat}.`;
  },
  check(p, kb, output) {
    const cat = catOf(kb, p.cat)!;
    const said = new Set(memberMentions(kb, output));
    const truth = new Set(p.items.filter((w) => kb.categoryOf.get(w) === cat.name));
    let tp = 0;
    for (const w of said) if (truth.has(w)) tp++;
    const fp = said.size - tp;
    const precision = said.size ? tp / said.size : 0;
    const recall = tp / truth.size;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    const framed = mentions(output, p.cat) || mentions(output, cat.name);
    return { correctness: fp === 0 && tp === truth.size ? 1 : 0.8 * f1, completeness: recall, explanation: explained(tp > 0, framed), format: 1 };
  },
  lengthRange: () => [2, 12],
};

// ---------------------------------------------------------------------------------------------
// 3. fact: closed-book questions about the generated people and towns

type FactAttr = PersonAttr | 'crop' | 'region';
interface FactP { t: number; subject: string; attr: FactAttr }
const factSpecs: { text: string; attr: FactAttr }[] = [
  { text: 'Where does {person} live?', attr: 'town' },
  { text: 'In which town does {person} live?', attr: 'town' },
  { text: "What is {person}'s job?", attr: 'job' },
  { text: 'What does {person} do for a living?', attr: 'job' },
  { text: "What is {person}'s favorite fruit?", attr: 'fruit' },
  { text: 'Which fruit does {person} like best?', attr: 'fruit' },
  { text: 'What pet does {person} have?', attr: 'pet' },
  { text: 'What animal does {person} keep as a pet?', attr: 'pet' },
  { text: 'How old is {person}?', attr: 'age' },
  { text: 'What is the age of {person}?', attr: 'age' },
  { text: 'What crop is {town} known for?', attr: 'crop' },
  { text: 'In which part of the country is {town}?', attr: 'region' },
];
const factTemplates = factSpecs.map((s) => template(s.text));

function factValue(kb: KnowledgeBase, subject: string, attr: FactAttr): string {
  if (attr === 'crop' || attr === 'region') return kb.townByName.get(subject)![attr];
  return String(kb.personByName.get(subject)![attr]);
}

function factDomain(kb: KnowledgeBase, attr: FactAttr): string[] {
  const members = (n: string) => kb.categoryByName.get(n)!.members;
  switch (attr) {
    case 'town': return kb.towns.map((t) => t.name.toLowerCase());
    case 'job': return [...JOBS];
    case 'fruit': return [...members('fruit')];
    case 'pet': return [...members('animal'), ...members('bird')];
    case 'crop': return [...members('fruit'), ...members('vegetable')];
    case 'region': return [...REGIONS];
    case 'age': return [];
  }
}

function factSentence(subject: string, attr: FactAttr, value: string, rng: Rng): string {
  const forms: Record<FactAttr, string[]> = {
    town: [`${subject} lives in ${value}.`, `${subject} lives in the town of ${value}.`],
    job: [`${subject} is ${article(value)} ${value}.`, `${subject} works as ${article(value)} ${value}.`],
    fruit: [`${subject}'s favorite fruit is the ${value}.`, `${subject} likes the ${value} best.`],
    pet: [`${subject} has ${article(value)} ${value}.`, `${subject} keeps ${article(value)} ${value} as a pet.`],
    age: [`${subject} is ${value} years old.`, `${subject} is ${value}.`],
    crop: [`${subject} is known for the ${value}.`, `${subject} is famous for growing the ${value}.`],
    region: [`${subject} is in the ${value}.`, `${subject} lies in the ${value} of the country.`],
  };
  return rng.pick(forms[attr]);
}

/** A value of the same kind as the right one but different (a "wrong item"). */
function wrongFactValue(kb: KnowledgeBase, attr: FactAttr, value: string, rng: Rng, offByOne: boolean): string {
  if (attr === 'age') return String(perturb(rng, Number(value), offByOne));
  const pool = attr === 'town' ? kb.towns.map((t) => t.name) : factDomain(kb, attr);
  const others = pool.filter((v) => v.toLowerCase() !== value.toLowerCase());
  return rng.pick(others);
}

function checkFact(kb: KnowledgeBase, subject: string, attr: FactAttr, want: string, output: string): CheckResult {
  const context = mentions(output, subject);
  if (attr === 'age') {
    const ns = numbers(output);
    const w = Number(want);
    if (!ns.length) return { correctness: 0, completeness: 0, explanation: 0, format: 1 };
    const hit = ns.includes(w);
    const others = ns.filter((x) => x !== w).length;
    const correctness = hit ? (others ? 0.5 : 1) : Math.max(...ns.map((x) => numericCredit(x, w)));
    return { correctness, completeness: 1, explanation: explained(true, context), format: 1 };
  }
  const domain = new Set(factDomain(kb, attr));
  const said = new Set(words(output).filter((w) => domain.has(w)));
  if (!said.size) return { correctness: 0, completeness: 0, explanation: 0, format: 1 };
  const hit = said.has(want.toLowerCase());
  return { correctness: hit ? (said.size > 1 ? 0.4 : 1) : 0, completeness: 1, explanation: explained(true, context), format: 1 };
}

const fact: Family<FactP> = {
  name: 'fact',
  description: 'closed-book questions about the generated people and towns',
  weight: 0.6,
  explains: true,
  templates: factTemplates,
  sample(rng, kb) {
    const t = rng.int(factSpecs.length);
    const attr = factSpecs[t].attr;
    const subject = attr === 'crop' || attr === 'region' ? rng.pick(kb.towns).name : rng.pick(kb.people).name;
    return { t, subject, attr };
  },
  render: (p) => ({ instruction: fill(factTemplates[p.t], { person: p.subject, town: p.subject }), input: '' }),
  fromMatch(t, g, input, kb) {
    const attr = factSpecs[t].attr;
    const subject = g.person ?? g.town;
    if (input) return null;
    if (attr === 'crop' || attr === 'region' ? !kb.townByName.has(subject) : !kb.personByName.has(subject)) return null;
    return { t, subject, attr };
  },
  respond(p, kb, rng, flaws) {
    let value = factValue(kb, p.subject, p.attr);
    if (flaws.wrong || (flaws.offByOne && p.attr === 'age')) value = wrongFactValue(kb, p.attr, value, rng, !!flaws.offByOne);
    if (flaws.missing) return rng.pick([`${p.subject} is a person in our town.`, `I do not know much about ${p.subject}.`, `That is a good question about ${p.subject}.`]);
    const bare = p.attr === 'job' || p.attr === 'pet' ? `${capitalize(article(value))} ${value}.` : `${capitalize(value)}.`;
    return maybeTerse(flaws, rng, factSentence(p.subject, p.attr, value, rng), bare);
  },
  check: (p, kb, output) => checkFact(kb, p.subject, p.attr, factValue(kb, p.subject, p.attr), output),
  lengthRange: () => [4, 12],
};

// ---------------------------------------------------------------------------------------------
// 4. reading: the same facts, stated in the input passage

interface ReadingP { t: number; person: string; attr: PersonAttr; order: PersonAttr[] }
const readingSpecs: { text: string; attr: PersonAttr }[] = [
  { text: 'Read the text and answer: where does {person} live?', attr: 'town' },
  { text: "Using the passage below, what is {person}'s job?", attr: 'job' },
  { text: 'Based on the text, what pet does {person} have?', attr: 'pet' },
  { text: 'According to the passage, how old is {person}?', attr: 'age' },
  { text: "Answer from the text: what is {person}'s favorite fruit?", attr: 'fruit' },
];
const readingTemplates = readingSpecs.map((s) => template(s.text, 'passage about the person'));

function passageSentence(p: Person, attr: PersonAttr): string {
  switch (attr) {
    case 'town': return `${p.name} lives in ${p.town}.`;
    case 'job': return `${p.name} works as ${article(p.job)} ${p.job}.`;
    case 'pet': return `${p.name} has ${article(p.pet)} ${p.pet}.`;
    case 'age': return `${p.name} is ${p.age} years old.`;
    case 'fruit': return `${p.name}'s favorite fruit is the ${p.fruit}.`;
  }
}

const reading: Family<ReadingP> = {
  name: 'reading',
  description: 'answer a question from a short input passage',
  weight: 1.0,
  explains: true,
  templates: readingTemplates,
  sample(rng, kb) {
    const t = rng.int(readingSpecs.length);
    const attr = readingSpecs[t].attr;
    const others = rng.sample(PERSON_SENTENCE_SLOTS.filter((a) => a !== attr), 2);
    return { t, person: rng.pick(kb.people).name, attr, order: rng.shuffle([attr, ...others]) };
  },
  render(p, kb) {
    const person = kb.personByName.get(p.person)!;
    return { instruction: fill(readingTemplates[p.t], { person: p.person }), input: p.order.map((a) => passageSentence(person, a)).join(' ') };
  },
  fromMatch(t, g, input, kb) {
    const person = kb.personByName.get(g.person);
    if (!person) return null;
    const order: PersonAttr[] = [];
    for (const s of input.split(/(?<=\.)\s+/)) {
      const attr = PERSON_SENTENCE_SLOTS.find((a) => passageSentence(person, a) === s.trim());
      if (!attr) return null;
      order.push(attr);
    }
    const attr = readingSpecs[t].attr;
    if (!order.includes(attr)) return null;
    return { t, person: g.person, attr, order };
  },
  respond(p, kb, rng, flaws) {
    return fact.respond({ t: 0, subject: p.person, attr: p.attr }, kb, rng, flaws);
  },
  check: (p, kb, output) => checkFact(kb, p.person, p.attr, String(kb.personByName.get(p.person)![p.attr]), output),
  lengthRange: () => [4, 12],
};

// ---------------------------------------------------------------------------------------------
// 5. arithmetic

type Op = 'add' | 'sub' | 'mul' | 'sum';
interface ArithP { t: number; op: Op; nums: number[]; numberOnly: boolean }
const arithSpecs: { text: string; op: Op; input?: string; numberOnly?: boolean }[] = [
  { text: 'What is {a} plus {b}?', op: 'add' },
  { text: 'Add {a} and {b}.', op: 'add' },
  { text: 'Compute {a} + {b}.', op: 'add' },
  { text: 'What is {a} minus {b}?', op: 'sub' },
  { text: 'Subtract {b} from {a}.', op: 'sub' },
  { text: 'What is {a} times {b}?', op: 'mul' },
  { text: 'Multiply {a} by {b}.', op: 'mul' },
  { text: 'Add these numbers.', op: 'sum', input: 'list of numbers' },
  { text: 'Find the sum of the numbers below.', op: 'sum', input: 'list of numbers' },
  { text: 'What is {a} plus {b}? Answer with a number only.', op: 'add', numberOnly: true },
];
const arithTemplates = arithSpecs.map((s) => template(s.text, s.input ?? ''));
const OP_WORD: Record<Op, string> = { add: 'plus', sub: 'minus', mul: 'times', sum: '+' };
const OP_SIGN: Record<Op, string> = { add: '+', sub: '-', mul: 'x', sum: '+' };

function arithValue(p: ArithP): number {
  switch (p.op) {
    case 'add': case 'sum': return p.nums.reduce((a, b) => a + b, 0);
    case 'sub': return p.nums[0] - p.nums[1];
    case 'mul': return p.nums[0] * p.nums[1];
  }
}

const arithmetic: Family<ArithP> = {
  name: 'arithmetic',
  description: 'add, subtract, multiply small numbers; sum an input list',
  weight: 0.7,
  explains: true,
  templates: arithTemplates,
  sample(rng) {
    const t = rng.int(arithSpecs.length);
    const { op, numberOnly } = arithSpecs[t];
    let nums: number[];
    if (op === 'sum') nums = Array.from({ length: rng.range(3, 4) }, () => rng.range(1, 50));
    else if (op === 'mul') nums = [rng.range(2, 20), rng.range(2, 9)];
    else if (op === 'sub') { const a = rng.range(10, 99); nums = [a, rng.range(1, a)]; }
    else nums = [rng.range(1, 99), rng.range(1, 99)];
    return { t, op, nums, numberOnly: !!numberOnly };
  },
  render(p) {
    const spec = arithSpecs[p.t];
    if (spec.op === 'sum') return { instruction: spec.text, input: p.nums.join(', ') };
    return { instruction: fill(arithTemplates[p.t], { a: p.nums[0], b: p.nums[1] }), input: '' };
  },
  fromMatch(t, g, input) {
    const spec = arithSpecs[t];
    if (spec.op === 'sum') {
      const items = parseList(input);
      if (items.length < 2 || items.some((x) => !/^\d+$/.test(x))) return null;
      return { t, op: 'sum', nums: items.map(Number), numberOnly: false };
    }
    if (input) return null;
    return { t, op: spec.op, nums: [Number(g.a), Number(g.b)], numberOnly: !!spec.numberOnly };
  },
  respond(p, _kb, rng, flaws) {
    let c = arithValue(p);
    if (flaws.wrong || flaws.offByOne) c = perturb(rng, c, !!flaws.offByOne);
    if (p.numberOnly && !flaws.missing) return rng.chance(0.85) ? String(c) : `The answer is ${c}.`;
    if (flaws.missing) {
      return p.op === 'sum' ? `To find the sum, add ${joinList(p.nums.map(String), 'and')} together.` : `To solve this, ${p.op === 'mul' ? 'multiply' : p.op === 'sub' ? 'subtract' : 'add'} the two numbers.`;
    }
    if (flaws.terse) return String(c);
    const expr = p.nums.join(` ${OP_SIGN[p.op]} `);
    if (flaws.vague) return rng.chance(0.5) ? `The answer is ${c}.` : p.op === 'sum' ? `The sum is ${c}.` : `The result is ${c}.`;
    if (p.op === 'sum' || rng.chance(0.5)) return `${expr} = ${c}.`;
    return `${p.nums[0]} ${OP_WORD[p.op]} ${p.nums[1]} is ${c}.`;
  },
  check(p, _kb, output) {
    const got = lastNumber(output);
    const format = p.numberOnly ? (/^\s*-?\d+\.?\s*$/.test(output) ? 1 : 0.3) : 1;
    // the working ("17 + 25 = 42"): the operands stated before the result (a sum needs most of them)
    const before = numbers(output).slice(0, -1);
    const shown = p.nums.filter((x) => before.includes(x)).length;
    const context = p.numberOnly || shown >= (p.op === 'sum' ? Math.max(2, p.nums.length - 1) : 2);
    return { correctness: numericCredit(got, arithValue(p)), completeness: got === undefined ? 0 : 1, explanation: explained(got !== undefined, context), format };
  },
  lengthRange: (p) => (p.numberOnly ? [1, 1] : [4, 12]),
};

// ---------------------------------------------------------------------------------------------
// 6. sort: numbers up or down, words alphabetically

type SortKind = 'asc' | 'desc' | 'alpha';
interface SortP { t: number; kind: SortKind; items: string[] }
const sortSpecs: { text: string; kind: SortKind }[] = [
  { text: 'Sort these numbers from smallest to largest.', kind: 'asc' },
  { text: 'Put the numbers below in ascending order.', kind: 'asc' },
  { text: 'Order these numbers from largest to smallest.', kind: 'desc' },
  { text: 'Sort the numbers in descending order.', kind: 'desc' },
  { text: 'Sort the following words alphabetically.', kind: 'alpha' },
  { text: 'Arrange these words in alphabetical order.', kind: 'alpha' },
];
const sortTemplates = sortSpecs.map((s) => template(s.text, s.kind === 'alpha' ? 'list of words' : 'list of numbers'));

function sorted(p: SortP): string[] {
  if (p.kind === 'alpha') return [...p.items].sort();
  const ns = p.items.map(Number).sort((a, b) => a - b);
  return (p.kind === 'desc' ? ns.reverse() : ns).map(String);
}

const sort: Family<SortP> = {
  name: 'sort',
  description: 'sort an input list of numbers or words',
  weight: 0.6,
  templates: sortTemplates,
  sample(rng, kb) {
    const t = rng.int(sortSpecs.length);
    const kind = sortSpecs[t].kind;
    const n = rng.range(4, 6);
    let items: string[];
    if (kind === 'alpha') {
      // distinct first letters keep the task about ordering, not about spelling ties
      const byLetter = new Map<string, string>();
      for (const w of rng.shuffle(kb.allWords)) if (!byLetter.has(w[0])) byLetter.set(w[0], w);
      items = rng.sample([...byLetter.values()], n - 1);
    } else {
      const set = new Set<number>();
      while (set.size < n) set.add(rng.range(1, 99));
      items = [...set].map(String);
    }
    return { t, kind, items };
  },
  render: (p) => ({ instruction: sortSpecs[p.t].text, input: p.items.join(', ') }),
  fromMatch(t, _g, input) {
    const kind = sortSpecs[t].kind;
    const items = parseList(input);
    if (items.length < 2 || new Set(items).size !== items.length) return null;
    if (kind === 'alpha' ? items.some((x) => !/^[a-z]+$/.test(x)) : items.some((x) => !/^\d+$/.test(x))) return null;
    return { t, kind, items };
  },
  respond(p, _kb, rng, flaws) {
    let out = sorted(p);
    if (flaws.wrong && out.length > 2) {
      const i = rng.int(out.length - 1);
      out = out.slice();
      [out[i], out[i + 1]] = [out[i + 1], out[i]];
    }
    if (flaws.offByOne && p.kind !== 'alpha') {
      const i = rng.int(out.length);
      out = out.slice();
      out[i] = String(Number(out[i]) + 1);
    }
    if (flaws.missing) out = out.filter((_, i) => i !== rng.int(out.length));
    const body = out.join(', ');
    if (flaws.terse) return body;
    const style = rng.int(3);
    if (style === 0) return `${body}.`;
    if (style === 1) return `The sorted list is ${body}.`;
    return `Sorted: ${body}`;
  },
  check(p, _kb, output) {
    const want = sorted(p);
    const allowed = new Set(p.items);
    const tokens = p.kind === 'alpha' ? words(output) : numbers(output).map(String);
    const seen: string[] = [];
    let extra = 0;
    for (const tok of tokens) {
      if (allowed.has(tok)) { if (!seen.includes(tok)) seen.push(tok); }
      else if (p.kind !== 'alpha') extra++; // stray numbers are wrong items; stray words are just prose
    }
    const coverage = seen.length / want.length;
    if (seen.length === want.length && extra === 0 && seen.every((x, i) => x === want[i])) {
      return { correctness: 1, completeness: 1, format: 1 };
    }
    const rank = new Map(want.map((x, i) => [x, i]));
    let good = 0, pairs = 0;
    for (let i = 0; i < seen.length; i++) for (let j = i + 1; j < seen.length; j++) { pairs++; if (rank.get(seen[i])! < rank.get(seen[j])!) good++; }
    const order = pairs ? good / pairs : 0;
    const correctness = 0.6 * order * coverage * (want.length / (want.length + extra));
    return { correctness, completeness: coverage, format: 1 };
  },
  lengthRange: (p) => [p.items.length, p.items.length + 6],
};

// ---------------------------------------------------------------------------------------------
// 7. reverse: spell a word backwards

interface ReverseP { t: number; word: string }
const reverseTemplates = [
  template('Spell the word {word} backwards.'),
  template('Write {word} in reverse.'),
  template('What is {word} spelled backwards?'),
  template('Reverse the letters of the word below.', 'one word'),
  template('Spell this word backwards.', 'one word'),
];
const reverseStr = (s: string) => [...s].reverse().join('');

const reverse: Family<ReverseP> = {
  name: 'reverse',
  description: 'spell a word backwards',
  weight: 0.4,
  explains: true,
  templates: reverseTemplates,
  sample: (rng, kb) => ({ t: rng.int(reverseTemplates.length), word: rng.pick(kb.vocabulary.filter((w) => w.length >= 3 && reverseStr(w) !== w)) }),
  render: (p) => (reverseTemplates[p.t].input ? { instruction: reverseTemplates[p.t].text, input: p.word } : { instruction: fill(reverseTemplates[p.t], { word: p.word }), input: '' }),
  fromMatch(t, g, input) {
    const word = reverseTemplates[t].input ? input : g.word;
    if (!/^[a-z]{2,}$/.test(word) || (reverseTemplates[t].input === '' && input)) return null;
    return { t, word };
  },
  respond(p, _kb, rng, flaws) {
    let r = reverseStr(p.word);
    if (flaws.wrong && r.length > 2) { const i = rng.int(r.length - 1); r = r.slice(0, i) + r[i + 1] + r[i] + r.slice(i + 2); }
    if (flaws.offByOne || flaws.missing) r = r.slice(0, -1);
    if (flaws.terse) return r;
    if (flaws.vague) return `The reversed word is ${r}.`;
    return rng.chance(0.5) ? `${capitalize(p.word)} spelled backwards is ${r}.` : `${r} is ${p.word} spelled backwards.`;
  },
  check(p, _kb, output) {
    const want = reverseStr(p.word);
    const cands = words(output).filter((w) => w !== p.word || w === want);
    let best = '';
    let bestSim = 0;
    for (const c of cands) { const s = similarity(c, want); if (s > bestSim) { bestSim = s; best = c; } }
    const explanation = explained(!!best, words(output).includes(p.word));
    if (best === want) return { correctness: 1, completeness: 1, explanation, format: 1 };
    return { correctness: bestSim >= 0.5 ? 0.6 * bestSim * bestSim : 0, completeness: best ? Math.min(best.length, want.length) / Math.max(best.length, want.length) : 0, explanation, format: 1 };
  },
  lengthRange: () => [3, 8],
};

// ---------------------------------------------------------------------------------------------
// 8. count: letters in a word, words in a sentence, one letter in a word

type CountKind = 'letters' | 'words' | 'letter';
interface CountP { t: number; kind: CountKind; word: string; letter: string; sentence: string }
const countSpecs: { text: string; kind: CountKind; input?: string }[] = [
  { text: 'How many letters are in the word {word}?', kind: 'letters' },
  { text: 'Count the letters in {word}.', kind: 'letters' },
  { text: 'How many words are in this sentence?', kind: 'words', input: 'sentence' },
  { text: 'Count the words in the sentence below.', kind: 'words', input: 'sentence' },
  { text: 'How many times does the letter {letter} appear in {word}?', kind: 'letter' },
];
const countTemplates = countSpecs.map((s) => template(s.text, s.input ?? ''));

function countValue(p: CountP): number {
  if (p.kind === 'letters') return p.word.length;
  if (p.kind === 'words') return rawTokens(p.sentence).length;
  return [...p.word].filter((c) => c === p.letter).length;
}

const count: Family<CountP> = {
  name: 'count',
  description: 'count letters or words',
  weight: 0.6,
  explains: true,
  templates: countTemplates,
  sample(rng, kb) {
    const t = rng.int(countSpecs.length);
    const kind = countSpecs[t].kind;
    const word = rng.pick(kb.vocabulary);
    // ask about a letter the word has most of the time, sometimes one it lacks
    const letter = rng.chance(0.8) ? rng.pick([...word]) : rng.pick([...'abcdefghijklmnopqrstuvwxyz']);
    return { t, kind, word, letter, sentence: kind === 'words' ? randomSentence(rng, kb) : '' };
  },
  render(p) {
    if (p.kind === 'words') return { instruction: countSpecs[p.t].text, input: p.sentence };
    return { instruction: fill(countTemplates[p.t], { word: p.word, letter: p.letter }), input: '' };
  },
  fromMatch(t, g, input) {
    const kind = countSpecs[t].kind;
    if (kind === 'words') return input.trim() ? { t, kind, word: '', letter: '', sentence: input } : null;
    if (input) return null;
    return { t, kind, word: g.word, letter: g.letter ?? '', sentence: '' };
  },
  respond(p, _kb, rng, flaws) {
    let k = countValue(p);
    if (flaws.wrong || flaws.offByOne) k = Math.max(0, perturb(rng, k, !!flaws.offByOne));
    if (flaws.missing) return p.kind === 'words' ? 'The sentence has several words.' : `Let us count the letters in ${p.word}.`;
    if (flaws.terse) return String(k);
    const noun = p.kind === 'words' ? 'words' : 'letters';
    if (flaws.vague) return rng.chance(0.5) ? `The answer is ${k}.` : p.kind === 'letter' ? `It appears ${k} times.` : `There are ${k} ${p.kind === 'words' ? 'of them' : noun}.`;
    if (p.kind === 'letter') return `The letter ${p.letter} appears ${k} times in ${p.word}.`;
    if (p.kind === 'words') return rng.chance(0.5) ? `The sentence has ${k} words.` : `There are ${k} words.`;
    return rng.chance(0.5) ? `${capitalize(p.word)} has ${k} letters.` : `There are ${k} letters in ${p.word}.`;
  },
  check(p, _kb, output) {
    const got = lastNumber(output);
    const context = p.kind === 'words' ? mentions(output, 'words') : mentions(output, p.word);
    return { correctness: numericCredit(got, countValue(p)), completeness: got === undefined ? 0 : 1, explanation: explained(got !== undefined, context), format: 1 };
  },
  lengthRange: () => [4, 10],
};

// ---------------------------------------------------------------------------------------------
// 9. rewrite: upper or lower case

type CaseMode = 'upper' | 'lower';
interface RewriteP { t: number; mode: CaseMode; sentence: string }
const rewriteSpecs: { text: string; mode: CaseMode }[] = [
  { text: 'Rewrite the sentence in upper case.', mode: 'upper' },
  { text: 'Convert the following text to capital letters.', mode: 'upper' },
  { text: 'Write this sentence in lower case.', mode: 'lower' },
  { text: 'Change the text below to lower case.', mode: 'lower' },
];
const rewriteTemplates = rewriteSpecs.map((s) => template(s.text, 'sentence'));
const applyCase = (mode: CaseMode, s: string) => (mode === 'upper' ? s.toUpperCase() : s.toLowerCase());

function lcsLength<T>(a: readonly T[], b: readonly T[]): number {
  const dp = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let prev = 0;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = a[i - 1] === b[j - 1] ? prev + 1 : Math.max(dp[j], dp[j - 1]);
      prev = tmp;
    }
  }
  return dp[b.length];
}

const caseTokens = (s: string) => s.match(/[A-Za-z0-9']+/g) ?? [];

const rewrite: Family<RewriteP> = {
  name: 'rewrite',
  description: 'rewrite an input sentence in upper or lower case',
  weight: 0.7,
  templates: rewriteTemplates,
  sample(rng, kb) {
    const t = rng.int(rewriteSpecs.length);
    let sentence = randomSentence(rng, kb);
    if (rewriteSpecs[t].mode === 'lower') sentence = sentence.split(' ').map((w) => (rng.chance(0.4) ? capitalize(w) : w)).join(' ');
    return { t, mode: rewriteSpecs[t].mode, sentence };
  },
  render: (p) => ({ instruction: rewriteSpecs[p.t].text, input: p.sentence }),
  fromMatch: (t, _g, input) => (input.trim() ? { t, mode: rewriteSpecs[t].mode, sentence: input } : null),
  respond(p, _kb, rng, flaws) {
    let toks = p.sentence.split(' ');
    const target = toks.map((w) => applyCase(p.mode, w));
    if (flaws.wrong || flaws.offByOne) { const i = rng.int(toks.length); target[i] = toks[i] === target[i] ? applyCase(p.mode === 'upper' ? 'lower' : 'upper', toks[i]) : toks[i]; }
    toks = target;
    if (flaws.missing && toks.length > 3) toks = toks.filter((_, i) => i !== 1 + rng.int(toks.length - 2));
    const body = toks.join(' ');
    if (flaws.terse || rng.chance(0.7)) return body;
    return p.mode === 'upper' ? `Here is the sentence in upper case: ${body}` : `Here it is in lower case: ${body}`;
  },
  check(p, _kb, output) {
    const want = caseTokens(applyCase(p.mode, p.sentence));
    const got = caseTokens(output);
    const exact = lcsLength(want, got);
    const loose = lcsLength(want.map((w) => w.toLowerCase()), got.map((w) => w.toLowerCase()));
    const correctness = exact === want.length ? 1 : 0.7 * (exact / want.length) ** 2;
    const format = got.length === want.length ? 1 : 0.8;
    return { correctness, completeness: loose / want.length, format };
  },
  lengthRange: (p) => { const n = rawTokens(p.sentence).length; return [n, n + 3]; },
};

// ---------------------------------------------------------------------------------------------
// 10. polite: make a blunt request polite

interface PoliteP { t: number; request: string }
const politeTemplates = [
  template('Make this request more polite.', 'blunt request'),
  template('Rewrite the sentence below so it sounds polite.', 'blunt request'),
  template('Rephrase this in a polite way.', 'blunt request'),
  template('Say this more politely.', 'blunt request'),
];
const REQUEST_FORMS = [
  'Give me the {tool}.', 'Pass me the {fruit}.', 'Bring me some {drink}.', 'Feed the {animal}.', 'Fix the {tool}.',
  'Water the {flower}.', 'Clean the {tool}.', 'Cook the {vegetable}.', 'Pour me some {drink}.', 'Put away the {tool}.',
  'Pick the {flower}.', 'Wash the {vegetable}.', 'Find my {animal}.', 'Cut the {fruit}.', 'Sell the {animal}.',
];
const POLITE_MARKERS = ['please', 'could you', 'would you', 'kindly', 'thank you', 'thanks', 'would you mind'];
const RUDE_MARKERS = ['now', 'hurry', 'immediately', 'right away', 'or else'];

function politenessOf(text: string): number {
  const t = ` ${text.toLowerCase().replace(/[^a-z ]+/g, ' ')} `;
  let score = 0;
  for (const m of POLITE_MARKERS) if (t.includes(` ${m} `)) score += 0.5;
  for (const m of RUDE_MARKERS) if (t.includes(` ${m} `)) score -= 0.6;
  return clamp01(score);
}

function requestContent(request: string): string[] {
  return words(request).filter((w) => !['me', 'my', 'the', 'some', 'a', 'an', 'away'].includes(w));
}

const polite: Family<PoliteP> = {
  name: 'polite',
  description: 'rewrite a blunt request politely',
  weight: 0.9,
  templates: politeTemplates,
  sample(rng, kb) {
    const form = rng.pick(REQUEST_FORMS);
    const request = form.replace(/\{(\w+)\}/g, (_, c: string) => rng.pick(kb.categoryByName.get(c)!.members));
    return { t: rng.int(politeTemplates.length), request };
  },
  render: (p) => ({ instruction: politeTemplates[p.t].text, input: p.request }),
  fromMatch: (t, _g, input) => (/^[A-Z][a-z]+ [a-z ]+\.$/.test(input.trim()) ? { t, request: input.trim() } : null),
  respond(p, _kb, rng, flaws) {
    const body = p.request.slice(0, -1).toLowerCase(); // "give me the hammer"
    const [verb, ...rest] = body.split(' ');
    let restText = rest.join(' ');
    if (flaws.missing) restText = rest.includes('me') ? 'me that' : 'it';
    if (flaws.wrong) return rng.pick([`${capitalize(body)} now.`, `${capitalize(body)}, and hurry.`, `${capitalize(body)}.`]);
    const forms = [
      `Could you please ${verb} ${restText}?`,
      `Would you mind if I asked you to ${verb} ${restText}, please?`,
      `Please ${verb} ${restText}, thank you.`,
      `Would you kindly ${verb} ${restText}?`,
    ];
    const s = rng.pick(forms);
    return flaws.terse ? s : rng.chance(0.2) ? `${s} Thank you so much.` : s;
  },
  check(p, _kb, output) {
    const content = requestContent(p.request);
    const said = new Set(words(output));
    const kept = content.filter((w) => said.has(w)).length / content.length;
    const pol = politenessOf(output);
    return { correctness: kept * (pol > 0 ? 1 : 0.2), completeness: kept, format: /[.?!]$/.test(output.trim()) ? 1 : 0.7, politeness: pol };
  },
  lengthRange: () => [4, 16],
  asksPoliteness: () => true,
};

// ---------------------------------------------------------------------------------------------
// 11. classify: the category of a word

interface ClassifyP { t: number; word: string; options: string[] }
const classifyTemplates = [
  template('Is the {word} a {c1} or a {c2}?'),
  template('Which category does the word {word} belong to?'),
  template('Classify the item below as {c1}, {c2} or {c3}.', 'one word'),
  template('What kind of thing is {art} {word}?'),
];

function categoryNamesIn(kb: KnowledgeBase, text: string): Set<string> {
  const out = new Set<string>();
  for (const w of words(text)) {
    const c = kb.categoryByName.get(w) ?? kb.categoryByPlural.get(w);
    if (c) out.add(c.name);
  }
  return out;
}

const classify: Family<ClassifyP> = {
  name: 'classify',
  description: 'name the category of a word',
  weight: 1.1,
  explains: true,
  templates: classifyTemplates,
  sample(rng, kb) {
    const t = rng.int(classifyTemplates.length);
    // "a milk" and "the pink" read badly: mass nouns and colors only in the phrasings without an article
    const excluded = t === 1 || t === 2 ? [] : ['color', 'drink'];
    const word = rng.pick(kb.allWords.filter((w) => !excluded.includes(kb.categoryOf.get(w)!)));
    const right = kb.categoryOf.get(word)!;
    const others = rng.sample(CATEGORIES.map((c) => c.name).filter((c) => c !== right), 2);
    const options = t === 0 ? rng.shuffle([right, others[0]]) : t === 2 ? rng.shuffle([right, ...others]) : [];
    return { t, word, options };
  },
  render(p) {
    const tp = classifyTemplates[p.t];
    if (tp.input) return { instruction: fill(tp, { c1: p.options[0], c2: p.options[1], c3: p.options[2] }), input: p.word };
    return { instruction: fill(tp, { word: p.word, c1: p.options[0] ?? '', c2: p.options[1] ?? '', art: article(p.word) }), input: '' };
  },
  fromMatch(t, g, input, kb) {
    const word = classifyTemplates[t].input ? input.trim() : g.word;
    if (!kb.categoryOf.has(word) || (!classifyTemplates[t].input && input)) return null;
    const options = [g.c1, g.c2, g.c3].filter((x): x is string => !!x);
    if (options.some((o) => !kb.categoryByName.has(o)) || (options.length && !options.includes(kb.categoryOf.get(word)!))) return null;
    if (g.art && g.art !== article(word)) return null;
    return { t, word, options };
  },
  respond(p, kb, rng, flaws) {
    let c = kb.categoryOf.get(p.word)!;
    if (flaws.wrong) c = p.options.length ? rng.pick(p.options.filter((o) => o !== c)) : rng.pick(CATEGORIES.filter((x) => x.name !== c)).name;
    if (flaws.missing) return rng.pick([`It is a common thing.`, `The ${p.word} is something you see every day.`]);
    const forms = flaws.vague ? [`It is ${article(c)} ${c}.`] : [`${capitalize(article(p.word))} ${p.word} is ${article(c)} ${c}.`, `The ${p.word} belongs to the ${c} category.`];
    return maybeTerse(flaws, rng, rng.pick(forms), `${capitalize(c)}.`);
  },
  check(p, kb, output) {
    const said = categoryNamesIn(kb, output);
    const right = kb.categoryOf.get(p.word)!;
    if (!said.size) return { correctness: 0, completeness: 0, explanation: 0, format: 1 };
    return { correctness: said.has(right) ? (said.size > 1 ? 0.3 : 1) : 0, completeness: 1, explanation: explained(true, mentions(output, p.word)), format: 1 };
  },
  lengthRange: () => [4, 10],
};

// ---------------------------------------------------------------------------------------------
// 12. sentiment of a short review

interface SentimentP { t: number; review: string }
const sentimentTemplates = [
  template('Is the sentiment of this review positive or negative?', 'review'),
  template('Classify the sentiment of the sentence below.', 'review'),
  template('Does this review sound positive or negative?', 'review'),
];
const POSITIVE = ['great', 'lovely', 'fresh', 'tasty', 'wonderful', 'sweet', 'good', 'loved', 'enjoyed'];
const NEGATIVE = ['awful', 'stale', 'bland', 'bitter', 'cold', 'bad', 'terrible', 'hated', 'disliked'];

function sentimentOf(review: string): 'positive' | 'negative' | null {
  let s = 0;
  for (const w of words(review)) { if (POSITIVE.includes(w)) s++; if (NEGATIVE.includes(w)) s--; }
  return s > 0 ? 'positive' : s < 0 ? 'negative' : null;
}

const sentiment: Family<SentimentP> = {
  name: 'sentiment',
  description: 'classify a short review as positive or negative',
  weight: 1.0,
  explains: true,
  templates: sentimentTemplates,
  sample(rng, kb) {
    const pos = rng.chance(0.5);
    const adj = rng.pick((pos ? POSITIVE : NEGATIVE).slice(0, 7));
    const subject = rng.pick([`The ${rng.pick(kb.categoryByName.get('fruit')!.members)} pie`, `The ${rng.pick(kb.categoryByName.get('drink')!.members)}`, `The market in ${rng.pick(kb.towns).name}`, 'The soup', 'The bread']);
    let review = `${subject} was ${adj}.`;
    if (rng.chance(0.5)) review += pos ? ` I ${rng.pick(['loved', 'enjoyed'])} it.` : ` I ${rng.pick(['hated', 'disliked'])} it.`;
    return { t: rng.int(sentimentTemplates.length), review };
  },
  render: (p) => ({ instruction: sentimentTemplates[p.t].text, input: p.review }),
  fromMatch: (t, _g, input) => (sentimentOf(input) ? { t, review: input.trim() } : null),
  respond(p, _kb, rng, flaws) {
    let label = sentimentOf(p.review)!;
    if (flaws.wrong) label = label === 'positive' ? 'negative' : 'positive';
    if (flaws.missing) return rng.pick(['The review talks about food.', 'This is a review.']);
    const forms = flaws.vague ? [`It is ${label}.`] : [`The sentiment is ${label}.`, `The review is ${label}.`];
    return maybeTerse(flaws, rng, rng.pick(forms), `${capitalize(label)}.`);
  },
  check(p, _kb, output) {
    const w = new Set(words(output));
    const want = sentimentOf(p.review)!;
    const other = want === 'positive' ? 'negative' : 'positive';
    if (!w.has(want) && !w.has(other)) return { correctness: 0, completeness: 0, explanation: 0, format: 1 };
    const cue = words(p.review).some((x) => (POSITIVE.includes(x) || NEGATIVE.includes(x)) && w.has(x));
    const context = w.has('review') || w.has('sentiment') || cue;
    return { correctness: w.has(want) ? (w.has(other) ? 0.3 : 1) : 0, completeness: 1, explanation: explained(true, context), format: 1 };
  },
  lengthRange: () => [4, 10],
};

// ---------------------------------------------------------------------------------------------
// 13. compare: two numbers, two people's ages, two words' lengths

type CompareKind = 'larger' | 'smaller' | 'older' | 'younger' | 'longer';
interface CompareP { t: number; kind: CompareKind; x: string; y: string }
const compareSpecs: { text: string; kind: CompareKind }[] = [
  { text: 'Which number is larger, {a} or {b}?', kind: 'larger' },
  { text: 'Which is smaller: {a} or {b}?', kind: 'smaller' },
  { text: 'Who is older, {person} or {person2}?', kind: 'older' },
  { text: 'Who is younger, {person} or {person2}?', kind: 'younger' },
  { text: 'Which word is longer, {word} or {word2}?', kind: 'longer' },
];
const compareTemplates = compareSpecs.map((s) => template(s.text));

function compareWinner(p: CompareP, kb: KnowledgeBase): string {
  const v = (s: string) => (p.kind === 'older' || p.kind === 'younger' ? kb.personByName.get(s)!.age : p.kind === 'longer' ? s.length : Number(s));
  const xBig = v(p.x) > v(p.y);
  const wantBig = p.kind === 'larger' || p.kind === 'older' || p.kind === 'longer';
  return xBig === wantBig ? p.x : p.y;
}

const compare: Family<CompareP> = {
  name: 'compare',
  description: 'compare two numbers, ages or word lengths',
  weight: 1.0,
  explains: true,
  templates: compareTemplates,
  sample(rng, kb) {
    const t = rng.int(compareSpecs.length);
    const kind = compareSpecs[t].kind;
    for (;;) {
      let x: string, y: string;
      if (kind === 'older' || kind === 'younger') { [x, y] = rng.sample(kb.people, 2).map((q) => q.name); if (kb.personByName.get(x)!.age === kb.personByName.get(y)!.age) continue; }
      else if (kind === 'longer') { [x, y] = rng.sample(kb.allWords, 2); if (x.length === y.length) continue; }
      else { x = String(rng.range(1, 99)); y = String(rng.range(1, 99)); if (x === y) continue; }
      return { t, kind, x, y };
    }
  },
  render: (p) => ({ instruction: fill(compareTemplates[p.t], { a: p.x, b: p.y, person: p.x, person2: p.y, word: p.x, word2: p.y }), input: '' }),
  fromMatch(t, g, input, kb) {
    const kind = compareSpecs[t].kind;
    const x = g.a ?? g.person ?? g.word;
    const y = g.b ?? g.person2 ?? g.word2;
    if (input || x === y) return null;
    if (kind === 'older' || kind === 'younger') {
      const px = kb.personByName.get(x), py = kb.personByName.get(y);
      if (!px || !py || px.age === py.age) return null;
    }
    if (kind === 'longer' && x.length === y.length) return null;
    if ((kind === 'larger' || kind === 'smaller') && Number(x) === Number(y)) return null;
    return { t, kind, x, y };
  },
  respond(p, kb, rng, flaws) {
    let w = compareWinner(p, kb);
    let l = w === p.x ? p.y : p.x;
    if (flaws.wrong) [w, l] = [l, w];
    if (flaws.missing) return rng.pick(['It is hard to say.', `Both are worth comparing.`]);
    const rel: Record<CompareKind, string> = { larger: 'larger', smaller: 'smaller', older: 'older', younger: 'younger', longer: 'longer' };
    const forms = flaws.vague ? [`${w} is ${rel[p.kind]}.`, p.kind === 'longer' ? `The word ${w} is longer.` : `The answer is ${w}.`] : [`${w} is ${rel[p.kind]} than ${l}.`];
    return maybeTerse(flaws, rng, rng.pick(forms), `${w}.`);
  },
  check(p, kb, output) {
    // the first option named is the answer ("43 is larger than 34")
    const toks = p.kind === 'older' || p.kind === 'younger' ? output.match(/[A-Za-z]+/g) ?? [] : p.kind === 'longer' ? words(output) : numbers(output).map(String);
    const first = toks.find((t) => t === p.x || t === p.y);
    if (!first) return { correctness: 0, completeness: 0, explanation: 0, format: 1 };
    const both = toks.includes(p.x) && toks.includes(p.y);
    return { correctness: first === compareWinner(p, kb) ? 1 : 0, completeness: 1, explanation: explained(true, both), format: 1 };
  },
  lengthRange: () => [4, 10],
};

// ---------------------------------------------------------------------------------------------
// 14. write: short open-ended writing, checked against a rubric

type WriteKind = 'greeting' | 'thanks' | 'about' | 'invite';
interface WriteP { t: number; kind: WriteKind; person: string; item: string; town: string }
const writeSpecs: { text: string; kind: WriteKind }[] = [
  { text: 'Write a greeting for {person}.', kind: 'greeting' },
  { text: 'Write a short greeting to {person}.', kind: 'greeting' },
  { text: 'Write a thank-you note to {person} for the {item}.', kind: 'thanks' },
  { text: 'Write a short note thanking {person} for the {item}.', kind: 'thanks' },
  { text: 'Write one sentence about {art} {item}.', kind: 'about' },
  { text: 'Invite {person} to a picnic in {town}.', kind: 'invite' },
];
const writeTemplates = writeSpecs.map((s) => template(s.text));
const GREETING_WORDS = ['hello', 'hi', 'dear', 'greetings', 'welcome', 'morning'];
const INVITE_WORDS = ['join', 'invite', 'come', 'like'];
const WARM_WORDS = ['hope', 'wonderful', 'kind', 'love', 'great', 'lovely', 'please', 'thank', 'glad'];

function rubric(p: WriteP, kb: KnowledgeBase, output: string): { parts: boolean[]; wrongName: boolean } {
  const w = new Set(words(output));
  const names = new Set((output.match(/[A-Z][a-z]+/g) ?? []).filter((n) => kb.personByName.has(n)));
  const wrongName = [...names].some((n) => n !== p.person) && p.kind !== 'about';
  const hasAny = (list: string[]) => list.some((x) => w.has(x));
  const has = (x: string) => w.has(x.toLowerCase());
  switch (p.kind) {
    case 'greeting': return { parts: [names.has(p.person), hasAny(GREETING_WORDS)], wrongName };
    case 'thanks': return { parts: [names.has(p.person), has('thank') || has('thanks'), has(p.item)], wrongName };
    case 'about': return { parts: [has(p.item), rawTokens(output).length >= 5 && /[.!]$/.test(output.trim())], wrongName: false };
    case 'invite': return { parts: [names.has(p.person), has(p.town), has('picnic'), hasAny(INVITE_WORDS)], wrongName };
  }
}

const ABOUT_FORMS: Record<string, string[]> = {
  animal: ['The {x} is an animal that lives on many farms.', 'A {x} is a friendly animal that likes to eat.'],
  bird: ['The {x} is a bird that can fly over the fields.', 'A {x} is a bird that sings in the morning.'],
  fruit: ['The {x} is a sweet fruit that grows on trees.', 'A {x} is a fruit that many people like to eat.'],
  vegetable: ['The {x} is a vegetable that grows in the garden.', 'A {x} is a healthy vegetable for dinner.'],
  tool: ['The {x} is a tool that helps with work on the farm.', 'A {x} is a useful tool in every shed.'],
  flower: ['The {x} is a flower with a lovely smell.', 'A {x} is a pretty flower that grows in spring.'],
  drink: ['{X} is a drink that people enjoy every day.'],
  color: ['{X} is a color you can see all around the farm.'],
};

const write: Family<WriteP> = {
  name: 'write',
  description: 'short open-ended writing: greetings, thank-you notes, invitations, a sentence about a thing',
  weight: 1.1,
  templates: writeTemplates,
  sample(rng, kb) {
    const t = rng.int(writeSpecs.length);
    const kind = writeSpecs[t].kind;
    const itemCats = kind === 'about' ? ['animal', 'bird', 'fruit', 'vegetable', 'tool', 'flower'] : ['fruit', 'vegetable', 'tool', 'flower'];
    const item = rng.pick(kb.categoryByName.get(rng.pick(itemCats))!.members);
    return { t, kind, person: rng.pick(kb.people).name, item, town: rng.pick(kb.towns).name };
  },
  render: (p) => ({ instruction: fill(writeTemplates[p.t], { person: p.person, item: p.item, town: p.town, art: article(p.item) }), input: '' }),
  fromMatch(t, g, input, kb) {
    const kind = writeSpecs[t].kind;
    if (input) return null;
    if (kind !== 'about' && !kb.personByName.has(g.person)) return null;
    if ((kind === 'thanks' || kind === 'about') && !kb.categoryOf.has(g.item)) return null;
    if (kind === 'invite' && !kb.townByName.has(g.town)) return null;
    if (g.art && g.art !== article(g.item)) return null;
    return { t, kind, person: g.person ?? '', item: g.item ?? '', town: g.town ?? '' };
  },
  respond(p, kb, rng, flaws) {
    let name = p.person;
    if (flaws.wrong) name = rng.pick(kb.people.filter((q) => q.name !== p.person)).name;
    const item = flaws.wrong && p.kind === 'about' ? foreignWord(kb, rng, kb.categoryOf.get(p.item)!) : p.item;
    const m = flaws.missing;
    switch (p.kind) {
      case 'greeting': {
        const forms = m
          ? ['I hope you are having a wonderful day.', 'It is great to see you again.']
          : [`Hello ${name}! I hope you are having a wonderful day.`, `Dear ${name}, good morning and welcome!`, `Hi ${name}, it is great to see you.`, `Greetings, ${name}! I am glad you are here.`];
        return rng.pick(forms);
      }
      case 'thanks': {
        const forms = m
          ? [`Dear ${name}, it was very kind of you.`, `Thank you so much, it was lovely.`]
          : [`Dear ${name}, thank you so much for the ${item}. It was very kind of you.`, `Thank you, ${name}, for the lovely ${item}!`, `${name}, thanks a lot for the ${item}. I love it.`];
        return rng.pick(forms);
      }
      case 'about': {
        const cat = kb.categoryOf.get(item)!;
        if (m) return rng.pick(['It is a nice thing.', 'There is a lot to say.']);
        return rng.pick(ABOUT_FORMS[cat]).replace('{x}', item).replace('{X}', capitalize(item));
      }
      case 'invite': {
        const forms = m
          ? [`Dear ${name}, would you like to join us?`, `Please come to a picnic, ${name}!`]
          : [`Dear ${name}, would you like to join us for a picnic in ${p.town}? We would love to see you.`, `Hi ${name}! Please come to our picnic in ${p.town}. It will be great fun.`, `${name}, we invite you to a picnic in ${p.town}. I hope you can come!`];
        return rng.pick(forms);
      }
    }
  },
  check(p, kb, output) {
    const { parts, wrongName } = rubric(p, kb, output);
    const frac = parts.filter(Boolean).length / parts.length;
    const core = parts[0] ? 1 : 0; // the addressee (or the topic) is what the task is about
    const correctness = (0.6 * core + 0.4 * frac) * (wrongName ? 0.3 : 1);
    const w = words(output);
    const warm = WARM_WORDS.filter((x) => w.some((y) => y.startsWith(x))).length;
    return { correctness, completeness: frac, format: /[.!?]$/.test(output.trim()) ? 1 : 0.7, politeness: clamp01(0.4 + 0.3 * warm - 0.6 * (politenessOf(output) === 0 && RUDE_MARKERS.some((r) => w.includes(r)) ? 1 : 0)) };
  },
  lengthRange: (p) => (p.kind === 'about' ? [6, 20] : [6, 26]),
  asksPoliteness: (p) => p.kind !== 'about',
};

export const FAMILIES: readonly Family[] = [list, filter, fact, reading, arithmetic, sort, reverse, count, rewrite, polite, classify, sentiment, compare, write];

export function familyByName(name: string): Family {
  const f = FAMILIES.find((x) => x.name === name);
  if (!f) throw new Error(`unknown task family "${name}"; known: ${FAMILIES.map((x) => x.name).join(', ')}`);
  return f;
}

export type { Template };
