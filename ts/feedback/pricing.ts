// Dollar prices of chat-completion models, per million tokens (prompt, completion), for cost accounting.
// List prices as published by the providers; models are matched by the longest known prefix of the name.
// Override or extend with the environment variable FARM_PRICES='{"my-model":{"prompt":1,"completion":2}}'
// or the `price` option of an HTTP judge.

export interface Price {
  /** $ per 1M prompt tokens. */
  prompt: number;
  /** $ per 1M completion tokens. */
  completion: number;
}

export const PRICE_TABLE: Record<string, Price> = {
  'gpt-4o-mini': { prompt: 0.15, completion: 0.6 },
  'gpt-4o': { prompt: 2.5, completion: 10 },
  'gpt-4.1-nano': { prompt: 0.1, completion: 0.4 },
  'gpt-4.1-mini': { prompt: 0.4, completion: 1.6 },
  'gpt-4.1': { prompt: 2, completion: 8 },
  'gpt-4-turbo': { prompt: 10, completion: 30 },
  'gpt-4-1106-preview': { prompt: 10, completion: 30 },
  'gpt-4-0125-preview': { prompt: 10, completion: 30 },
  'gpt-4-32k': { prompt: 60, completion: 120 },
  'gpt-4': { prompt: 30, completion: 60 },
  'gpt-3.5-turbo-0301': { prompt: 2, completion: 2 },
  'gpt-3.5-turbo': { prompt: 0.5, completion: 1.5 },
  'text-davinci-003': { prompt: 20, completion: 20 },
  'o1-mini': { prompt: 3, completion: 12 },
  'o3-mini': { prompt: 1.1, completion: 4.4 },
  'claude-3-5-sonnet': { prompt: 3, completion: 15 },
  'claude-3-haiku': { prompt: 0.25, completion: 1.25 },
  'claude-3-opus': { prompt: 15, completion: 75 },
};

function envPrices(): Record<string, Price> {
  const raw = process.env.FARM_PRICES;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('FARM_PRICES is not valid JSON (expected {"model":{"prompt":N,"completion":N}})');
  }
  const out: Record<string, Price> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    const p = v as Partial<Price>;
    if (typeof p?.prompt !== 'number' || typeof p?.completion !== 'number') throw new Error(`FARM_PRICES["${k}"] needs numeric prompt and completion`);
    out[k] = { prompt: p.prompt, completion: p.completion };
  }
  return out;
}

/** The price of a model: exact name, else the longest known prefix; undefined when unknown. */
export function lookupPrice(model: string): Price | undefined {
  const table = { ...PRICE_TABLE, ...envPrices() };
  if (table[model]) return table[model];
  const bare = model.includes('/') ? model.slice(model.lastIndexOf('/') + 1) : model;
  let best: string | undefined;
  for (const k of Object.keys(table)) if (bare.startsWith(k) && (!best || k.length > best.length)) best = k;
  return best ? table[best] : undefined;
}

/** Dollars for one request. */
export function costOf(price: Price | undefined, promptTokens: number, completionTokens: number): number {
  if (!price) return 0;
  return (promptTokens * price.prompt + completionTokens * price.completion) / 1e6;
}
