import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { sql } from "kysely";
import type { App } from "../../src/app.ts";
import {
  ChannelResponseSchema,
  SaveFeishuWebhookRequestSchema,
} from "../../src/gen/smartflow/notification/notification_pb.ts";
import {
  ReplayOutboxMessagesRequestSchema,
  ReplayOutboxMessagesResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { errorDetails, grpc, rpcClient } from "../support/grpc-clients.ts";
import { backends, createTestEnv, query, startApp, type TestEnv } from "../support/harness.ts";

const OPS = "/smartflow.notification.v1.NotificationOpsService";
const SAVE = "/smartflow.notification.Notification/SaveFeishuWebhook";

/** The replay filter's wildcards, and the length of the channel's secrets. */
for (const backend of backends) {
  describe(`input limits (${backend})`, () => {
    let testEnv: TestEnv;
    let app: App;
    let ops: ReturnType<typeof rpcClient>;
    before(async () => {
      testEnv = await createTestEnv(backend);
      app = await startApp(testEnv);
      ops = rpcClient(`127.0.0.1:${app.apiPort()}`);
    });
    after(async () => {
      ops.close();
      await app.stop();
      await testEnv.dispose();
    });

    test("ReplayOutboxMessages: % and _ in error_contains match themselves, not any text", async () => {
      const dead = async (lastError: string) => {
        const now = app.db.traits.time(new Date());
        // A row of another event type: once replayed, nothing here consumes it, so it cannot come back dead.
        await query(
          app,
          sql`insert into ${sql.table(app.route.table)} (biz_type, service_name, topic, message_key, payload,
              status, retry_count, max_retry, next_retry_at, last_error, created_at, updated_at)
              values (${`${FEISHU_REQUESTED_EVENT}.other`}, 'notification', ${testEnv.topic}, 'k', '{}', 'dead', 20,
              20, null, ${lastError}, ${now}, ${now})`,
        );
        const [row] = await query<{ id: number }>(
          app,
          sql`select max(id) as id from ${sql.table(app.route.table)}`,
        );
        return Number(row?.id);
      };
      const percent = await dead("disk 100% full");
      const underscore = await dead("no such key: user_id");
      const backslash = await dead("path C:\\tmp\\x not found");
      await dead("disk 1000 full, userXid, C:/tmp");
      const replay = async (errorContains: string) =>
        (
          await ops.unary(
            `${OPS}/ReplayOutboxMessages`,
            ReplayOutboxMessagesRequestSchema,
            ReplayOutboxMessagesResponseSchema,
            {
              selector: {
                case: "filter",
                value: { errorContains, eventType: `${FEISHU_REQUESTED_EVENT}.other` },
              },
            },
          )
        ).ids.map(Number);
      assert.deepEqual(await replay("0%"), [percent]);
      assert.deepEqual(await replay("r_i"), [underscore]);
      assert.deepEqual(await replay("C:\\tmp"), [backslash]);
      assert.deepEqual(await replay("%"), [], "already replayed, and nothing else has a %");
    });

    test("SaveFeishuWebhook: a bearer token or signing secret over 1,024 characters is refused naming the field (40006)", async () => {
      const flow = "https://www.feishu.cn/flow/api/trigger-webhook/limitkey0001";
      const bot = "https://open.feishu.cn/open-apis/bot/v2/hook/limitkey0002";
      const save = (request: MessageInitShape<typeof SaveFeishuWebhookRequestSchema>) =>
        ops.unary(SAVE, SaveFeishuWebhookRequestSchema, ChannelResponseSchema, request);
      const cases: [MessageInitShape<typeof SaveFeishuWebhookRequestSchema>, string][] = [
        [
          {
            userId: 61n,
            enabled: true,
            webhookUrl: flow,
            authType: "bearer",
            bearerToken: "t".repeat(1_025),
          },
          "bearer_token",
        ],
        [
          {
            userId: 61n,
            enabled: true,
            webhookUrl: flow,
            authType: "bearer",
            bearerToken: "x".repeat(1 << 20),
          },
          "bearer_token",
        ],
        [{ userId: 61n, enabled: true, webhookUrl: bot, signingSecret: "s".repeat(1_025) }, "signing_secret"],
      ];
      for (const [request, field] of cases) {
        const error = await save(request).catch((e: grpc.ServiceError) => e);
        assert.equal((error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT, field);
        const { errorInfo, badRequest } = errorDetails(error);
        assert.equal(errorInfo?.reason, "40006");
        // The field is named in the message, or in a BadRequest next to SmartFlow's own text for 40006.
        const named = [
          errorInfo?.metadata.info ?? "",
          ...(badRequest?.fieldViolations.map((v) => v.field) ?? []),
        ];
        assert.ok(
          named.some((text) => text.startsWith(field)),
          JSON.stringify(named),
        );
        assert.ok((error as grpc.ServiceError).details.length < 300, "the answer does not echo the input");
      }
      const fits = await save({
        userId: 61n,
        enabled: true,
        webhookUrl: flow,
        authType: "bearer",
        bearerToken: "令".repeat(1_024),
      });
      assert.equal(fits.hasBearerToken, true, "1,024 characters (not bytes) fit");
      const botFits = await save({
        userId: 62n,
        enabled: true,
        webhookUrl: bot,
        signingSecret: "s".repeat(1_024),
      });
      assert.equal(botFits.hasSigningSecret, true);
    });
  });
}
