// Gold checkers on hand-written responses: right, wrong and partly right answers for every family.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWorld, FAMILIES, Rng } from '../../ts/world/index.ts';

const world = createWorld({ seed: 1 });
const g = (instruction: string, input: string, output: string) => world.grade(instruction, input, output);
const corr = (instruction: string, input: string, output: string) => g(instruction, input, output).features.correctness;
const person = world.kb.people[0];
const other = world.kb.people.find((p) => p.age !== person.age && p.town !== person.town && p.job !== person.job)!;

test('arithmetic is exact, off-by-one gets a little credit', () => {
  assert.is(corr('What is 17 plus 25?', '', '17 plus 25 is 42.'), 1);
  assert.is(corr('What is 17 plus 25?', '', '42'), 1);
  assert.is(corr('What is 17 plus 25?', '', '17 plus 25 is 43.'), 0.25);
  assert.is(corr('What is 17 plus 25?', '', 'The answer is 50.'), 0);
  assert.is(corr('Subtract 9 from 30.', '', '21'), 1);
  assert.is(corr('Multiply 12 by 7.', '', '12 x 7 = 84.'), 1);
  assert.is(corr('Add these numbers.', '12, 7, 30', 'The sum is 49.'), 1);
  assert.is(corr('Add these numbers.', '12, 7, 30', 'To find the sum, add 12, 7 and 30 together.'), 0);
  const only = g('What is 3 plus 4? Answer with a number only.', '', 'The answer is 7.');
  assert.is(only.features.correctness, 1);
  assert.ok(only.features.format < 1, 'number-only format violated');
  assert.is(g('What is 3 plus 4? Answer with a number only.', '', '7').features.format, 1);
});

test('sorting is exact; partial order and missing items get partial credit in order', () => {
  const ins = 'Sort these numbers from smallest to largest.';
  const inp = '5, 12, 3, 9';
  assert.is(corr(ins, inp, '3, 5, 9, 12'), 1);
  assert.is(corr(ins, inp, 'The sorted list is 3, 5, 9, 12.'), 1);
  const swapped = corr(ins, inp, '3, 9, 5, 12');
  const missing = corr(ins, inp, '3, 5, 12');
  const reversed = corr(ins, inp, '12, 9, 5, 3');
  assert.ok(swapped > reversed && swapped < 1, `swap ${swapped} vs reversed ${reversed}`);
  assert.ok(missing > 0 && missing < 1);
  assert.is(reversed, 0);
  assert.is(corr('Order these numbers from largest to smallest.', inp, '12, 9, 5, 3'), 1);
  assert.is(corr('Sort the following words alphabetically.', 'pear, apple, fox', 'apple, fox, pear'), 1);
  assert.ok(corr('Sort the following words alphabetically.', 'pear, apple, fox', 'apple, pear, fox') < 1);
});

test('spelling backwards is exact, near misses get partial credit', () => {
  assert.is(corr('Spell the word apple backwards.', '', 'elppa'), 1);
  assert.is(corr('Spell the word apple backwards.', '', 'Apple spelled backwards is elppa.'), 1);
  assert.is(corr('Reverse the letters of the word below.', 'garden', 'nedrag'), 1);
  const near = corr('Spell the word apple backwards.', '', 'elpa');
  assert.ok(near > 0 && near < 1);
  assert.is(corr('Spell the word apple backwards.', '', 'apple'), 0);
});

test('counting', () => {
  assert.is(corr('How many letters are in the word banana?', '', 'Banana has 6 letters.'), 1);
  assert.is(corr('How many letters are in the word banana?', '', 'six'), 1);
  assert.is(corr('How many letters are in the word banana?', '', '7'), 0.25);
  assert.is(corr('How many times does the letter a appear in banana?', '', 'It appears 3 times.'), 1);
  assert.is(corr('How many words are in this sentence?', 'The red fox eats a plum.', 'There are 6 words.'), 1);
  assert.is(g('How many words are in this sentence?', 'The red fox eats a plum.', 'The sentence has several words.').features.completeness, 0);
});

