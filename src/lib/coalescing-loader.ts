type Waiter<V> = { resolve: (value: V | undefined) => void; reject: (error: unknown) => void };

/**
 * Coalesces concurrent reads by key into batched loads: a request waits for the next load, which starts as
 * soon as fewer than `maxInFlight` loads are running, and carries every key asked for meanwhile. It is not a
 * cache: each answer comes from a load that started after its request arrived, so a read that follows a
 * write sees it.
 */
export function createCoalescingLoader<K, V>(
  loadMany: (keys: readonly K[]) => Promise<Map<K, V>>,
  maxInFlight = 4,
  maxBatch = 500,
) {
  let queued = new Map<K, Waiter<V>[]>();
  let inFlight = 0;
  let scheduled = false;

  const pump = () => {
    scheduled = false;
    while (inFlight < maxInFlight && queued.size > 0) {
      const batch = new Map<K, Waiter<V>[]>();
      for (const [key, waiters] of queued) {
        if (batch.size >= maxBatch) break;
        batch.set(key, waiters);
      }
      for (const key of batch.keys()) queued.delete(key);
      if (queued.size === 0) queued = new Map();
      inFlight++;
      loadMany([...batch.keys()])
        .then(
          (values) => {
            for (const [key, waiters] of batch) for (const waiter of waiters) waiter.resolve(values.get(key));
          },
          (error: unknown) => {
            for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
          },
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
  };

  return {
    load(key: K): Promise<V | undefined> {
      return new Promise((resolve, reject) => {
        const waiters = queued.get(key);
        if (waiters) waiters.push({ resolve, reject });
        else queued.set(key, [{ resolve, reject }]);
        // Let the calls of this tick join before a load starts.
        if (!scheduled && inFlight < maxInFlight) {
          scheduled = true;
          setImmediate(pump);
        }
      });
    },
  };
}
