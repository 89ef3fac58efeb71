// The generated knowledge base: fixed categories of everyday words (so that every word belongs to exactly
// one category) and a seeded population of people and towns whose facts exist only in this world.
import { Rng } from './rng.ts';

export interface Category {
  name: string; // singular, as used in answers: "fruit"
  plural: string; // as used in instructions: "fruits"
  members: readonly string[];
}

export const CATEGORIES: readonly Category[] = [
  { name: 'fruit', plural: 'fruits', members: ['apple', 'banana', 'cherry', 'grape', 'lemon', 'mango', 'peach', 'pear', 'plum', 'melon', 'kiwi', 'fig'] },
  { name: 'vegetable', plural: 'vegetables', members: ['carrot', 'potato', 'onion', 'pea', 'bean', 'cabbage', 'pepper', 'lettuce', 'spinach', 'radish', 'leek', 'corn'] },
  { name: 'animal', plural: 'animals', members: ['cow', 'horse', 'pig', 'sheep', 'goat', 'dog', 'cat', 'rabbit', 'fox', 'mouse', 'deer', 'bear'] },
  { name: 'bird', plural: 'birds', members: ['duck', 'hen', 'owl', 'crow', 'robin', 'swan', 'goose', 'eagle', 'sparrow', 'parrot'] },
  { name: 'color', plural: 'colors', members: ['red', 'blue', 'green', 'yellow', 'purple', 'white', 'black', 'brown', 'pink', 'gray'] },
  { name: 'tool', plural: 'tools', members: ['hammer', 'saw', 'shovel', 'rake', 'axe', 'drill', 'wrench', 'ladder', 'bucket', 'knife'] },
  { name: 'drink', plural: 'drinks', members: ['water', 'milk', 'tea', 'coffee', 'juice', 'cider', 'cocoa', 'lemonade'] },
  { name: 'flower', plural: 'flowers', members: ['rose', 'tulip', 'daisy', 'lily', 'poppy', 'iris', 'orchid', 'sunflower'] },
];

export const JOBS = ['farmer', 'baker', 'teacher', 'doctor', 'miller', 'builder', 'fisher', 'painter', 'nurse', 'cook', 'tailor', 'smith'] as const;
export const REGIONS = ['north', 'south', 'east', 'west'] as const;
const TOWN_NAMES = ['Oakdale', 'Pinehill', 'Riverton', 'Maplewood', 'Stonebridge', 'Fairview', 'Brookfield', 'Elmstead', 'Ashford', 'Willowby'];
const PERSON_NAMES = [
  'Mia', 'Tom', 'Ava', 'Leo', 'Emma', 'Noah', 'Lily', 'Sam', 'Zoe', 'Ben', 'Ella', 'Max', 'Ruby', 'Jack', 'Nora', 'Owen',
  'Ivy', 'Finn', 'Rosa', 'Luke', 'Anna', 'Eli', 'Cora', 'Adam', 'Lucy', 'Ian', 'Maya', 'Theo', 'Grace', 'Hugo', 'Jade', 'Omar',
  'Tess', 'Paul', 'Vera', 'Carl', 'Nina', 'Dan', 'Iris', 'Ruth',
].filter((n) => n !== 'Iris'); // "iris" is a flower

/** Everyday words that belong to no category: more material for spelling and counting tasks. */
export const EXTRA_WORDS = [
  'farm', 'river', 'house', 'garden', 'market', 'bread', 'soup', 'field', 'barn', 'fence', 'road', 'bridge', 'window',
  'table', 'chair', 'basket', 'winter', 'summer', 'spring', 'autumn', 'morning', 'evening', 'cloud', 'rain', 'snow',
  'stone', 'forest', 'hill', 'village', 'school', 'friend', 'letter', 'picnic', 'dinner', 'kitchen', 'candle',
  'blanket', 'pocket', 'button', 'ribbon', 'pillow', 'honey', 'butter', 'cheese', 'garlic', 'pepper', 'sugar', 'salt',
];

export interface Person {
  name: string;
  town: string;
  job: string;
  pet: string; // an animal or bird
  fruit: string; // favorite fruit
  age: number;
}

export interface Town {
  name: string;
  region: string;
  crop: string; // a fruit or vegetable the town is known for
}

export interface KnowledgeBase {
  categories: readonly Category[];
  people: readonly Person[];
  towns: readonly Town[];
  /** word -> its category name */
  categoryOf: ReadonlyMap<string, string>;
  personByName: ReadonlyMap<string, Person>;
  townByName: ReadonlyMap<string, Town>;
  categoryByPlural: ReadonlyMap<string, Category>;
  categoryByName: ReadonlyMap<string, Category>;
  /** every category member, sorted */
  allWords: readonly string[];
  /** category members, jobs and extra everyday words, sorted and distinct (for spelling and counting) */
  vocabulary: readonly string[];
}

export interface KnowledgeBaseOptions {
  people?: number;
  towns?: number;
}

export function generateKnowledgeBase(seed: number, opts: KnowledgeBaseOptions = {}): KnowledgeBase {
  const rng = Rng.from(seed, 'kb');
  const nTowns = Math.min(opts.towns ?? 8, TOWN_NAMES.length);
  const nPeople = Math.min(opts.people ?? 24, PERSON_NAMES.length);
  const cat = (n: string) => CATEGORIES.find((c) => c.name === n)!;
  const crops = [...cat('fruit').members, ...cat('vegetable').members];
  const pets = [...cat('animal').members.slice(0, 8), ...cat('bird').members.slice(0, 6)];
  const towns: Town[] = rng.sample(TOWN_NAMES, nTowns).map((name) => ({ name, region: rng.pick(REGIONS), crop: rng.pick(crops) }));
  const people: Person[] = rng.sample(PERSON_NAMES, nPeople).map((name) => ({
    name,
    town: rng.pick(towns).name,
    job: rng.pick(JOBS),
    pet: rng.pick(pets),
    fruit: rng.pick(cat('fruit').members),
    age: rng.range(18, 79),
  }));
  const categoryOf = new Map<string, string>();
  for (const c of CATEGORIES) for (const m of c.members) categoryOf.set(m, c.name);
  return {
    categories: CATEGORIES,
    people,
    towns,
    categoryOf,
    personByName: new Map(people.map((p) => [p.name, p])),
    townByName: new Map(towns.map((t) => [t.name, t])),
    categoryByPlural: new Map(CATEGORIES.map((c) => [c.plural, c])),
    categoryByName: new Map(CATEGORIES.map((c) => [c.name, c])),
    allWords: [...categoryOf.keys()].sort(),
    vocabulary: [...new Set([...categoryOf.keys(), ...JOBS, ...EXTRA_WORDS])].sort(),
  };
}

export function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];
