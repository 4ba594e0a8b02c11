/**
 * The API's hazards against the real process (`node --import tsx src/main.ts`, as deployed): a peer's
 * RST_STREAM mid-message does not kill it; a connection that never sent a byte does not hold SIGTERM past
 * the grace time; hundreds of concurrent Connect calls leave stderr clean (no MaxListenersExceededWarning).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { constants } from "node:http2";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { grpcFrame } from "../support/h2-raw.ts";
import { h2Request, h2Session } from "../support/h2-request.ts";
import { startServiceProcess } from "../support/service-process.ts";

const GET = "/smartflow.notification.Notification/GetFeishuWebhook";
const USER_42 = Buffer.from([0x08, 0x2a]);

function startService(dir: string, env: Record<string, string> = {}) {
  return startServiceProcess({ DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`, ...env });
}

test("a reset mid-message does not kill the process; a silent connection does not hold SIGTERM", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-grpc-"));
  try {
    const service = await startService(dir, { SHUTDOWN_GRACE_MS: "1000" });
    const session = h2Session(service.port);
    for (const code of [constants.NGHTTP2_INTERNAL_ERROR, constants.NGHTTP2_PROTOCOL_ERROR, 7, 11]) {
      const half = grpcFrame(Buffer.concat([USER_42, Buffer.alloc(20)])).subarray(0, 9);
      await h2Request(session, { path: GET, body: [half], resetWith: code });
    }
    // Still serving, on the same connection and a new one.
    assert.equal((await h2Request(session, { path: GET, body: [grpcFrame(USER_42)] })).summary, "grpc 0");
    session.close();
    const fresh = h2Session(service.port);
    assert.equal((await h2Request(fresh, { path: GET, body: [grpcFrame(USER_42)] })).summary, "grpc 0");
    fresh.close();

    // A connection that never sends a byte (no protocol chosen yet, so no server owns it).
    const silent = connect(service.port, "127.0.0.1");
    silent.on("error", () => undefined);
    await once(silent, "connect");
    service.child.kill("SIGTERM");
    const [code] = await once(service.child, "exit");
    assert.equal(code, 0, service.stderr());
    assert.match(service.stdout(), /"msg":"shutdown complete"/);
    assert.equal(service.stderr(), "");
    silent.destroy();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hundreds of concurrent Connect calls leave stderr clean (no MaxListenersExceededWarning)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sfn-e2e-grpc-"));
  try {
    const service = await startService(dir);
    const sessions = Array.from({ length: 4 }, () => h2Session(service.port));
    const outcomes = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        h2Request(sessions[i % sessions.length] as ReturnType<typeof h2Session>, {
          path: GET,
          headers: { "content-type": "application/json", te: "" },
          body: [Buffer.from('{"userId":"42"}')],
        }),
      ),
    );
    for (const session of sessions) session.close();
    assert.equal(outcomes.filter((o) => o.httpStatus === 200).length, 400);
    service.child.kill("SIGTERM");
    const [code] = await once(service.child, "exit");
    assert.equal(code, 0);
    assert.doesNotMatch(service.stderr(), /MaxListenersExceededWarning/);
    assert.equal(service.stderr(), "");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
