/**
 * The conformance table (style habit 17): the same hand-built HTTP/2 requests go to this service and to a
 * bare @grpc/grpc-js server serving the same proto (test/support/grpc-reference.ts), and must get the same
 * answer. HTTP/1.1 rows are compared with a plain `http.Server` with the same timeouts. Where this service
 * differs on purpose, the row says what it answers instead and why. After every row, both servers must still
 * answer a normal call. The whole table is printed at the end.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttp1Server, type Server as Http1Server } from "node:http";
import { type ClientHttp2Session, constants } from "node:http2";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
import { type ApiUnderTest, startApiUnderTest } from "../support/api-under-test.ts";
import { startReferenceServer } from "../support/grpc-reference.ts";
import {
  dataFrame,
  FrameType,
  frame,
  grpcFrame,
  headersFrame,
  rawConnection,
  rstStreamFrame,
} from "../support/h2-raw.ts";
import { type H2Request, h2Request, h2Session } from "../support/h2-request.ts";

const GET = "/smartflow.notification.Notification/GetFeishuWebhook";
const USER_42 = Buffer.from([0x08, 0x2a]); // GetFeishuWebhookRequest{user_id: 42}
const MAX = 4 * 1024 * 1024;
const HANDSHAKE_MS = 300;
const HEADERS_MS = 300;
const STREAMS = 100;
/** How long a silent or slow peer is watched: well past this service's timeouts. */
const WATCH_MS = 2_000;

interface Target {
  readonly name: "grpc-js" | "service";
  readonly port: number;
  /** A fresh HTTP/2 connection per row, closed after it (a row may leave it in a bad state). */
  session(): ClientHttp2Session;
  /** The HTTP/1.1 reference for HTTP/1.1 rows: a plain http.Server (grpc-js serves no HTTP/1.1). */
  readonly http1Port: number;
}

interface Row {
  readonly name: string;
  readonly run: (target: Target) => Promise<string>;
  /** This service's answer where it differs from the reference on purpose, and why. */
  readonly differs?: { readonly service: string; readonly reason: string };
}

const call = (target: Target, request: H2Request) => {
  const session = target.session();
  return h2Request(session, request).finally(() => session.close());
};
const get = (body: Buffer[], extra: Partial<H2Request> = {}) => ({ path: GET, body, ...extra });
const half = grpcFrame(Buffer.concat([USER_42, Buffer.alloc(20)]), false).subarray(0, 9);

/** GetFeishuWebhookRequest{user_id: 42} of exactly `size` bytes: padded with an unknown bytes field (15). */
function unknownFieldMessage(size: number): Buffer {
  const message = Buffer.alloc(size);
  message.set(USER_42, 0);
  const length = size - 7;
  message[2] = 0x7a;
  message.set(
    [(length & 0x7f) | 0x80, ((length >> 7) & 0x7f) | 0x80, ((length >> 14) & 0x7f) | 0x80, length >> 21],
    3,
  );
  return message;
}

/** A raw connection watched for WATCH_MS: `closed` (with what it received) or `open`. */
async function watchRaw(port: number, send: Buffer | undefined): Promise<string> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  await once(socket, "connect");
  if (send) socket.write(send);
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString("latin1");
  });
  const closed = await Promise.race([
    once(socket, "close").then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), WATCH_MS)),
  ]);
  socket.destroy();
  if (!closed) return "open";
  const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
  return status ? `http ${status}, closed` : "closed";
}

/** Hand-built frames after a proper handshake: what the server answers (GOAWAY code), or `open`. */
async function rawFrames(port: number, frames: Buffer): Promise<string> {
  const connection = await rawConnection(port);
  await connection.handshake();
  await connection.until((received) => received.some((f) => f.type === FrameType.SETTINGS));
  await connection.write(frames);
  await connection
    .until((_, closed) => closed || connection.goaway() !== undefined, WATCH_MS)
    .catch(() => undefined);
  const goaway = connection.goaway();
  connection.close();
  return goaway ? `GOAWAY ${goaway.code}` : "open";
}