test('lists: wrong items and missing items lower the right features', () => {
  const ins = 'Name three fruits.';
  const good = g(ins, '', 'Here are three fruits: apple, pear and plum.');
  assert.is(good.features.correctness, 1);
  assert.is(good.features.completeness, 1);
  assert.is(g(ins, '', 'Apple, pear and plum.').features.explanation, 0, 'a free-form list that does not say what it lists');
  const wrongItem = g(ins, '', 'Apple, pear and carrot.');
  assert.ok(Math.abs(wrongItem.features.correctness - 2 / 3) < 1e-9);
  const short = g(ins, '', 'Two fruits: apple and pear.');
  assert.is(short.features.correctness, 1);
  assert.ok(Math.abs(short.features.completeness - 2 / 3) < 1e-9);
  assert.ok(g(ins, '', 'Apple, pear, plum and fig.').features.format < 1, 'too many items');
  assert.ok(g(ins, '', 'apple, pear, apple, pear').features.fluency < 1, 'repeated items');
  assert.ok(g('List three tools, separated by commas.', '', 'hammer\nsaw\nrake').features.format < 1);
  assert.is(g('Name three birds, one per line.', '', 'owl\ncrow\nswan').features.format, 1);
  assert.ok(corr('Name two fruits that are not in this list.', 'apple, pear', 'apple, plum') < 1);
  assert.is(corr('Name two fruits that are not in this list.', 'apple, pear', 'plum, fig'), 1);
});

test('filter: precision and recall', () => {
  const ins = 'Which of these are fruits?';
  const inp = 'apple, hammer, pear, cow';
  assert.is(corr(ins, inp, 'apple, pear'), 1);
  const partial = corr(ins, inp, 'apple');
  const extra = corr(ins, inp, 'apple, pear, cow');
  assert.ok(partial > 0 && partial < 1 && extra > 0 && extra < 1);
  assert.is(corr(ins, inp, 'hammer, cow'), 0);
});

test('facts and reading: right value, wrong value, hedging, off-by-one age', () => {
  assert.is(corr(`Where does ${person.name} live?`, '', `${person.name} lives in ${person.town}.`), 1);
  assert.is(corr(`Where does ${person.name} live?`, '', `${other.town}.`), 0);
  assert.ok(corr(`Where does ${person.name} live?`, '', `${person.town} or ${other.town}.`) < 1);
  assert.is(corr(`How old is ${person.name}?`, '', `${person.name} is ${person.age} years old.`), 1);
  assert.is(corr(`How old is ${person.name}?`, '', `${person.age + 1}.`), 0.25);
  assert.is(corr(`What is ${person.name}'s job?`, '', `${person.name} works as a ${person.job}.`), 1);
  assert.is(g(`What is ${person.name}'s job?`, '', `I do not know much about ${person.name}.`).features.completeness, 0);
  const passage = `${person.name} lives in ${person.town}. ${person.name} is ${person.age} years old.`;
  assert.is(corr(`Read the text and answer: where does ${person.name} live?`, passage, `${person.town}.`), 1);
  assert.is(world.parse(`Read the text and answer: where does ${person.name} live?`, `${person.name} lives in Nowhere.`), null, 'a passage that contradicts the world');
});

