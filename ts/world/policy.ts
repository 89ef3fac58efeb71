// Programmatic responders of controllable quality: the demonstrator (writes the SFT demonstrations, the
// role of Alpaca's davinci-generated outputs) and the reference policy (the Davinci-003 role in evaluation).
import type { Flaws } from './family.ts';
import { Rng, hashParts } from './rng.ts';
import { FILLER_SENTENCES, sentences } from './text.ts';
import type { Task, World } from './index.ts';

export interface ResponderOptions {
  /** names the responder in records (the `generator` field) */
  name?: string;
  seed?: number;
  /** 1: no mistakes; 0: mistakes everywhere. Scales every mistake rate below. */
  quality?: number;
  /** 0..1: how often a friendly extra sentence is added (longer, not worse by much) */
  verbosity?: number;
  /** share of bare answers without a sentence around them */
  terseness?: number;
  /** mistake rates at quality 0 (each scaled by 1 - quality) */
  rates?: Partial<MistakeRates>;
}

export interface MistakeRates {
  wrong: number;
  offByOne: number;
  missing: number;
  repetition: number;
  rambling: number;
  vague: number;
}

export const DEFAULT_RATES: Readonly<MistakeRates> = { wrong: 0.5, offByOne: 0.25, missing: 0.3, repetition: 0.3, rambling: 0.3, vague: 0.6 };

/** Demonstrator: decent but imperfect, like Alpaca's generated demonstrations. */
export const DEMONSTRATOR: Readonly<ResponderOptions> = {
  name: 'farm-demonstrator', quality: 0.72, verbosity: 0.3, terseness: 0.3,
  // sloppy in style as Alpaca's generated demonstrations were: padding (25%) and vague answers (28%) that
  // readers notice, so that a model trained on them leaves room for feedback to improve on
  rates: { rambling: 0.9, vague: 1 },
};
/**
 * Reference policy (the text-davinci-003 role in evaluation): chattier than the demonstrator and often wrong.
 * Calibrated so that the trained SFT model of the quick preset wins about 40% against it under the human
 * panel, as AlpacaFarm's SFT 10k did against Davinci-003 (44.3%): the demonstrator itself is far better than
 * what a farm-size model learns from it, so a reference of the demonstrator's quality would put every method
 * near 15% and compress their differences.
 */
export const REFERENCE: Readonly<ResponderOptions> = { name: 'farm-reference', quality: 0.3, verbosity: 0.5, terseness: 0.3, rates: { wrong: 0.8 } };

export interface Responder {
  readonly name: string;
  readonly options: Readonly<Required<Omit<ResponderOptions, 'rates'>>> & { rates: MistakeRates };
  /** A response; `sample` picks a different draw for the same prompt (0 by default). */
  respond(instruction: string, input: string, sample?: number): string;
  respondTask(task: Task, sample?: number): string;
}

const FRIENDLY = ['I hope this helps!', 'Let me know if you need anything else.', 'Have a nice day!', 'I hope that answers your question.'];
const RAMBLE = FILLER_SENTENCES;
const UNKNOWN = ['I am not sure how to answer that.', 'I do not know.'];

function addSentence(text: string, extra: string): string {
  return text.includes('\n') ? `${text}\n${extra}` : `${text} ${extra}`;
}

function repeatPart(text: string, rng: Rng): string {
  if (text.includes('\n')) {
    const lines = text.split('\n');
    const i = rng.int(lines.length);
    return [...lines.slice(0, i + 1), lines[i], ...lines.slice(i + 1)].join('\n');
  }
  const s = sentences(text);
  if (s.length > 1 || /[.!?]$/.test(text)) return `${text} ${rng.pick(s)}`;
  return `${text}, ${text}`;
}

export function createResponder(world: World, opts: ResponderOptions = {}): Responder {
  const options = {
    name: opts.name ?? 'farm-responder',
    seed: opts.seed ?? 0,
    quality: Math.min(1, Math.max(0, opts.quality ?? 0.75)),
    verbosity: Math.min(1, Math.max(0, opts.verbosity ?? 0.3)),
    terseness: Math.min(1, Math.max(0, opts.terseness ?? 0.2)),
    rates: { ...DEFAULT_RATES, ...opts.rates },
  };
  const err = 1 - options.quality;
  const r = options.rates;
  const respondTask = (task: Task, sample = 0): string => {
    const rng = new Rng(hashParts(world.seed, 'respond', options.name, options.seed, task.instruction, task.input, sample));
    const flaws: Flaws = {
      wrong: rng.chance(r.wrong * err),
      offByOne: rng.chance(r.offByOne * err),
      missing: rng.chance(r.missing * err),
      terse: rng.chance(options.terseness),
      vague: rng.chance(r.vague * err),
    };
    let text = world.family(task.family).respond(task.params, world.kb, rng, flaws);
    if (rng.chance(r.rambling * err)) for (const s of rng.sample(RAMBLE, rng.range(2, 3))) text = addSentence(text, s);
    if (rng.chance(options.verbosity * 0.5)) text = addSentence(text, rng.pick(FRIENDLY));
    if (rng.chance(r.repetition * err)) text = repeatPart(text, rng);
    return text;
  };
  return {
    name: options.name,
    options,
    respondTask,
    respond(instruction, input, sample = 0) {
      const task = world.parse(instruction, input);
      if (!task) return new Rng(hashParts(world.seed, 'unknown', options.seed, instruction, input, sample)).pick(UNKNOWN);
      return respondTask(task, sample);
    },
  };
}
