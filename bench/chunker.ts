/**
 * Chunker throughput from a cold start (fresh process): 1 GiB (or --size MiB) of random data
 * pushed in 8 MiB pieces through one Chunker, MB/s printed per 128 MiB segment, so that a slow
 * warm-up (V8 de-optimising the scan loop while it still lacks type feedback) shows as slow
 * early segments. MB = 10^6 bytes.
 *
 *   npx tsc -p tsconfig.bench.json && node dist-bench/bench/chunker.js [--size MiB]
 *   node --trace-deopt dist-bench/bench/chunker.js --size 256 | grep -c deoptimiz
 */
import { randomBytes } from 'node:crypto';
import { Chunker } from '../src/repo/chunker.js';
import { gearTable } from '../src/repo/keys-derive.js';

const MiB = 1024 * 1024;
const PIECE = 8 * MiB;
const SEGMENT = 128 * MiB;

const sizeArg = process.argv.indexOf('--size');
const total = (sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : 1024) * MiB;
const base = randomBytes(64 * MiB);
const gear = gearTable(randomBytes(32));
const ring = Array.from({ length: 4 }, () => Buffer.allocUnsafe(PIECE));
const chunker = new Chunker(gear);
let chunks = 0;
let done = 0;
let segStart = process.hrtime.bigint();
const t0 = segStart;
const cpu0 = process.cpuUsage();
const segs: string[] = [];
for (let k = 0; done < total; k++) {
  const piece = ring[k % ring.length]!;
  base.copy(piece, 0, (k * PIECE) % base.length, (k * PIECE) % base.length + PIECE);
  piece[0] = k & 0xff; // every piece differs a little
  chunks += chunker.push(piece).length;
  done += PIECE;
  if (done % SEGMENT === 0) {
    const now = process.hrtime.bigint();
    segs.push((SEGMENT / (Number(now - segStart) / 1e9) / 1e6).toFixed(0));
    segStart = now;
  }
}
chunks += chunker.finish().length;
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
// per CPU second as well: on a shared machine wall-clock speed depends on the neighbours
console.log(`chunker: ${(total / secs / 1e6).toFixed(0)} MB/s (${(total / cpuSecs / 1e6).toFixed(0)} per CPU s) over ${total / MiB} MiB, ${chunks} chunks; ` +
  `per 128 MiB segment: ${segs.join(' ')}`);