/** Opens `count` streams at once on one raw connection, each a whole call; counts answers and refusals. */
async function manyRawStreams(port: number, count: number): Promise<string> {
  const connection = await rawConnection(port);
  await connection.handshake();
  // Wait for the server's SETTINGS before opening streams, as a client must, to learn its stream limit.
  await connection.until((frames) => frames.some((f) => f.type === 4));
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const id = 1 + 2 * i;
    frames.push(
      headersFrame(id, [
        [":method", "POST"],
        [":scheme", "http"],
        [":path", GET],
        [":authority", "localhost"],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ]),
      dataFrame(id, grpcFrame(USER_42), true),
    );
  }
  await connection.write(Buffer.concat(frames));
  const ids = Array.from({ length: count }, (_, i) => 1 + 2 * i);
  await connection.until((_, closed) => closed || ids.every((id) => connection.streamOutcome(id)));
  const outcomes = ids.map((id) => connection.streamOutcome(id) ?? "none");
  const goaway = connection.goaway();
  connection.close();
  if (goaway) return `GOAWAY ${goaway.code}, connection closed`;
  const answered = outcomes.filter((o) => o === "answered").length;
  const refused = outcomes.filter((o) => o === `rst ${constants.NGHTTP2_REFUSED_STREAM}`).length;
  const other = count - answered - refused;
  return `${answered} answered, ${refused} refused${other ? `, ${other} other` : ""}`;
}

