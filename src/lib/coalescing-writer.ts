/** One item's outcome in a batch: its value, or its own error (a batch-mate's failure is not its own). */
export type Settled<R> =
  | { readonly ok: true; readonly value: R }
  | { readonly ok: false; readonly error: unknown };

export interface CoalescingWriterOptions<I, R> {
  /** Writes a batch (distinct keys, in arrival order); one outcome per item, in the same order. */
  readonly write: (items: readonly I[]) => Promise<readonly Settled<R>[]>;
  /** Items with one key never share a batch nor run in two batches at once: they go in arrival order. */
  readonly keyOf: (item: I) => string;
  /** Items per batch at most. */
  readonly maxBatch: number;
  /** How long the first item of a batch waits for others while a batch could start (0: the current turn). */
  readonly maxWaitMs: number;
  /** Batches written at once at most; items arriving meanwhile queue for the next one. */
  readonly maxInFlight: number;
}

type Entry<I, R> = {
  readonly item: I;
  readonly key: string;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
};

/**
 * Coalesces concurrent writes into batches (the write side of coalescing-loader.ts): an item waits at most
 * `maxWaitMs` when a batch could start, or for a running batch to finish when `maxInFlight` are running, and
 * goes out with every item that arrived meanwhile, up to `maxBatch`. Each caller gets its own outcome. Nothing
 * is held back once it can go: a batch that finishes starts the next at once, so every queued item is
 * written (or answered with its error) as long as batches finish.
 */
export function createCoalescingWriter<I, R>(options: CoalescingWriterOptions<I, R>) {
  const { maxBatch, maxInFlight, maxWaitMs } = options;
  let queue: Entry<I, R>[] = [];
  const busy = new Set<string>();
  let inFlight = 0;
  let scheduled = false;

  const take = (): Entry<I, R>[] => {
    const batch: Entry<I, R>[] = [];
    const keys = new Set<string>();
    const rest: Entry<I, R>[] = [];
    for (const entry of queue) {
      if (batch.length < maxBatch && !busy.has(entry.key) && !keys.has(entry.key)) {
        batch.push(entry);
        keys.add(entry.key);
      } else {
        rest.push(entry);
      }
    }
    queue = rest;
    return batch;
  };

  const settle = (batch: readonly Entry<I, R>[], outcomes: readonly Settled<R>[]) => {
    batch.forEach((entry, i) => {
      const outcome = outcomes[i];
      if (!outcome) entry.reject(new Error(`coalescing writer: no outcome for item ${i} of ${batch.length}`));
      else if (outcome.ok) entry.resolve(outcome.value);
      else entry.reject(outcome.error);
    });
  };

  const start = (batch: readonly Entry<I, R>[]) => {
    inFlight++;
    for (const entry of batch) busy.add(entry.key);
    Promise.resolve()
      .then(() => options.write(batch.map((entry) => entry.item)))
      .then(
        (outcomes) => settle(batch, outcomes),
        (error: unknown) => {
          for (const entry of batch) entry.reject(error);
        },
      )
      .finally(() => {
        inFlight--;
        for (const entry of batch) busy.delete(entry.key);
        pump();
      });
  };

  const pump = () => {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = take();
      if (batch.length === 0) return;
      start(batch);
    }
  };

  const fire = () => {
    scheduled = false;
    pump();
  };

  return {
    submit(item: I): Promise<R> {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, key: options.keyOf(item), resolve, reject });
        if (queue.length >= maxBatch) return pump();
        if (scheduled || inFlight >= maxInFlight) return;
        scheduled = true;
        if (maxWaitMs > 0) setTimeout(fire, maxWaitMs);
        else setImmediate(fire);
      });
    },
    /** Items waiting for a batch, and batches being written (for tests and metrics). */
    pending: () => ({ queued: queue.length, inFlight }),
  };
}
