// RLP-SPG's equivalence on the farm: the same answer in other words is equivalent, a different answer is not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWorld, Rng } from '../../ts/world/index.ts';
import { farmEquivalence } from '../../ts/experiments/equivalence.ts';
import { groupOutputs } from '../../ts/methods/rlp.ts';

const world = createWorld({ seed: 1 });
const eq = farmEquivalence(world);

test('the same answer in other words is equivalent; another answer, a missing one or a wrong order is not', () => {
  const rng = new Rng(5);
  const arith = world.sampleTask(rng, 'arithmetic');
  const [a, b] = (arith.params as { nums: number[] }).nums;
  const op = /plus|add|sum/.test(arith.instruction) ? a + b : /minus|subtract/.test(arith.instruction) ? a - b : a * b;
  const same = (x: string, y: string) => eq(arith.instruction, arith.input, x, y);
  assert.ok(same(`The answer is ${op}.`, `${op}`), 'answer in a sentence vs bare');
  assert.ok(same(`${a} and ${b} give ${op}. I hope this helps!`, `The result is ${op}.`), 'filler and restated operands do not count');
  assert.not.ok(same(`The answer is ${op}.`, `The answer is ${op + 1}.`), 'off by one');
  assert.not.ok(same(`The answer is ${op}.`, 'To solve this, add the two numbers.'), 'no answer');
  const sort = world.parse('Sort these numbers from smallest to largest.', '68, 38, 46, 97, 64')!;
  const s = (x: string, y: string) => eq(sort.instruction, sort.input, x, y);
  assert.ok(s('38, 46, 64, 68, 97', 'The sorted list is 38, 46, 64, 68, 97.'));
  assert.not.ok(s('38, 46, 64, 68, 97', '38, 46, 68, 64, 97'), 'a different order');
  // groups of a realistic set of outputs
  const outs = ['38, 46, 64, 68, 97', 'Sorted: 38, 46, 64, 68, 97', '46, 68, 97.', '38, 46, 68, 64, 97', 'The sorted list is 38, 46, 64, 68, 97.'];
  assert.equal(groupOutputs(outs, (x, y) => s(x, y)), [[0, 1, 4], [2], [3]]);
});

test('instructions the world does not know fall back to normalized text equality', () => {
  assert.ok(eq('Write a haiku about the moon.', '', 'Moon, bright!', 'moon bright'));
  assert.not.ok(eq('Write a haiku about the moon.', '', 'Moon, bright!', 'moon light'));
});

test.run();
