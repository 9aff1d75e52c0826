/** Printing for commands: human text, JSON for scripts, and quiet mode. */
export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  verbose: number;
}

export class Output {
  constructor(readonly opts: OutputOptions) {}

  get json(): boolean {
    return this.opts.json;
  }

  /** Normal human output (suppressed by -q and by --json). */
  info(line: string): void {
    if (!this.opts.quiet && !this.opts.json) process.stdout.write(line + '\n');
  }

  /** Output that is the command's result (printed even with -q). */
  result(line: string): void {
    process.stdout.write(line + '\n');
  }

  /** Prints a JSON document on stdout. */
  printJson(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }

  /** Diagnostics on stderr, shown with -v. */
  debug(line: string): void {
    if (this.opts.verbose > 0) process.stderr.write(line + '\n');
  }

  warn(line: string): void {
    process.stderr.write(`warning: ${line}\n`);
  }
}

/** Aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [fmt(header), sep, ...rows.map(fmt)].join('\n');
}