const rows: Row[] = [
  { name: "a valid unary call", run: (t) => call(t, get([grpcFrame(USER_42)])).then((o) => o.summary) },
  {
    name: "an empty message (length 0)",
    run: (t) => call(t, get([grpcFrame(Buffer.alloc(0))])).then((o) => o.summary),
    differs: {
      service: "grpc 16 trailers-only",
      reason:
        "the handler's answer, not the transport's: user_id 0 is Unauthenticated (the original's semantics)",
    },
  },
  ...Array.from(
    { length: 14 },
    (_, code): Row => ({
      name: `RST_STREAM code ${code} after half a message`,
      run: (t) => call(t, get([half], { resetWith: code })).then((o) => o.summary),
    }),
  ),
  {
    name: "half a message, then END_STREAM (truncated frame)",
    run: (t) => call(t, get([half])).then((o) => o.summary),
  },
  {
    name: "only 3 bytes of the length prefix, then END_STREAM",
    run: (t) => call(t, get([Buffer.from([0, 0, 0])])).then((o) => o.summary),
  },
  { name: "no message at all (END_STREAM at once)", run: (t) => call(t, get([])).then((o) => o.summary) },
  {
    name: "two messages in a unary call",
    run: (t) => call(t, get([grpcFrame(USER_42), grpcFrame(USER_42)])).then((o) => o.summary),
  },
  {
    name: "bytes after the message that are not a whole frame",
    run: (t) => call(t, get([grpcFrame(USER_42), Buffer.from([0, 0])])).then((o) => o.summary),
  },
  {
    name: "a length prefix over the limit (4 MiB + 1), body not sent: answered before the body",
    run: (t) =>
      call(t, get([grpcFrame(Buffer.alloc(16), false, MAX + 1)], { end: false, pendingAfterMs: 3_000 })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "a whole message over the limit (4 MiB + 1)",
    run: (t) => call(t, get([grpcFrame(Buffer.alloc(MAX + 1))])).then((o) => o.summary),
  },
  {
    name: "a message exactly at the limit (4 MiB of unknown field bytes)",
    run: (t) => call(t, get([grpcFrame(unknownFieldMessage(MAX))])).then((o) => o.summary),
  },
  {
    name: "bytes that are not the request message",
    run: (t) => call(t, get([grpcFrame(Buffer.from([0x08, 0xff]))])).then((o) => o.summary),
    differs: {
      service: "grpc 3 trailers-only",
      reason:
        "InvalidArgument (with ErrorInfo 40004 on the legacy service), as connect-node answers on the same port; grpc-js says Internal",
    },
  },
  {
    name: "compressed flag without grpc-encoding",
    run: (t) => call(t, get([grpcFrame(gzipSync(USER_42), true)])).then((o) => o.summary),
  },
  {
    name: "compressed flag with grpc-encoding: identity",
    run: (t) =>
      call(t, get([grpcFrame(gzipSync(USER_42), true)], { headers: { "grpc-encoding": "identity" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "compressed flag with grpc-encoding: br (unsupported)",
    run: (t) =>
      call(t, get([grpcFrame(gzipSync(USER_42), true)], { headers: { "grpc-encoding": "br" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "grpc-encoding: br on an uncompressed message",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "grpc-encoding": "br" } })).then((o) => o.summary),
  },
  {
    name: "gzip, valid",
    run: (t) =>
      call(t, get([grpcFrame(gzipSync(USER_42), true)], { headers: { "grpc-encoding": "gzip" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "deflate, valid",
    run: (t) =>
      call(t, get([grpcFrame(deflateSync(USER_42), true)], { headers: { "grpc-encoding": "deflate" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "gzip flag set but the bytes are not gzip",
    run: (t) =>
      call(t, get([grpcFrame(USER_42, true)], { headers: { "grpc-encoding": "gzip" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "gzip inflating to just under the limit",
    run: (t) =>
      call(
        t,
        get([grpcFrame(gzipSync(unknownFieldMessage(MAX - 16)), true)], {
          headers: { "grpc-encoding": "gzip" },
        }),
      ).then((o) => o.summary),
  },
  {
    name: "gzip bomb: 64 KiB inflating to 64 MiB",
    run: (t) =>
      call(t, get([grpcFrame(bomb, true)], { headers: { "grpc-encoding": "gzip" } })).then((o) => o.summary),
  },
  {
    name: "unknown method of a known service",
    run: (t) =>
      call(t, { path: "/smartflow.notification.Notification/NoSuchMethod", body: [grpcFrame(USER_42)] }).then(
        (o) => o.summary,
      ),
  },
  {
    name: "unknown service",
    run: (t) =>
      call(t, { path: "/no.such.Service/Method", body: [grpcFrame(USER_42)] }).then((o) => o.summary),
  },
  {
    name: "a path that is not /service/method",
    run: (t) => call(t, { path: "/", body: [grpcFrame(USER_42)] }).then((o) => o.summary),
  },
  {
    name: "content-type application/grpc+proto",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "content-type": "application/grpc+proto" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "content-type application/grpc;charset=utf-8",
    run: (t) =>
      call(
        t,
        get([grpcFrame(USER_42)], { headers: { "content-type": "application/grpc;charset=utf-8" } }),
      ).then((o) => o.summary),
  },
  {
    name: "content-type application/grpc+json, a JSON body",
    run: (t) =>
      call(
        t,
        get([grpcFrame(Buffer.from('{"userId":"42"}'))], {
          headers: { "content-type": "application/grpc+json" },
        }),
      ).then((o) => o.summary),
    differs: {
      service: "grpc 0",
      reason:
        "served: connect-node on the same port speaks the gRPC JSON codec; grpc-js decodes JSON as protobuf",
    },
  },
  {
    name: "content-type text/plain",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "content-type": "text/plain" } })).then(
        (o) => o.summary,
      ),
  },
  {
    name: "no content-type",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "content-type": "" } })).then((o) => o.summary),
  },
  {
    name: "GET with application/grpc",
    run: (t) => call(t, get([], { method: "GET" })).then((o) => o.summary),
  },
  {
    name: "PUT with application/grpc and a valid message",
    run: (t) => call(t, get([grpcFrame(USER_42)], { method: "PUT" })).then((o) => o.summary),
    differs: {
      service: "grpc 12 trailers-only",
      reason:
        "gRPC is POST only (PROTOCOL-HTTP2.md; grpc-go resets such a stream); grpc-js does not look at the method",
    },
  },
  {
    name: "grpc-timeout: soon (malformed)",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "grpc-timeout": "soon" } })).then((o) => o.summary),
  },
  {
    name: "grpc-timeout: 5x (unknown unit)",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "grpc-timeout": "5x" } })).then((o) => o.summary),
  },
  {
    name: "grpc-timeout: 10S (valid)",
    run: (t) =>
      call(t, get([grpcFrame(USER_42)], { headers: { "grpc-timeout": "10S" } })).then((o) => o.summary),
  },
  {
    name: "malformed HTTP/2: a DATA frame on stream 0",
    run: (t) => rawFrames(t.port, dataFrame(0, Buffer.from("x"))),
  },
  {
    name: "malformed HTTP/2: a HEADERS block with a bad HPACK index",
    run: (t) =>
      rawFrames(t.port, frame(FrameType.HEADERS, 0x5, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]))),
  },
  {
    name: "malformed HTTP/2: a frame over the 16 KiB max frame size",
    run: (t) =>
      rawFrames(
        t.port,
        Buffer.concat([
          headersFrame(1, [
            [":method", "POST"],
            [":scheme", "http"],
            [":path", GET],
            [":authority", "localhost"],
            ["content-type", "application/grpc"],
          ]),
          dataFrame(1, Buffer.alloc(20_000)),
        ]),
      ),
  },
  {
    name: "RST_STREAM on an idle stream",
    run: (t) => rawFrames(t.port, rstStreamFrame(99, 2)),
  },
  {
    name: `a silent peer (TCP open, nothing sent), watched ${WATCH_MS} ms`,
    run: (t) => watchRaw(t.port, undefined),
    differs: {
      service: "closed",
      reason: `handshake timeout (${HANDSHAKE_MS} ms here; 120 s by default, as grpc-go): grpc-js holds it forever`,
    },
  },
  {
    name: `half of the HTTP/2 preface, watched ${WATCH_MS} ms`,
    run: (t) => watchRaw(t.port, Buffer.from("PRI * HTTP/2.0\r\n")),
    differs: { service: "closed", reason: "handshake timeout, as above" },
  },
  {
    name: `the preface without SETTINGS, watched ${WATCH_MS} ms`,
    run: (t) => watchRaw(t.port, Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),
    differs: { service: "closed", reason: "handshake timeout: it ends when the client's SETTINGS arrive" },
  },
  {
    name: `HTTP/1.1: half a request line and headers, watched ${WATCH_MS} ms (reference: plain http.Server)`,
    run: (t) => watchRaw(t.http1Port, Buffer.from("POST /x HTTP/1.1\r\nHost: a\r\nContent-Ty")),
  },
  {
    name: `HTTP/1.1: headers complete, body never sent, watched ${WATCH_MS} ms (reference: plain http.Server)`,
    run: (t) =>
      watchRaw(
        t.http1Port,
        Buffer.from(
          "POST /smartflow.notification.Notification/GetFeishuWebhook HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        ),
      ),
  },
  {
    name: `${STREAMS + 50} streams opened at once on one connection (raw frames)`,
    run: (t) => manyRawStreams(t.port, STREAMS + 50),
    differs: {
      service: "GOAWAY 2, connection closed",
      reason: `SETTINGS_MAX_CONCURRENT_STREAMS ${STREAMS}; a client that opens more after acknowledging it breaks the protocol, and node's HTTP/2 layer ends its connection (grpc-js sets no limit; compliant clients queue, next row)`,
    },
  },
  {
    name: `${STREAMS + 50} concurrent calls from node's client on one connection`,
    run: async (t) => {
      const session = t.session();
      const outcomes = await Promise.all(
        Array.from({ length: STREAMS + 50 }, () => h2Request(session, get([grpcFrame(USER_42)]))),
      );
      session.close();
      const ok = outcomes.filter((o) => o.summary === "grpc 0").length;
      return `${ok} of ${outcomes.length} grpc 0`;
    },
  },
];

