import { after, before } from "node:test";
import type { App } from "../../src/app.ts";
import type { SaveChannel } from "../../src/notifications/channel-service.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { caFile, type FakeFeishu, startFakeFeishu } from "./fake-feishu.ts";
import { type Backend, createTestEnv, recordEvents, startApp, type TestEnv } from "./harness.ts";
import type { ManualClock } from "./manual-clock.ts";

export function feishuEnv(fake: FakeFeishu): Record<string, string> {
  return {
    FEISHU_ALLOWED_HOSTS: fake.host,
    FEISHU_CA_FILE: caFile,
    FEISHU_TIMEOUT_MS: "1000",
    DELIVERY_SENDING_LEASE_MS: "60000",
    DELIVERY_RETRY_JITTER_PERCENT: "0",
    DELIVERY_RETRY_SCAN_INTERVAL_MS: "600000",
    FRONTEND_BASE_URL: "https://app.smartflow.test",
  };
}

/**
 * A fake Feishu and a test environment on `backend`, for the tests of one `describe`: set up before them,
 * torn down after. `withApp` runs a test against a started app and stops it afterwards.
 */
export function useDeliveryEnv(backend: Backend, extra: Record<string, string> = {}) {
  let fake: FakeFeishu | undefined;
  let testEnv: TestEnv | undefined;
  before(async () => {
    fake = await startFakeFeishu();
    testEnv = await createTestEnv(backend, { ...feishuEnv(fake), ...extra });
  });
  after(async () => {
    await fake?.close();
    await testEnv?.dispose();
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("useDeliveryEnv: used before its before() hook ran");
    return value;
  };
  return {
    get fake() {
      return ready(fake);
    },
    get testEnv() {
      return ready(testEnv);
    },
    async withApp(run: (app: App, events: Recorder) => Promise<void>, clock?: ManualClock) {
      const app = await startApp(ready(testEnv), clock ? { clock } : {});
      const events = recordEvents(app);
      try {
        await run(app, events);
      } finally {
        await app.stop();
      }
    },
  };
}

/**
 * A user with an enabled channel to `webhookUrl` (no token, no secret unless `extra` says otherwise), saved
 * through the service as the API would. Returns what Get would answer.
 */
export function givenChannel(
  app: Pick<App, "channelService">,
  userId: number | bigint,
  webhookUrl: string,
  extra: Partial<Omit<SaveChannel, "userId" | "webhookUrl">> = {},
) {
  return app.channelService.save({
    userId: BigInt(userId),
    enabled: true,
    webhookUrl,
    authType: "none",
    bearerToken: "",
    ...extra,
  });
}

export interface EventOptions {
  readonly userId: number;
  readonly previewId: string;
  readonly dedupeKey?: string;
  readonly eventVersion?: string;
  readonly payload?: Record<string, unknown> | string;
}

export function requestedPayload(userId: number, previewId: string, dedupeKey?: string) {
  return {
    user_id: userId,
    trigger_id: `ast_${previewId}`,
    preview_id: previewId,
    trigger_type: "unfinished_feedback",
    target_type: "task",
    target_id: 7,
    dedupe_key: dedupeKey ?? `${userId}:unfinished_feedback:${previewId}`,
    target_url: `/assistant/conv_${previewId}`,
    summary_text: "明天上午的两个任务时间冲突，建议调整。",
    fallback_text: "你有一条新的日程调整建议，请查看：/assistant/x",
    trace_id: `trace_${previewId}`,
    requested_at: "2026-03-02T10:41:00+08:00",
  };
}

/** Writes a notification.feishu.requested event into the outbox, as SmartFlow's producers do. */
export function requestNotification(app: App, options: EventOptions): Promise<number> {
  return app.db.kysely.transaction().execute((trx) =>
    app.enqueuer.enqueue(trx, {
      eventType: FEISHU_REQUESTED_EVENT,
      eventId: options.previewId,
      eventVersion: options.eventVersion ?? "1",
      aggregateId: options.previewId,
      messageKey: String(options.userId),
      payload: options.payload ?? requestedPayload(options.userId, options.previewId, options.dedupeKey),
    }),
  );
}

type Recorder = ReturnType<typeof recordEvents>;
type Result = { recordId: number; status: string; attemptCount: number; errorCode: string | null };

/** The record an outbox event was taken into. */
export async function recordOf(events: Recorder, outboxId: number): Promise<number> {
  const match = () =>
    events.of<{ outboxId: number; recordId: number }>("intake:record").find((e) => e.outboxId === outboxId);
  await events.until(`outbox row ${outboxId} is taken in`, () => match() !== undefined);
  return match()?.recordId ?? -1;
}

/** Waits for the `n`-th finished attempt of a record and returns it. */
export async function attemptOf(events: Recorder, recordId: number, n = 1): Promise<Result> {
  const all = () => events.of<Result>("delivery:result").filter((r) => r.recordId === recordId);
  await events.until(`attempt ${n} of record ${recordId}`, () => all().length >= n);
  return all()[n - 1] as Result;
}
