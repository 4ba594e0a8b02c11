import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { migrateToLatest } from "../../src/db/migrations.ts";
import { attemptOf, feishuEnv, givenChannel, requestNotification } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { createTestEnv, recordEvents, startApp, type TestEnv } from "../support/harness.ts";
import { createManualClock } from "../support/manual-clock.ts";

describe("a sender killed mid-send (MariaDB + Kafka, a real process)", () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  let child: ChildProcess | undefined;
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", { ...feishuEnv(fake), FEISHU_TIMEOUT_MS: "5000" });
  });
  after(async () => {
    child?.kill("SIGKILL");
    await fake.close();
    await testEnv.dispose();
  });

  test("9. the record is sent once more after the lease expires, by another instance", async () => {
    const producer = await startApp(testEnv, { start: false });
    await migrateToLatest(producer.db.kysely, producer.db.traits, { outbox: producer.route.table });
    await givenChannel(producer, 110, fake.flowUrl("flowkey0110"));
    // The service, as deployed: `node src/main.ts` with the test's database, topic and group.
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, ...testEnv.env, LOG_LEVEL: "warn" },
      stdio: ["ignore", "inherit", "inherit"],
    });
    fake.script("flowkey0110", { hang: true });
    await requestNotification(producer, { userId: 110, previewId: "asp_110" });
    await fake.waitForRequests("flowkey0110", 1, 60_000);
    child.kill("SIGKILL");
    await once(child, "exit");
    await producer.db.close();

    // Another instance, its clock past the 60 s lease the dead process took.
    const clock = createManualClock(new Date(Date.now() + 61_000));
    // Its retry scan runs as it starts and may resend at once: the hook is in place before it starts.
    let started: ((app: App) => void) | undefined;
    const survivorReady = new Promise<App>((resolve) => {
      started = resolve;
    });
    const idOf110 = async (app: App) =>
      Number(
        (
          (await app.db.kysely
            .selectFrom("notification_records")
            .select("id")
            .where("user_id", "=", 110)
            .execute()) as [{ id: number }]
        )[0].id,
      );
    let during: Awaited<ReturnType<App["records"]["get"]>>;
    fake.script("flowkey0110", {
      before: async () => {
        const app = await survivorReady;
        during = await app.records.get(await idOf110(app));
      },
    });
    const survivor = await startApp(testEnv, { clock, start: false });
    const events = recordEvents(survivor);
    started?.(survivor);
    await survivor.start();
    try {
      const id = await idOf110(survivor);
      await survivor.retryLoop.scanOnce();
      const result = await attemptOf(events, Number(id));
      assert.equal(result.status, "sent");
      assert.equal(fake.requestsFor("flowkey0110").length, 2, "one POST by each sender, none more");
      assert.equal(during?.status, "sending");
      assert.equal(
        during?.lastErrorCode,
        "sending_lease_expired",
        "the lost lease is visible while resending",
      );
      const record = await survivor.records.get(Number(id));
      assert.equal(record?.attemptCount, 2);
      assert.equal(record?.lastErrorCode, null);
    } finally {
      await survivor.stop();
    }
  });
});
