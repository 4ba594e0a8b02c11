import assert from "node:assert/strict";
import { test } from "node:test";
import { createCoalescingWriter, type Settled } from "../../src/lib/coalescing-writer.ts";

type Item = { key: string; n: number };

/** A writer whose batches the test finishes by hand: `batches` lists each write as it starts. */
function harness(options: { maxBatch: number; maxInFlight: number }) {
  const batches: { items: Item[]; finish: (outcomes?: Settled<string>[] | Error) => void }[] = [];
  const started: (() => void)[] = [];
  const writer = createCoalescingWriter<Item, string>({
    ...options,
    maxWaitMs: 0,
    keyOf: (item) => item.key,
    write: (items) =>
      new Promise((resolve, reject) => {
        batches.push({
          items: [...items],
          finish: (outcomes) =>
            outcomes instanceof Error
              ? reject(outcomes)
              : resolve(outcomes ?? items.map((i) => ({ ok: true, value: `${i.key}#${i.n}` }))),
        });
        for (const wake of started.splice(0)) wake();
      }),
  });
  const nextBatch = async (count: number) => {
    while (batches.length < count) await new Promise<void>((resolve) => started.push(resolve));
    return batches[count - 1] as (typeof batches)[number];
  };
  return { writer, batches, nextBatch };
}

test("one key never shares a batch nor runs in two at once; each caller gets its own outcome, in key order", async () => {
  const { writer, batches, nextBatch } = harness({ maxBatch: 10, maxInFlight: 2 });
  const items = ["a", "b", "a", "c", "a", "b"].map((key, n) => ({ key, n }));
  const answers = items.map((item) => writer.submit(item));
  const first = await nextBatch(1);
  assert.deepEqual(
    first.items.map((i) => i.n),
    [0, 1, 3],
    "the first of each key, in arrival order",
  );
  assert.equal(batches.length, 1, "the rest share keys with the running batch: they wait for it");
  first.finish();
  const second = await nextBatch(2);
  assert.deepEqual(
    second.items.map((i) => i.n),
    [2, 5],
  );
  second.finish();
  const third = await nextBatch(3);
  assert.deepEqual(
    third.items.map((i) => i.n),
    [4],
  );
  third.finish();
  assert.deepEqual(await Promise.all(answers), ["a#0", "b#1", "a#2", "c#3", "a#4", "b#5"]);
});

test("batches hold at most maxBatch items, at most maxInFlight run at once; one failure is its item's alone", async () => {
  const { writer, batches, nextBatch } = harness({ maxBatch: 3, maxInFlight: 2 });
  const answers = Array.from({ length: 8 }, (_, n) => writer.submit({ key: `k${n}`, n }));
  const settled = Promise.allSettled(answers);
  const one = await nextBatch(1);
  const two = await nextBatch(2);
  assert.deepEqual([one.items.length, two.items.length, batches.length], [3, 3, 2]);
  one.finish([
    { ok: true, value: "x0" },
    { ok: false, error: new Error("bad 1") },
    { ok: true, value: "x2" },
  ]);
  const three = await nextBatch(3);
  assert.deepEqual(
    three.items.map((i) => i.n),
    [6, 7],
  );
  two.finish(new Error("batch two failed"));
  three.finish();
  const outcomes = await settled;
  assert.deepEqual(
    outcomes.map((o) => (o.status === "fulfilled" ? o.value : (o.reason as Error).message)),
    ["x0", "bad 1", "x2", "batch two failed", "batch two failed", "batch two failed", "k6#6", "k7#7"],
  );
});