const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));

describe("gRPC conformance: this service against a bare grpc-js server, request by request", () => {
  let service: ApiUnderTest;
  let reference: Awaited<ReturnType<typeof startReferenceServer>>;
  let plainHttp1: Http1Server;
  let targets: Target[];
  const table: { row: Row; reference: string; service: string }[] = [];

  before(async () => {
    service = await startApiUnderTest({
      handshakeTimeoutMs: HANDSHAKE_MS,
      http1HeadersTimeoutMs: HEADERS_MS,
      http1RequestTimeoutMs: HEADERS_MS * 2,
      maxConcurrentStreams: STREAMS,
    });
    reference = await startReferenceServer();
    plainHttp1 = createHttp1Server(
      { headersTimeout: HEADERS_MS, requestTimeout: HEADERS_MS * 2, connectionsCheckingInterval: 50 },
      (req, res) => req.resume().on("end", () => res.end()),
    );
    plainHttp1.listen(0, "127.0.0.1");
    await once(plainHttp1, "listening");
    const http1Port = (plainHttp1.address() as { port: number }).port;
    targets = [
      { name: "grpc-js", port: reference.port, http1Port, session: () => h2Session(reference.port) },
      {
        name: "service",
        port: service.port,
        http1Port: service.port,
        session: () => h2Session(service.port),
      },
    ];
  });
  after(async () => {
    const lines = [
      "| request | grpc-js (reference) | this service | why it differs |",
      "|---|---|---|---|",
      ...table.map(
        ({ row, reference: r, service: s }) => `| ${row.name} | ${r} | ${s} | ${row.differs?.reason ?? ""} |`,
      ),
    ];
    console.log(`\ngRPC conformance table\n${lines.join("\n")}\n`);
    reference?.close();
    plainHttp1?.close();
    plainHttp1?.closeAllConnections();
    await service?.close();
  });

  // A stream without an error listener turns a peer's reset into an uncaught exception (a crash outside tests).
  const uncaught: unknown[] = [];
  process.on("uncaughtExceptionMonitor", (error) => uncaught.push(error));

  for (const row of rows) {
    test(row.name, async () => {
      const [grpcJs, ours] = targets as [Target, Target];
      const [referenceOutcome, serviceOutcome] = await Promise.all([row.run(grpcJs), row.run(ours)]);
      table.push({ row, reference: referenceOutcome, service: serviceOutcome });
      assert.equal(serviceOutcome, row.differs?.service ?? referenceOutcome, row.name);
      assert.deepEqual(uncaught.splice(0), [], "no uncaught exception");
      // Both are still alive and answer the next call.
      for (const target of targets) {
        assert.equal(
          (await call(target, get([grpcFrame(USER_42)]))).summary,
          "grpc 0",
          `${target.name} alive`,
        );
      }
    });
  }
});
