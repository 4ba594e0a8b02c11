import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { EXIT_LOOP_FAILED, runUntilStopped } from "../../src/app/supervision.ts";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { busFor, withFailingSubscribe } from "../support/buses.ts";
import { createTestEnv, type TestEnv } from "../support/harness.ts";
import { probe } from "../support/scrape.ts";

/** The outbox consumer fails for good under a running app (its bus refuses the subscription), on MariaDB. */
describe("a loop that fails for good takes the app down (MariaDB)", () => {
  let testEnv: TestEnv;
  before(async () => {
    testEnv = await createTestEnv("mysql+kafka");
  });
  after(async () => {
    await testEnv.dispose();
  });
  const failingApp = () =>
    createApp(loadConfig(testEnv.env), {
      logger: silentLogger,
      bus: withFailingSubscribe(busFor("sqlite+memory")),
    });

  test("health NOT_SERVING, /livez and /readyz 503 as soon as it fails", { timeout: 30_000 }, async () => {
    const app = failingApp();
    try {
      await app.start();
      const failure = await app.loopFailed();
      assert.equal(failure.loop, "outbox consumer");
      assert.match(failure.error, /refused for good/);
      assert.equal(app.health.isServing(), false);
      assert.equal(await probe(app.metricsPort(), "/livez"), 503);
      assert.equal(await probe(app.metricsPort(), "/readyz"), 503);
    } finally {
      await app.stop();
    }
  });

  test("the process edge's supervision runs the staged stop and yields exit code 70", {
    timeout: 30_000,
  }, async () => {
    const app = failingApp();
    const code = await runUntilStopped(app, new Promise(() => undefined));
    assert.equal(code, EXIT_LOOP_FAILED);
    // The staged stop ran to its end: the listeners are closed and the database pool too.
    await assert.rejects(fetch(`http://127.0.0.1:${app.metricsPort()}/livez`));
    await assert.rejects(app.db.kysely.selectFrom("notification_records").selectAll().execute());
  });
});
