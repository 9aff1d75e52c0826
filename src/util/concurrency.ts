/** Runs fn over items with at most `limit` running at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Bounds the total weight (bytes, entries) of work in flight: `run(w, fn)` waits until w fits
 * (a single item heavier than the whole budget runs alone).
 */
export class WeightedGate {
  private used = 0;
  private readonly waiting: Array<{ w: number; go: () => void }> = [];

  constructor(private readonly budget: number) {}

  async run<T>(weight: number, fn: () => Promise<T>): Promise<T> {
    const w = Math.min(weight, this.budget);
    if (this.used + w > this.budget || this.waiting.length > 0) {
      await new Promise<void>((go) => this.waiting.push({ w, go }));
    } else {
      this.used += w;
    }
    try {
      return await fn();
    } finally {
      this.used -= w;
      while (this.waiting.length > 0 && this.used + this.waiting[0]!.w <= this.budget) {
        const next = this.waiting.shift()!;
        this.used += next.w;
        next.go();
      }
    }
  }
}
