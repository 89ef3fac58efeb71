// RLP-SPG's semantic equivalence on the farm: two outputs are equivalent when the world's checker gives them
// the same verdict on the answer (correctness and completeness) and they state the same answer: the same set of
// numbers (digits or number words) and knowledge-base words (members of categories, people, towns, jobs,
// regions) beyond those the instruction and input already mention. Style (format, verbosity, politeness,
// fluency, repetition, filler sentences) does not count: "the same answer in other words". Instructions the
// world does not know fall back to normalized text equality.
import type { World } from '../world/index.ts';
import { numbers } from '../world/text.ts';
import { normalizedTextEquivalence, type Equivalence } from '../methods/rlp.ts';

const words = (s: string) => s.toLowerCase().match(/[a-z]+/g) ?? [];

/** The equivalence of the farm world `world` (see the file comment). */
export function farmEquivalence(world: World): Equivalence {
  const kbWords = new Set<string>([
    ...world.kb.categoryOf.keys(), ...[...world.kb.personByName.keys()].map((x) => x.toLowerCase()),
    ...world.kb.towns.map((t) => t.name.toLowerCase()), ...world.kb.people.map((p) => p.job), ...world.kb.towns.map((t) => t.region),
  ]);
  const keys = new Map<string, string>();
  const keyOf = (instruction: string, input: string, output: string): string | null => {
    const id = `${instruction}\u0000${input}\u0000${output}`;
    const hit = keys.get(id);
    if (hit !== undefined) return hit;
    const task = world.parse(instruction, input);
    if (!task) return null;
    const g = world.gradeTask(task, output);
    const asked = new Set([...words(`${instruction} ${input}`), ...numbers(`${instruction} ${input}`).map(String)]);
    const answer = new Set([...words(output).filter((x) => kbWords.has(x)), ...numbers(output).map(String)].filter((x) => !asked.has(x)));
    const key = JSON.stringify([g.features.correctness.toFixed(3), g.features.completeness.toFixed(3), [...answer].sort()]);
    if (keys.size > 100_000) keys.clear();
    keys.set(id, key);
    return key;
  };
  return (instruction, input, a, b) => {
    const ka = keyOf(instruction, input, a);
    if (ka === null) return normalizedTextEquivalence(instruction, input, a, b);
    return ka === keyOf(instruction, input, b);
  };
}
