import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { sql } from "kysely";
import { attemptOf, feishuEnv, givenChannel, recordOf, requestNotification } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import { createTestEnv, query, recordEvents, startApp, type TestEnv } from "../support/harness.ts";

describe("secrets at rest (MariaDB + Kafka, SECRETS_KEY set)", () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", {
      ...feishuEnv(fake),
      SECRETS_KEY: randomBytes(32).toString("base64"),
    });
  });
  after(async () => {
    await fake.close();
    await testEnv.dispose();
  });

  test("URLs, tokens and signing secrets are stored sealed, and deliveries still use them", async () => {
    const app = await startApp(testEnv);
    const events = recordEvents(app);
    type Row = { user_id: number; webhook_url: string; bearer_token: string; signing_secret: string | null };
    const rows = async () =>
      new Map(
        (
          await query<Row>(
            app,
            sql`select user_id, webhook_url, bearer_token, signing_secret from user_notification_channels`,
          )
        ).map((row) => [Number(row.user_id), row]),
      );
    try {
      await givenChannel(app, 401, fake.flowUrl("flowkey0401"), {
        authType: "bearer",
        bearerToken: "tok-401",
      });
      await givenChannel(app, 402, fake.botUrl("botkey000402"), { signingSecret: "sign-402" });
      fake.requireSignature("botkey000402", "sign-402");
      const stored = await rows();
      for (const row of stored.values()) {
        assert.match(row.webhook_url, /^enc:v2:[0-9a-f]{8}:/);
        assert.ok(!row.webhook_url.includes("flowkey0401") && !row.webhook_url.includes("botkey000402"));
      }
      assert.match(stored.get(401)?.bearer_token ?? "", /^enc:v2:[0-9a-f]{8}:/);
      assert.match(stored.get(402)?.signing_secret ?? "", /^enc:v2:[0-9a-f]{8}:/);
      assert.equal(
        (await app.channelService.get(401n)).webhookUrlMask,
        `${fake.origin}/flow/api/trigger-webhook/flow...0401`,
      );

      const flow = await recordOf(
        events,
        await requestNotification(app, { userId: 401, previewId: "asp_401" }),
      );
      const bot = await recordOf(
        events,
        await requestNotification(app, { userId: 402, previewId: "asp_402" }),
      );
      assert.equal((await attemptOf(events, flow)).status, "sent");
      assert.equal(
        (await attemptOf(events, bot)).status,
        "sent",
        "the signature was made with the opened secret",
      );
      assert.equal(fake.requestsFor("flowkey0401")[0]?.headers.authorization, "Bearer tok-401");
      const signed = fake.requestsFor("botkey000402")[0]?.body;
      assert.equal(
        signed?.sign,
        createHmac("sha256", `${String(signed?.timestamp)}\nsign-402`)
          .update("")
          .digest("base64"),
      );

      // A row in plain text (as SmartFlow's Go services wrote it) is read as is, and sealed when next saved.
      const now = app.db.traits.time(new Date());
      await query(
        app,
        sql`insert into user_notification_channels (user_id, channel, enabled, webhook_url, auth_type, bearer_token,
            webhook_kind, signing_secret, created_at, updated_at)
            values (403, 'feishu_webhook', 1, ${fake.flowUrl("flowkey0403")}, 'none', '', 'flow_trigger', '', ${now}, ${now})`,
      );
      assert.equal((await app.channelService.get(403n)).configured, true);
      const legacy = await recordOf(
        events,
        await requestNotification(app, { userId: 403, previewId: "asp_403" }),
      );
      assert.equal((await attemptOf(events, legacy)).status, "sent");
      await givenChannel(app, 403, fake.flowUrl("flowkey0403"));
      assert.match((await rows()).get(403)?.webhook_url ?? "", /^enc:v2:[0-9a-f]{8}:/);
    } finally {
      await app.stop();
    }
  });
});
