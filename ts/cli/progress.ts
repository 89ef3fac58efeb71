// Progress for long commands: a bar with ETA and live metrics on a terminal, one log line every N steps (and
// at the end) when output is not a terminal (CI, `| tee`). Everything goes to stderr; stdout keeps results.
import cliProgress from 'cli-progress';
import type { Progress } from '../methods/jobs.ts';

export interface ProgressOptions {
  /** false: only log lines and warnings (--no-progress). */
  bar?: boolean;
  /**
   * A line every this many steps when not on a terminal (TRL's logging_steps). Without it, lines are timed:
   * the first after 3 s, then one every `seconds`, and a last one at the end when any was printed.
   */
  every?: number;
  /** Seconds between timed lines (default 10). */
  seconds?: number;
  /** Force the mode (tests); default: the bar only when stdout and stderr are both terminals (not under CI or `| tee`). */
  tty?: boolean;
}

const fmtNum = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3));
export function fmtTime(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
const fmtMetrics = (m: Record<string, number> = {}) => Object.entries(m).map(([k, v]) => `${k} ${fmtNum(v)}`).join(', ');

export function terminalProgress(o: ProgressOptions = {}): Progress {
  const tty = o.tty ?? Boolean(process.stderr.isTTY && process.stdout.isTTY);
  const timed = o.every === undefined;
  const every = o.every ?? Infinity;
  const interval = (o.seconds ?? 10) * 1000;
  let bar: InstanceType<typeof cliProgress.SingleBar> | null = null;
  let label = '', total = 0, t0 = 0, lastLine = 0, lastLineAt = 0, lines = 0, done = 0, lastMetrics: Record<string, number> = {};
  const write = (line: string) => {
    if (bar) { bar.stop(); bar = null; process.stderr.write(`farm: ${line}\n`); restart(); return; }
    process.stderr.write(`farm: ${line}\n`);
  };
  const restart = () => {
    if (!tty || o.bar === false || !label) return;
    bar = new cliProgress.SingleBar({
      format: `farm: ${label} [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted} | {metrics}`,
      hideCursor: true, stream: process.stderr, etaBuffer: 20, clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, done, { metrics: fmtMetrics(lastMetrics) });
  };
  const line = () => {
    const secs = (performance.now() - t0) / 1000;
    const eta = done > 0 ? (secs / done) * (total - done) : NaN;
    process.stderr.write(`farm: ${label} ${done}/${total} (${Math.round((100 * done) / Math.max(1, total))}%), ${fmtTime(secs)} elapsed, ETA ${fmtTime(eta)}${Object.keys(lastMetrics).length ? `, ${fmtMetrics(lastMetrics)}` : ''}\n`);
  };
  return {
    start(l, n) {
      this.stop();
      label = l; total = n; done = 0; t0 = performance.now(); lastLine = 0; lastLineAt = t0 - interval + 3000; lines = 0; lastMetrics = {};
      restart();
    },
    update(d, metrics) {
      if (!label) return;
      done = Math.min(d, total);
      if (metrics) lastMetrics = metrics;
      if (bar) { bar.update(done, { metrics: fmtMetrics(lastMetrics) }); return; }
      const now = performance.now();
      const due = done - lastLine >= every || (timed && now - lastLineAt >= interval)
        || (done === total && (!timed || lines > 0 || now - t0 >= 3000));
      if (due && !(done === lastLine && lines > 0)) { lastLine = done; lastLineAt = now; lines++; line(); }
    },
    stop() {
      if (bar) { bar.stop(); bar = null; }
      label = '';
    },
    log: write,
    warn: (msg) => write(`warning: ${msg}`),
  };
}