test('rewrite, polite, classify, sentiment, compare, write', () => {
  assert.is(corr('Rewrite the sentence in upper case.', 'The red fox eats a plum.', 'THE RED FOX EATS A PLUM.'), 1);
  const partCase = corr('Rewrite the sentence in upper case.', 'The red fox eats a plum.', 'THE RED FOX eats A PLUM.');
  assert.ok(partCase > 0 && partCase < 1);
  assert.is(corr('Write this sentence in lower case.', 'The Red Fox eats a Plum.', 'the red fox eats a plum.'), 1);

  const pol = g('Make this request more polite.', 'Give me the hammer.', 'Could you please give me the hammer?');
  assert.is(pol.features.correctness, 1);
  assert.is(pol.features.politeness, 1);
  const rude = g('Make this request more polite.', 'Give me the hammer.', 'Give me the hammer now.');
  assert.ok(rude.features.politeness === 0 && rude.total < pol.total);
  assert.ok(corr('Make this request more polite.', 'Give me the hammer.', 'Could you please give it to me?') < 1, 'lost the object');

  assert.is(corr('Is the carrot a fruit or a vegetable?', '', 'A carrot is a vegetable.'), 1);
  assert.is(corr('Is the carrot a fruit or a vegetable?', '', 'It is a fruit.'), 0);
  assert.is(corr('Classify the item below as fruit, tool or bird.', 'owl', 'Bird.'), 1);
  assert.is(corr('What kind of thing is an owl?', '', 'An owl is a bird.'), 1);

  assert.is(corr('Is the sentiment of this review positive or negative?', 'The soup was awful. I hated it.', 'Negative.'), 1);
  assert.is(corr('Is the sentiment of this review positive or negative?', 'The soup was awful. I hated it.', 'The review is positive.'), 0);

  assert.is(corr('Which number is larger, 34 or 43?', '', '43 is larger than 34.'), 1);
  assert.is(corr('Which number is larger, 34 or 43?', '', '34.'), 0);
  assert.is(corr('Which word is longer, fig or banana?', '', 'The word banana is longer.'), 1);
  const older = person.age > other.age ? person.name : other.name;
  assert.is(corr(`Who is older, ${person.name} or ${other.name}?`, '', `${older} is older.`), 1);

  const greet = g(`Write a greeting for ${person.name}.`, '', `Hello ${person.name}! I hope you are having a wonderful day.`);
  assert.is(greet.features.correctness, 1);
  assert.ok('politeness' in greet.features);
  const wrongName = g(`Write a greeting for ${person.name}.`, '', `Hello ${other.name}! I hope you are having a wonderful day.`);
  assert.ok(wrongName.total < greet.total - 0.2);
  const noName = g(`Write a greeting for ${person.name}.`, '', 'I hope you are having a wonderful day.');
  assert.ok(noName.total < greet.total && noName.total > wrongName.total - 0.2);
  assert.ok(corr(`Write a thank-you note to ${person.name} for the hammer.`, '', `Dear ${person.name}, thank you so much for the hammer.`) === 1);
});

test('better responses score higher: correct > minor flaw > wrong > empty; rambling and repetition cost', () => {
  const ins = 'What is 17 plus 25?';
  const order = ['17 plus 25 is 42.', '17 plus 25 is 42. 17 plus 25 is 42.', '17 plus 25 is 43.', 'The answer is 50.', ''].map((o) => g(ins, '', o).total);
  for (let i = 1; i < order.length; i++) assert.ok(order[i] < order[i - 1], `ordering at ${i}: ${order}`);
  const ramble = g(ins, '', '17 plus 25 is 42. There are many things to think about here. Many people ask about this. Life on the farm is busy in the spring. Some people like to check these things twice.');
  assert.ok(ramble.total < order[0] && ramble.features.verbosity < 1);
});

test('every family: features in [0, 1], a perfect responder scores >= 0.9, generated tasks parse back', () => {
  const rng = new Rng(3);
  const perfect = world.responder({ quality: 1, verbosity: 0, terseness: 0 });
  for (const f of FAMILIES) {
    for (let i = 0; i < 40; i++) {
      const t = world.sampleTask(rng, f.name);
      const back = world.parse(t.instruction, t.input);
      assert.ok(back && back.family === f.name, `${f.name}: ${t.instruction} | ${t.input}`);
      const s = world.gradeTask(t, perfect.respondTask(t, i));
      assert.is(s.task, f.name);
      for (const [k, v] of Object.entries(s.features)) assert.ok(v >= 0 && v <= 1, `${f.name} ${k}=${v}`);
      assert.ok(s.total >= 0.9, `${f.name}: ${JSON.stringify(s)} for ${JSON.stringify(perfect.respondTask(t, i))}`);
    }
  }
});

test.run();
