// Chooses the tilt of the bundled surrogate gamed rows (ts/eval/data/alpaca_eval_2/gamed_calibration.json):
// p' = sigmoid(logit(p) + alpha tanh(std_delta_len)), the alpha on a grid that minimizes the mean absolute
// LC error against the published board on the BUILD models of bench/_lc.ts (never the held-out or test
// models). One parameter: the surrogate pins the shared length slope too weakly (every refit lands above
// the board). A second, difficulty tilt (beta) only slides along a flat valley of the same error, so it
// stays 0. Not a bench (the runner skips files starting with "_").
// Usage: npx tsx bench/_lc-calibrate.ts --annotations-dir DIR [--write]
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { alpacaEval2, lengthControlledWinRate, lookupDifficulty, tiltGamed } from '../ts/eval/index.ts';
import { annotationsDir, load, split } from './_lc.ts';

const dir = annotationsDir();
const { board, build, heldOut, files } = split(dir);
if (build.length < 5) throw new Error(`${dir}: only ${build.length} build models; pass --annotations-dir with alpaca_eval's AlpacaEval 2 annotation files`);
const ae = alpacaEval2();
const data = build.map((m) => {
  const a = load(files.get(m)!, m);
  return { m, a, d: lookupDifficulty(ae.difficulty, a.keys, 'position').values, pub: board.get(m)!.length_controlled_winrate! };
});
const errors = (alpha: number, beta: number) => {
  const gamed = tiltGamed(ae.surrogate, alpha, beta);
  return data.map((s) => lengthControlledWinRate({ scores: s.a.scores, referenceLengths: s.a.referenceLengths, modelLengths: s.a.modelLengths, difficulty: s.d, gamed }).length_controlled_winrate - s.pub);
};
const meanAbs = (e: number[]) => e.reduce((s, v) => s + Math.abs(v), 0) / e.length;
const before = errors(0, 0);
let best = { alpha: 0, beta: 0, err: meanAbs(before), max: Math.max(...before.map(Math.abs)) };
for (let i = 0; i <= 16; i++) {
  const alpha = 0.1 + 0.025 * i;
  const e = errors(alpha, 0);
  const err = meanAbs(e);
  console.error(`alpha ${alpha.toFixed(3)}: build mean |error| ${err.toFixed(4)}, max ${Math.max(...e.map(Math.abs)).toFixed(4)}`);
  if (err < best.err) best = { alpha: Number(alpha.toFixed(3)), beta: 0, err, max: Math.max(...e.map(Math.abs)) };
}
const note =
  `chosen by bench/_lc-calibrate.ts on ${build.length} build models (even positions of the sorted eligible names; held out: ${heldOut.length}): ` +
  `build mean |LC - published| ${meanAbs(before).toFixed(3)} -> ${best.err.toFixed(3)}, max ${Math.max(...before.map(Math.abs)).toFixed(3)} -> ${best.max.toFixed(3)}; build models: ${build.join(', ')}`;
console.log(JSON.stringify({ alpha: best.alpha, beta: best.beta, note }, null, 2));
if (process.argv.includes('--write')) {
  const path = fileURLToPath(new URL('../ts/eval/data/alpaca_eval_2/gamed_calibration.json', import.meta.url));
  writeFileSync(path, `${JSON.stringify({ alpha: best.alpha, beta: best.beta, note }, null, 2)}\n`);
  console.error(`wrote ${path}`);
}
