/**
 * Hostile and careless peers against the API: echoed input that would blow the trailers, a gzip
 * bomb, connections that never finish their handshake at shutdown, max connection age, the bearer scheme's
 * case, and the log line of an unexpected error. Protocol-level answers are in grpc-conformance.test.ts.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { Agent, request as http1Request } from "node:http";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetStatsRequestSchema } from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { type ApiUnderTest, startApiUnderTest } from "../support/api-under-test.ts";
import { errorDetails, grpc, legacyClient } from "../support/grpc-clients.ts";
import { grpcFrame, rawConnection } from "../support/h2-raw.ts";
import { h2Request, h2Session } from "../support/h2-request.ts";

const GET = "/smartflow.notification.Notification/GetFeishuWebhook";
const STATS = "/smartflow.notification.v1.NotificationOpsService/GetStats";
const USER_42 = Buffer.from([0x08, 0x2a]);

describe("hostile input over gRPC", () => {
  let service: ApiUnderTest;
  const logLines: Record<string, unknown>[] = [];
  before(async () => {
    const logger = createLogger("debug", (line) =>
      logLines.push(JSON.parse(line) as Record<string, unknown>),
    );
    service = await startApiUnderTest({ token: "Sesame-42" }, { logger });
  });
  after(() => service.close());

  test("item 2: a 20 KB host echoed in the error does not blow a stock grpc-js client's trailers", async () => {
    const client = legacyClient(`127.0.0.1:${service.port}`);
    try {
      const host = `${"a".repeat(20_000)}.example`;
      const error = (await client
        .call("SaveFeishuWebhook", {
          user_id: 7,
          enabled: true,
          webhook_url: `https://${host}/flow/api/trigger-webhook/abcdefgh12345678`,
        })
        .catch((e: unknown) => e)) as grpc.ServiceError;
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT, error.message);
      assert.ok(error.details.length <= 300, `grpc-message of ${error.details.length} characters`);
      const { errorInfo } = errorDetails(error);
      assert.equal(errorInfo?.reason, "40005");
      assert.ok((errorInfo?.metadata.info ?? "").length <= 300);
      // The server is alive and the same client's next call is answered.
      const answer = await client.call<{ configured: boolean }>("GetFeishuWebhook", { user_id: 7 });
      assert.equal(answer.configured, false);
    } finally {
      client.close();
    }
  });

  test("item 6: a gzip bomb is RESOURCE_EXHAUSTED, with no error log line", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const session = h2Session(service.port);
    try {
      const before = logLines.filter((l) => l.level === "error").length;
      const outcomes = await Promise.all(
        Array.from({ length: 3 }, () =>
          h2Request(session, {
            path: GET,
            headers: { "grpc-encoding": "gzip" },
            body: [grpcFrame(bomb, true)],
          }),
        ),
      );
      for (const outcome of outcomes) assert.equal(outcome.grpcStatus, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(logLines.filter((l) => l.level === "error").length, before);
    } finally {
      session.close();
    }
  });

  test("item 9: the bearer scheme is case-insensitive; other schemes and oversized headers are refused", async () => {
    const session = h2Session(service.port);
    const stats = grpcFrame(toBinary(GetStatsRequestSchema, create(GetStatsRequestSchema)));
    const statusWith = async (authorization: string) =>
      (await h2Request(session, { path: STATS, headers: { authorization }, body: [stats] })).grpcStatus;
    try {
      for (const accepted of [
        "Bearer Sesame-42",
        "bearer Sesame-42",
        "BEARER   Sesame-42",
        "bEaReR Sesame-42",
      ]) {
        assert.equal(await statusWith(accepted), grpc.status.OK, accepted);
      }
      for (const refused of [
        "Basic Sesame-42",
        "BearerSesame-42",
        "Bearer sesame-42",
        "Bearer ",
        "Sesame-42",
      ]) {
        assert.equal(await statusWith(refused), grpc.status.UNAUTHENTICATED, refused);
      }
      assert.equal(await statusWith(`Bearer ${"x".repeat(8_000)}`), grpc.status.UNAUTHENTICATED);
    } finally {
      session.close();
    }
  });
});

describe("connections at shutdown and over time", () => {
  test("item 5: close(budget) returns within the budget with a silent, a half-preface and a busy connection open", async () => {
    const service = await startApiUnderTest({ handshakeTimeoutMs: 120_000 });
    try {
      const silent = connect(service.port, "127.0.0.1");
      const halfPreface = connect(service.port, "127.0.0.1");
      for (const socket of [silent, halfPreface]) {
        socket.on("error", () => undefined);
        await once(socket, "connect");
      }
      halfPreface.write("PRI * HTTP/2.0\r\n");
      // An HTTP/1.1 connection left idle in keep-alive after its request.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      await new Promise<void>((resolve, reject) =>
        http1Request(
          {
            port: service.port,
            host: "127.0.0.1",
            method: "POST",
            path: GET,
            agent,
            headers: { "content-type": "application/json" },
          },
          (res) => res.resume().on("end", resolve),
        )
          .on("error", reject)
          .end('{"userId":"42"}'),
      );
      // A call that never finishes sending: in flight until the budget runs out.
      const busy = h2Session(service.port);
      const pending = h2Request(busy, { path: GET, body: [grpcFrame(USER_42).subarray(0, 4)], end: false });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const closed = [silent, halfPreface].map((socket) => once(socket, "close"));
      await service.api.close(500);
      // Every connection is gone once close() has resolved.
      await Promise.all(closed);
      const outcome = await pending;
      assert.notEqual(outcome.summary, "grpc 0");
      busy.destroy();
      agent.destroy();
    } finally {
      await service.close(0);
    }
  });

  test("a connection past its max age gets GOAWAY(NO_ERROR); its call in flight still finishes", async () => {
    const service = await startApiUnderTest({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 5_000 });
    try {
      const connection = await rawConnection(service.port);
      await connection.handshake();
      await connection.until((_, closed) => closed || connection.goaway() !== undefined);
      assert.equal(connection.goaway()?.code, 0);
      connection.close();
      // node's client sees the GOAWAY and a new session is answered.
      const session = h2Session(service.port);
      assert.equal((await h2Request(session, { path: GET, body: [grpcFrame(USER_42)] })).summary, "grpc 0");
      session.close();
    } finally {
      await service.close(0);
    }
  });

  test("with TLS, a silent connection and one that never sends SETTINGS after the TLS handshake are closed", async () => {
    const fixture = (name: string) => new URL(`../fixtures/tls/${name}`, import.meta.url).pathname;
    const service = await startApiUnderTest({
      handshakeTimeoutMs: 300,
      tls: { certFile: fixture("cert.pem"), keyFile: fixture("key.pem") },
    });
    try {
      const silent = connect(service.port, "127.0.0.1");
      silent.on("error", () => undefined);
      const secure = tlsConnect({
        port: service.port,
        host: "127.0.0.1",
        ALPNProtocols: ["h2"],
        rejectUnauthorized: false,
      });
      secure.on("error", () => undefined);
      secure.resume(); // a client reads (and so sees the close)
      await once(secure, "secureConnect");
      assert.equal(secure.alpnProtocol, "h2");
      await Promise.all([once(silent, "close"), once(secure, "close")]);
    } finally {
      await service.close(0);
    }
  });
});
