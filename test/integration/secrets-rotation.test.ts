import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { secretKeyId } from "../../src/lib/secret-box.ts";
import { attemptOf, feishuEnv, recordOf, requestNotification } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { grpc } from "../support/grpc-clients.ts";
import { createTestEnv, query, recordEvents, startApp, type TestEnv } from "../support/harness.ts";
import {
  b64,
  insertRawChannel,
  newKey,
  rawRows,
  readSecrets,
  resealOverGrpc,
  type Secrets,
  sealV1,
  storeWith,
  upsertOf,
} from "../support/secrets.ts";

const TOKEN = "ops-token-rotation";

/** The status message: the server percent-encodes every reserved character, grpc-js decodes with decodeURI. */
/** The message as grpc-js hands it over: the server percent-encodes it the way grpc-js decodes it. */
const messageOf = (e: grpc.ServiceError) => e.details;

describe("rotating SECRETS_KEY (MariaDB + Kafka, ResealSecrets over gRPC)", () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", { ...feishuEnv(fake), API_TOKEN: TOKEN });
  });
  after(async () => {
    await fake.close();
    await testEnv.dispose();
  });

  const withApp = async <T>(env: Record<string, string>, body: (app: App) => Promise<T>) => {
    const app = await startApp(testEnv, { env });
    try {
      return await body(app);
    } finally {
      await app.stop();
    }
  };

  test("old-key, first-format and plain-text rows are resealed; then SECRETS_KEY alone reads them all", async () => {
    const oldKey = newKey();
    const currentKey = newKey();
    const expected = new Map<number, Secrets>();
    for (let user = 1; user <= 60; user++) {
      const bot = user % 2 === 1;
      expected.set(user, {
        webhookUrl: bot ? fake.botUrl(`botkey${user}`) : fake.flowUrl(`flowkey${user}`),
        bearerToken: bot ? "" : `tok-${user}`,
        signingSecret: bot ? `sign-${user}` : "",
      });
    }
    const users = [...expected.keys()];
    const secretsOf = (user: number) => expected.get(user) as Secrets;

    await withApp({ SECRETS_KEY: b64(oldKey) }, async (app) => {
      const store = storeWith(app, oldKey);
      for (const user of users.slice(0, 40)) await store.upsert(upsertOf(user, secretsOf(user)), new Date());
      for (const user of users.slice(40, 50)) {
        const s = secretsOf(user);
        await insertRawChannel(app, user, {
          webhook_url: sealV1(oldKey, s.webhookUrl),
          bearer_token: sealV1(oldKey, s.bearerToken),
          signing_secret: sealV1(oldKey, s.signingSecret),
        });
      }
      // Go-era rows: plain text, and NULL where the Go gateway wrote no signing secret.
      for (const user of users.slice(50)) {
        const s = secretsOf(user);
        await insertRawChannel(app, user, {
          webhook_url: s.webhookUrl,
          bearer_token: s.bearerToken,
          signing_secret: s.signingSecret || null,
        });
      }
    });

    const rotating = { SECRETS_KEY: b64(currentKey), SECRETS_KEY_PREVIOUS: b64(oldKey) };
    await withApp(rotating, async (app) => {
      assert.deepEqual(
        await readSecrets(app, users, currentKey, oldKey),
        expected,
        "readable while rotating",
      );
      await assert.rejects(
        resealOverGrpc(app, {}),
        (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
        "guarded by the API token",
      );
      await assert.rejects(
        resealOverGrpc(app, { batchSize: 1001 }, { token: TOKEN }),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /batch_size/.test(e.details),
      );
      assert.deepEqual(await resealOverGrpc(app, { batchSize: 7, limit: 25 }, { token: TOKEN }), {
        resealed: 25,
        remaining: 35,
      });
      assert.deepEqual(await resealOverGrpc(app, { batchSize: 7 }, { token: TOKEN }), {
        resealed: 35,
        remaining: 0,
      });
      assert.deepEqual(await resealOverGrpc(app, {}, { token: TOKEN }), { resealed: 0, remaining: 0 });
      const prefix = `enc:v2:${secretKeyId(currentKey)}:`;
      for (const row of await rawRows(app)) {
        for (const value of [row.webhook_url, row.bearer_token, row.signing_secret ?? ""]) {
          assert.ok(value === "" || value.startsWith(prefix), `user ${row.user_id}: ${value.slice(0, 20)}`);
        }
      }
      assert.equal(
        (await rawRows(app)).filter((row) => row.signing_secret === null).length,
        5,
        "a NULL stays NULL (the Go-era flow triggers)",
      );
    });

    await withApp({ SECRETS_KEY: b64(currentKey) }, async (app) => {
      assert.deepEqual(await readSecrets(app, users, currentKey), expected, "nothing lost or corrupted");
      // A Go-era group bot, now sealed with the new key, still signs with its secret.
      fake.requireSignature("botkey51", "sign-51");
      const events = recordEvents(app);
      const record = await recordOf(
        events,
        await requestNotification(app, { userId: 51, previewId: "asp_51" }),
      );
      assert.equal((await attemptOf(events, record)).status, "sent");
    });
  });

  test("a wrong previous key stops the reseal with an error naming the row and the key ids; nothing is rewritten", async () => {
    const sealer = newKey();
    const currentKey = newKey();
    const wrong = newKey();
    let before: Awaited<ReturnType<typeof rawRows>> = [];
    await withApp({ SECRETS_KEY: b64(sealer) }, async (app) => {
      await query(app, "delete from user_notification_channels");
      await storeWith(app, sealer).upsert(
        upsertOf(901, { webhookUrl: fake.flowUrl("flowkey901"), bearerToken: "tok-901", signingSecret: "" }),
        new Date(),
      );
      before = await rawRows(app);
    });
    await withApp({ SECRETS_KEY: b64(currentKey), SECRETS_KEY_PREVIOUS: b64(wrong) }, async (app) => {
      await assert.rejects(
        resealOverGrpc(app, {}, { token: TOKEN }),
        (e: grpc.ServiceError) =>
          e.code === grpc.status.FAILED_PRECONDITION &&
          messageOf(e).includes("user 901") &&
          messageOf(e).includes(`"${secretKeyId(sealer)}", which is not configured`) &&
          messageOf(e).includes(`SECRETS_KEY_PREVIOUS has id ${secretKeyId(wrong)}`),
      );
      assert.deepEqual(await rawRows(app), before, "the row is as it was");
      await assert.rejects(app.channelService.get(901n), /not configured/, "an error, not a garbled URL");
    });
    await withApp({}, async (app) => {
      await assert.rejects(
        resealOverGrpc(app, {}, { token: TOKEN }),
        (e: grpc.ServiceError) =>
          e.code === grpc.status.FAILED_PRECONDITION && /SECRETS_KEY is not configured/.test(messageOf(e)),
      );
    });
  });
});
