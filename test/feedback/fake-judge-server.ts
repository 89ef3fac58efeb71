// A real OpenAI-compatible chat-completions server on 127.0.0.1 for the HTTP judge tests (not a mocked fetch).
// It judges like a sensible model would: the output containing "GOOD" wins. Tests steer failures through
// `behave`, which sees every request before the default answer is built.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  n: number;
  body: any;
  authorization: string | undefined;
  /** Pairs in the request: [output (a), output (b)] texts. */
  pairs: Array<[string, string]>;
}

export interface Behaviour {
  /** Return a response to send instead of the default one, or undefined for the default. */
  (req: SeenRequest): { status?: number; body?: string; headers?: Record<string, string>; delayMs?: number; answers?: string[] } | undefined;
}

export interface FakeServer {
  url: string;
  requests: SeenRequest[];
  maxInFlight: number;
  /** Requests the server is still working on (slow answers outlive the client's timeout). */
  inFlight(): number;
  behave: Behaviour | null;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Splits a rendered prompt back into its (a)/(b) outputs. */
export function pairsOf(user: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const re = /Output \(a\):\n([\s\S]*?)\n\nOutput \(b\):\n([\s\S]*?)(?=\n\n### Request|\n\nFor every request|\n\nWhich output|$)/g;
  for (const m of user.matchAll(re)) out.push([m[1], m[2]]);
  return out;
}

export function defaultAnswers(pairs: Array<[string, string]>): string[] {
  return pairs.map(([a, b], i) => `Request ${i + 1}: Output (${a.includes('GOOD') && !b.includes('GOOD') ? 'a' : 'b'})`);
}

export async function startFakeServer(): Promise<FakeServer> {
  let inFlight = 0;
  const state: FakeServer = { url: '', requests: [], maxInFlight: 0, inFlight: () => inFlight, behave: null, close: async () => {} };
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    try {
      const text = await readBody(req);
      let body: any = null;
      try {
        body = JSON.parse(text);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json"}}');
        return;
      }
      const user: string = body?.messages?.find((m: any) => m.role === 'user')?.content ?? '';
      const seen: SeenRequest = { n: state.requests.length + 1, body, authorization: req.headers.authorization, pairs: pairsOf(user) };
      state.requests.push(seen);
      const custom = state.behave?.(seen);
      if (custom?.delayMs) await new Promise((r) => setTimeout(r, custom.delayMs));
      if (custom?.status && custom.status !== 200) {
        res.writeHead(custom.status, { 'content-type': 'application/json', ...(custom.headers ?? {}) }).end(custom.body ?? '{"error":{"message":"failure"}}');
        return;
      }
      if (custom?.body) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(custom.body);
        return;
      }
      const answers = custom?.answers ?? defaultAnswers(seen.pairs);
      const content = answers.join('\n');
      const payload: any = {
        id: `cmpl-${seen.n}`,
        object: 'chat.completion',
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: Math.ceil(user.length / 4), completion_tokens: 6 * answers.length, total_tokens: Math.ceil(user.length / 4) + 6 * answers.length },
      };
      if (body.logprobs) {
        // "Output (" then the letter with alternatives: P(a) = 0.3, P(b) = 0.7 unless the answer is (a).
        const letter = /Output \(([ab])\)/.exec(content)?.[1] ?? 'b';
        const pa = letter === 'a' ? 0.8 : 0.3;
        payload.choices[0].logprobs = {
          content: [
            { token: 'Output', logprob: -0.01, top_logprobs: [] },
            { token: ' (', logprob: -0.01, top_logprobs: [] },
            { token: letter, logprob: Math.log(letter === 'a' ? pa : 1 - pa), top_logprobs: [{ token: 'a', logprob: Math.log(pa) }, { token: 'b', logprob: Math.log(1 - pa) }] },
            { token: ')', logprob: -0.01, top_logprobs: [] },
          ],
        };
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    } finally {
      inFlight -= 1;
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}/v1`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

/** A URL on 127.0.0.1 where nothing listens (a port just released). */
export async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/v1`;
}
