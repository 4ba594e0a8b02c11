import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { createSecretBox, secretKeyId } from "../../src/lib/secret-box.ts";
import { createChannelReseal } from "../../src/notifications/sql/channel-reseal.ts";
import { feishuEnv, givenChannel } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { backends, createTestEnv, query, startApp, type TestEnv } from "../support/harness.ts";
import {
  b64,
  newKey,
  rawRows,
  readSecrets,
  resealOverGrpc,
  type Secrets,
  storeWith,
  upsertOf,
} from "../support/secrets.ts";

const TOKEN = "ops-token-races";

describe("resealing while the service writes, from two instances", () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  const oldKey = newKey();
  const currentKey = newKey();
  const rotating = { SECRETS_KEY: b64(currentKey), SECRETS_KEY_PREVIOUS: b64(oldKey) };
  const extraEnv = () => ({ ...feishuEnv(fake), API_TOKEN: TOKEN, ...rotating });
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", extraEnv());
  });
  after(async () => {
    await fake.close();
    await testEnv.dispose();
  });

  const original = (user: number): Secrets => ({
    webhookUrl: fake.flowUrl(`flowkey${user}`),
    bearerToken: `tok-${user}`,
    signingSecret: "",
  });
  const rewritten = (user: number): Secrets => ({
    webhookUrl: fake.flowUrl(`rewritten${user}`),
    bearerToken: `tok-new-${user}`,
    signingSecret: "",
  });
  const seedWithOldKey = async (app: App, users: readonly number[]) => {
    await query(app, "delete from user_notification_channels");
    const store = storeWith(app, oldKey);
    await Promise.all(users.map((user) => store.upsert(upsertOf(user, original(user)), new Date())));
  };
  const save = (app: App, user: number) =>
    givenChannel(app, user, rewritten(user).webhookUrl, {
      authType: "bearer",
      bearerToken: rewritten(user).bearerToken,
    });

  for (const backend of backends) {
    test(`${backend}: a row written between the reseal's read and its update keeps the new value`, async () => {
      const own = backend === "mysql+kafka" ? undefined : await createTestEnv(backend, extraEnv());
      const app = await startApp(own ?? testEnv);
      try {
        await seedWithOldKey(app, [1, 2, 3]);
        const job = createChannelReseal(app.db.kysely, app.db.traits, createSecretBox(currentKey, oldKey));
        const batch = await job.nextBatch(0, 10);
        assert.equal(batch.length, 3);
        await save(app, 2);
        await app.channelService.delete(3n);
        const byUser = (user: number) => batch.find((row) => row.userId === String(user));
        assert.equal(await job.resealRow(byUser(1) ?? assert.fail()), true);
        assert.equal(await job.resealRow(byUser(2) ?? assert.fail()), false, "the writer got there first");
        assert.equal(await job.resealRow(byUser(3) ?? assert.fail()), false, "deleted meanwhile");
        assert.equal(await job.countRemaining(), 0);
        assert.deepEqual(
          await readSecrets(app, [1, 2, 3], currentKey),
          new Map([
            [1, original(1)],
            [2, rewritten(2)],
          ]),
        );
      } finally {
        await app.stop();
        await own?.dispose();
      }
    });
  }

  test("two instances reseal at once while channels are saved: each row once, nothing lost", async () => {
    const users = Array.from({ length: 300 }, (_, i) => 1_000 + i);
    const written = users.filter((user) => user % 3 === 0);
    const a = await startApp(testEnv);
    const b = await startApp(testEnv);
    try {
      await seedWithOldKey(a, users);
      const writes = (async () => {
        for (const user of written) await save(user % 2 === 0 ? a : b, user);
      })();
      const [fromA, fromB] = await Promise.all([
        resealOverGrpc(a, { batchSize: 5 }, { token: TOKEN }),
        resealOverGrpc(b, { batchSize: 5 }, { token: TOKEN }),
        writes,
      ]);
      assert.ok(
        fromA.resealed + fromB.resealed <= users.length,
        `no row resealed twice: ${fromA.resealed} + ${fromB.resealed}`,
      );
      assert.ok(fromA.resealed + fromB.resealed >= users.length - written.length);
      assert.ok(fromA.resealed > 0 && fromB.resealed > 0, "both instances took part");
      assert.equal(fromA.remaining, 0);
      assert.equal(fromB.remaining, 0);
      const prefix = `enc:v2:${secretKeyId(currentKey)}:`;
      for (const row of await rawRows(a)) {
        assert.ok(row.webhook_url.startsWith(prefix) && row.bearer_token.startsWith(prefix));
      }
      const expected = new Map(
        users.map((user) => [user, written.includes(user) ? rewritten(user) : original(user)]),
      );
      assert.deepEqual(await readSecrets(a, users, currentKey), expected);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
