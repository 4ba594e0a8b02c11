import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createLoopSupervisor,
  EXIT_LOOP_FAILED,
  type LoopFailure,
  runUntilStopped,
  type Supervised,
} from "../../src/app/supervision.ts";
import { silentLogger } from "../../src/lib/logger.ts";

function supervisor() {
  const stopping = new AbortController();
  const failures: LoopFailure[] = [];
  const s = createLoopSupervisor({
    logger: silentLogger,
    stopping: stopping.signal,
    onFailure: (f) => failures.push(f),
  });
  return { s, stopping, failures };
}

test("a loop that rejects fails the process once: onFailure, not live, `failed` resolves with its name", async () => {
  const { s, failures } = supervisor();
  let reject: (error: Error) => void = () => undefined;
  const watched = s.watch("outbox relay", new Promise<void>((_, r) => (reject = r)));
  const other = s.watch("retry loop", Promise.reject(new Error("second")));
  assert.equal(s.live(), true);
  reject(new Error("boom"));
  await watched;
  await other;
  const failure = await s.failed;
  assert.equal(failure.loop, failures[0]?.loop);
  assert.equal(failures.length, 1, "reported once, whatever fails after");
  assert.match(failure.error, /boom|second/);
  assert.equal(s.live(), false);
});

test("a loop that returns while the process runs has failed too; after the stop began, nothing fails", async () => {
  const ended = supervisor();
  await ended.s.watch("delivery dispatcher", Promise.resolve());
  assert.equal((await ended.s.failed).loop, "delivery dispatcher");
  assert.match((await ended.s.failed).error, /ended on its own/);

  const stopping = supervisor();
  stopping.stopping.abort();
  await stopping.s.watch("outbox consumer", Promise.reject(new Error("while draining")));
  await stopping.s.watch("outbox relay", Promise.resolve());
  assert.equal(stopping.s.live(), true);
  assert.deepEqual(stopping.failures, []);
});

function fakeApp(options: { startFails?: boolean } = {}) {
  const calls: string[] = [];
  let fail: (f: LoopFailure) => void = () => undefined;
  const failed = new Promise<LoopFailure>((resolve) => (fail = resolve));
  const app: Supervised = {
    logger: silentLogger,
    start: async () => {
      calls.push("start");
      if (options.startFails) throw new Error("migration failed");
    },
    stop: async () => {
      calls.push("stop");
    },
    loopFailed: () => failed,
  };
  return { app, calls, fail };
}

test("runUntilStopped: a loop failure stops the app and yields EX_SOFTWARE (70)", async () => {
  const { app, calls, fail } = fakeApp();
  const code = runUntilStopped(app, new Promise(() => undefined));
  fail({ loop: "outbox consumer", error: "refused" });
  assert.equal(await code, EXIT_LOOP_FAILED);
  assert.equal(EXIT_LOOP_FAILED, 70);
  assert.deepEqual(calls, ["start", "stop"]);
});

test("runUntilStopped: a requested stop yields 0 (the signal handler stopped the app); a failed start yields 1", async () => {
  const stopped = fakeApp();
  assert.equal(await runUntilStopped(stopped.app, Promise.resolve()), 0);
  assert.deepEqual(stopped.calls, ["start"]);

  const broken = fakeApp({ startFails: true });
  assert.equal(await runUntilStopped(broken.app, new Promise(() => undefined)), 1);
  assert.deepEqual(broken.calls, ["start", "stop"]);
});
