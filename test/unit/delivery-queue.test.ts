import assert from "node:assert/strict";
import { test } from "node:test";
import { createDeliveryQueue } from "../../src/notifications/delivery-queue.ts";

const job = (recordId: number, userId: number) => ({ recordId, userId: BigInt(userId) });

test("users are served round-robin, each in submission order, and a record is queued once", () => {
  const queue = createDeliveryQueue();
  assert.equal(queue.add([job(1, 7), job(2, 7), job(3, 8), job(1, 7)]), true);
  assert.equal(queue.add([job(2, 7)]), false, "already known");
  assert.equal(queue.backlog(), 3);
  assert.deepEqual(
    queue.pick(10, 0).jobs.map((j) => j.recordId),
    [1, 3, 2],
  );
  queue.forget(1);
  assert.equal(queue.add([job(1, 7)]), true, "known again only after its attempt ended");
});

test("a held user waits without holding the others back, and the queue says how long", () => {
  const queue = createDeliveryQueue();
  queue.add([job(1, 7), job(2, 7), job(3, 8)]);
  queue.hold(7n, 6_000);
  const first = queue.pick(10, 5_000);
  assert.deepEqual(
    first.jobs.map((j) => j.recordId),
    [3],
  );
  const held = queue.pick(10, 5_400);
  assert.deepEqual([held.jobs, held.waitMs, queue.hasWaiting()], [[], 600, true]);
  assert.deepEqual(
    queue.pick(10, 6_000).jobs.map((j) => j.recordId),
    [1, 2],
  );
});

test("jobs whose claim failed go back to the front, in order", () => {
  const queue = createDeliveryQueue();
  queue.add([job(1, 7), job(2, 7), job(3, 7)]);
  const picked = queue.pick(2, 0).jobs;
  queue.putBack(picked);
  assert.deepEqual(
    queue.pick(10, 0).jobs.map((j) => j.recordId),
    [1, 2, 3],
  );
});
