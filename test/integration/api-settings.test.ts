import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "node:net";
import { test } from "node:test";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { h2Session } from "../support/h2-request.ts";
import { createTestEnv, startApp } from "../support/harness.ts";

/** The API's connection keys (API_*) reach the server the app builds, each seen from a client. */
test("API_* connection keys: max streams, handshake timeout, HTTP/1.1 head timeout and max connection age", {
  timeout: 30_000,
}, async () => {
  const testEnv = await createTestEnv("sqlite+memory", {
    API_MAX_CONCURRENT_STREAMS: "7",
    API_HANDSHAKE_TIMEOUT_MS: "200",
    API_HTTP1_HEADERS_TIMEOUT_MS: "300",
    API_HTTP1_REQUEST_TIMEOUT_MS: "600",
    API_MAX_CONNECTION_AGE_MS: "300",
    API_MAX_CONNECTION_AGE_GRACE_MS: "1000",
  });
  const app = await startApp(testEnv);
  try {
    const port = app.apiPort();
    const session = h2Session(port);
    const [settings] = (await once(session, "remoteSettings")) as [{ maxConcurrentStreams?: number }];
    assert.equal(settings.maxConcurrentStreams, 7);
    await once(session, "goaway");
    session.destroy();

    const silent = connect(port, "127.0.0.1");
    silent.on("error", () => undefined);
    await once(silent, "connect");
    await once(silent, "close");

    const slow = connect(port, "127.0.0.1");
    slow.on("error", () => undefined);
    await once(slow, "connect");
    slow.write("POST /smartflow.notification.Notification/GetFeishuWebhook HTTP/1.1\r\nHost: x\r\n");
    let answer = "";
    slow.setEncoding("utf8").on("data", (chunk: string) => {
      answer += chunk;
    });
    await once(slow, "close");
    assert.match(answer, /^HTTP\/1\.1 408 /);
  } finally {
    await app.stop();
    await testEnv.dispose();
  }
});

test("without API_TOKEN, startup warns that the operations service is open; with it, it does not", async () => {
  const warnings = async (env: Record<string, string>) => {
    const lines: string[] = [];
    const app = createApp(
      loadConfig({ DATABASE_URL: "sqlite::memory:", GRPC_ADDR: "127.0.0.1:0", METRICS_ADDR: "", ...env }),
      {
        logger: createLogger("warn", (line) => lines.push(line)),
      },
    );
    await app.start();
    await app.stop();
    return lines
      .map((line) => (JSON.parse(line) as { msg: string }).msg)
      .filter((msg) => /API_TOKEN/.test(msg));
  };
  assert.deepEqual(await warnings({}), [
    "API_TOKEN is not set: the operations service is open to every caller that reaches the port",
  ]);
  assert.deepEqual(await warnings({ API_TOKEN: "t0ken" }), []);
});
