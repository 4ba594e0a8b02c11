/**
 * On the real process (`node --import tsx src/main.ts`): SIGTERM is one budget. With an idle
 * HTTP/2 connection, a request whose body never ends, a silent TCP connection, an RPC waiting on a webhook
 * that never answers and a delivery waiting on another, the process exits 0 within SHUTDOWN_GRACE_MS plus
 * the closing margin (before, the API's close and then the loops' drain each took up to the grace time).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SHUTDOWN_CLOSE_MARGIN_MS } from "../../src/app.ts";
import {
  RequestFeishuNotificationRequestSchema,
  RequestFeishuNotificationResponseSchema,
} from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { caFile, startFakeFeishu } from "../support/fake-feishu.ts";
import { legacyClient, rpcClient } from "../support/grpc-clients.ts";
import { grpcFrame } from "../support/h2-raw.ts";
import { h2Request, h2Session } from "../support/h2-request.ts";
import { type ServiceProcess, startServiceProcess } from "../support/service-process.ts";

const GRACE_MS = 2_000;
const GET = "/smartflow.notification.Notification/GetFeishuWebhook";

interface LogLine {
  readonly msg: string;
  readonly time: string;
}

test("SIGTERM with idle and half-sent connections and hanging webhooks exits within the grace time", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-shutdown-"));
  const fake = await startFakeFeishu();
  let service: ServiceProcess | undefined;
  try {
    service = await startServiceProcess({
      DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      FEISHU_ALLOWED_HOSTS: fake.host,
      FEISHU_CA_FILE: caFile,
      FEISHU_TIMEOUT_MS: "5000",
      DELIVERY_SENDING_LEASE_MS: "60000",
    });
    const { child, port, stdout, stderr } = service;
    const lines = () =>
      stdout()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as LogLine);
    const legacy = legacyClient(`127.0.0.1:${port}`);
    const ops = rpcClient(`127.0.0.1:${port}`);
    for (const [user, key] of [
      [1, "hangkey0001"],
      [2, "hangkey0002"],
    ] as const) {
      fake.script(key, { hang: true });
      await legacy.call("SaveFeishuWebhook", {
        user_id: user,
        enabled: true,
        webhook_url: fake.flowUrl(key),
      });
    }
    // A delivery whose webhook never answers (the dispatcher is draining it at shutdown)...
    await ops.unary(
      "/smartflow.notification.v1.NotificationOpsService/RequestFeishuNotification",
      RequestFeishuNotificationRequestSchema,
      RequestFeishuNotificationResponseSchema,
      {
        eventId: "evt-hang",
        userId: 1n,
        previewId: "asp_hang",
        triggerType: "manual",
        targetUrl: "/assistant/c",
      },
    );
    await fake.waitForRequests("hangkey0001", 1);
    // ...an RPC whose webhook never answers (in flight at shutdown)...
    const testing = legacy.call("TestFeishuWebhook", { user_id: 2 }).catch((error: unknown) => error);
    await fake.waitForRequests("hangkey0002", 1);
    // ...an idle HTTP/2 connection, a request whose body never ends, and a connection that sends nothing.
    const idle = h2Session(port);
    await once(idle, "remoteSettings");
    const halfSent = h2Session(port);
    void h2Request(halfSent, {
      path: GET,
      body: [grpcFrame(Buffer.from([0x08, 0x2a])).subarray(0, 3)],
      end: false,
    });
    const silent = connect(port, "127.0.0.1");
    silent.on("error", () => undefined);
    await once(silent, "connect");

    const signalled = performance.now();
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    const wallMs = performance.now() - signalled;
    assert.equal(code, 0, stderr());
    const at = (msg: string) => {
      const line = lines().find((l) => l.msg === msg);
      assert.ok(line, `no "${msg}" log line`);
      return Date.parse(line.time);
    };
    // Measured on the process's own clock, from the signal to the end of the staged stop.
    const stopMs = at("shutdown complete") - at("signal received");
    assert.ok(stopMs >= GRACE_MS - 50, `the grace time was used (${stopMs} ms)`);
    assert.ok(
      stopMs < GRACE_MS + SHUTDOWN_CLOSE_MARGIN_MS,
      `stopped in ${stopMs} ms (budget ${GRACE_MS} ms)`,
    );
    assert.ok(
      lines().some((l) => l.msg === "shutdown grace time ran out; unfinished work stays claimable"),
      "the loops were not waited for past the grace time",
    );
    assert.ok(wallMs < 3 * GRACE_MS, `the process exited ${Math.round(wallMs)} ms after SIGTERM`);
    assert.ok(await testing, "the RPC in flight was cut at the end of the budget");
    assert.equal(stderr(), "");
    for (const session of [idle, halfSent]) session.destroy();
    silent.destroy();
    legacy.close();
    ops.close();
  } finally {
    service?.child.kill("SIGKILL");
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
});
