import cliProgress from 'cli-progress';
import type { Output } from './output.js';

/**
 * Progress of a command that works in phases (check, prune, repair): a bar per phase on a
 * terminal, the phase names with -v elsewhere, nothing with --json or -q. Call the returned
 * `stop` when done.
 */
export function phaseProgress(out: Output): { update: (phase: string, done: number, total: number) => void; stop: () => void } {
  const tty = !!process.stderr.isTTY && !out.json && !out.opts.quiet;
  let bar: cliProgress.SingleBar | null = null;
  let current = '';
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const update = (phase: string, done: number, total: number) => {
    if (phase !== current) {
      stop();
      current = phase;
      out.debug(`${phase}: ${total} to do`);
      if (tty && total > 1) {
        bar = new cliProgress.SingleBar(
          { stream: process.stderr, format: `${phase.padEnd(10)} {bar} {value}/{total} | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
    }
    bar?.update(done);
  };
  return { update, stop };
}
