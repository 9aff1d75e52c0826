/** Timing a command with GNU time (`/usr/bin/time -v`): wall, CPU and peak RSS. */
import { execFile } from 'node:child_process';

export interface Measure {
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  rssMiB: number;
  /** bytes the process tree read from / wrote to the storage layer (rusage blocks × 512; Linux
   *  counts writes when pages are dirtied, so writes flushed after exit are included) */
  diskReadBytes?: number;
  diskWriteBytes?: number;
}

/** Reads the figures out of `/usr/bin/time -v`'s report. */
export function parseTime(stderr: string): Measure {
  const get = (re: RegExp) => {
    const m = re.exec(stderr);
    if (!m) throw new Error(`no ${re} in /usr/bin/time output:\n${stderr.slice(-2000)}`);
    return m[1]!;
  };
  let wallS = 0;
  for (const x of get(/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/).split(':').map(Number)) wallS = wallS * 60 + x;
  const userS = Number(get(/User time \(seconds\): ([\d.]+)/));
  const sysS = Number(get(/System time \(seconds\): ([\d.]+)/));
  const blocks = (re: RegExp) => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) * 512 : undefined;
  };
  return {
    wallS,
    userS,
    sysS,
    cpuS: userS + sysS,
    rssMiB: Number(get(/Maximum resident set size \(kbytes\): (\d+)/)) / 1024,
    diskReadBytes: blocks(/File system inputs: (\d+)/),
    diskWriteBytes: blocks(/File system outputs: (\d+)/),
  };
}

/** Runs cmd under `/usr/bin/time -v`; rejects with the tail of stderr when it fails. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<Measure> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/time', ['-v', cmd, ...args], { env, cwd, maxBuffer: 256 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-3000)}`));
      else resolve(parseTime(stderr));
    });
  });
}
