/**
 * Runs `work` over `items` with at most `limit` in flight, items sharing a key strictly in order (so a
 * user's events keep their order), different keys in parallel. Resolves with the results in input order.
 */
export async function mapByKey<T, R>(
  items: readonly T[],
  keyOf: (item: T) => string,
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const queues = new Map<string, number[]>();
  items.forEach((item, index) => {
    const key = keyOf(item);
    const queue = queues.get(key);
    if (queue) queue.push(index);
    else queues.set(key, [index]);
  });
  const lanes = [...queues.values()];
  let next = 0;
  const runLane = async () => {
    while (next < lanes.length) {
      const lane = lanes[next++] ?? [];
      for (const index of lane) results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, lanes.length)) }, runLane));
  return results;
}
