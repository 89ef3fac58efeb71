// `farm report RUN_DIR [--out report.html]`: the self-contained HTML report of a run folder (ts/report), with
// each chart as SVG, PNG and Plotly JSON beside it and a screenshot, drawn by the system's headless Chromium.
import { Command, Option } from 'commander';
import { describeReport, writeReport } from '../../report/index.ts';

export function register(program: Command): void {
  program.command('report')
    .description('a self-contained HTML report of a run folder of farm run, farm validate or a method command (leaderboard, training curves, over-optimization, ranking, judges, sample outputs); opens offline; charts also as SVG/PNG beside it')
    .argument('<run-dir>', 'the run folder (e.g. runs/quick, runs/validate-quick, runs/ppo)')
    .option('--out <file>', 'the HTML file (default RUN_DIR/report.html); charts go to <name>-charts/ beside it, the screenshot to <name>.png')
    .addOption(new Option('--browser <mode>', 'headless Chromium for the SVG/PNG chart files, the screenshot and a check of the page: auto (when one is found), always (fail without one), never').choices(['auto', 'always', 'never']).default('auto'))
    .option('--no-screenshot', 'no full-page screenshot')
    .option('--chromium <path>', 'the Chromium executable (default $FARM_CHROMIUM, else /usr/bin/chromium and the usual places)')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, f: { out?: string; browser: 'auto' | 'always' | 'never'; screenshot: boolean; chromium?: string; json?: boolean }) => {
      const r = await writeReport(dir, { out: f.out, browser: f.browser, screenshot: f.screenshot, chromium: f.chromium ?? null });
      if (f.json) console.log(JSON.stringify(r));
      else for (const line of describeReport(r)) console.log(line);
      const b = r.browser;
      if (b && (b.consoleErrors.length || b.externalRequests.length || b.emptyCharts.length)) {
        process.stderr.write('farm report: the page did not render cleanly in Chromium (see above)\n');
        process.exitCode = 1;
      }
    });
}

/** The end of `farm run` / `farm validate`: the report of their folder, its path printed; a failure only warns. */
export async function reportAtEnd(dir: string, json: boolean): Promise<void> {
  const say = (s: string) => (json ? process.stderr.write(`${s}\n`) : console.log(s));
  try {
    const r = await writeReport(dir, {});
    describeReport(r).forEach((line, i) => say(i === 0 ? `\n${line}` : line));
  } catch (e) {
    process.stderr.write(`farm: the report of ${dir} failed (${(e as Error).message}); \`farm report ${dir}\` retries it\n`);
  }
}
