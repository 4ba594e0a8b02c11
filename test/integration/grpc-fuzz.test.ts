/**
 * Property-based input tests (fast-check) over every RPC's request message, both services: random messages
 * built from the descriptors, mutated encodings and raw random bytes, sent over gRPC one at a time. For each:
 * the process does not crash, the status is one of the documented set, and a refused request changed nothing
 * in the database. FUZZ_RUNS cases in all (default 330 for CI; `make fuzz-rpc` runs 100,000).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { DescMessage, DescService } from "@bufbuild/protobuf";
import fc from "fast-check";
import { Notification } from "../../src/gen/smartflow/notification/notification_pb.ts";
import { NotificationOpsService } from "../../src/gen/smartflow/notification/v1/notification_ops_service_pb.ts";
import { type ApiUnderTest, startApiUnderTest } from "../support/api-under-test.ts";
import { grpcFrame } from "../support/h2-raw.ts";
import { h2Request, h2Session } from "../support/h2-request.ts";
import { query } from "../support/harness.ts";
import { encodedMessage, mutatedMessage } from "../support/proto-arbitrary.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 330);

/**
 * The documented statuses of these RPCs (README, "The API"): OK, INVALID_ARGUMENT (bad input, undecodable
 * bytes), NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (ops on a record in the wrong state),
 * UNAUTHENTICATED (user_id <= 0 on the legacy service). INTERNAL, UNKNOWN or a deadline on input alone
 * would be a bug.
 */
const DOCUMENTED = new Set([0, 3, 5, 6, 9, 16]);

const methods = [Notification, NotificationOpsService].flatMap((service: DescService) =>
  service.methods.map((method) => ({ path: `/${service.typeName}/${method.name}`, input: method.input })),
);

describe("random and mutated requests to every RPC", () => {
  let service: ApiUnderTest;
  let session: ReturnType<typeof h2Session>;
  before(async () => {
    // A still database (no relay, consumer or delivery loops), so any change is the call's own.
    service = await startApiUnderTest(
      {},
      { loops: false, env: { FEISHU_ALLOWED_HOSTS: "127.0.0.1:9", FEISHU_TIMEOUT_MS: "300" } },
    );
    session = h2Session(service.port);
  });
  after(async () => {
    session.close();
    await service.close();
  });

  /** A digest of every row this service writes. */
  async function snapshot(): Promise<string> {
    const hash = createHash("sha256");
    for (const table of ["user_notification_channels", "notification_records", service.app.route.table]) {
      const rows = await query(service.app, `SELECT * FROM ${table} ORDER BY id`);
      hash.update(JSON.stringify(rows, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
    }
    return hash.digest("hex");
  }

  async function check(path: string, bytes: Uint8Array) {
    const before = await snapshot();
    const outcome = await h2Request(session, { path, body: [grpcFrame(bytes)] });
    const code = outcome.grpcStatus ?? -1;
    assert.ok(
      DOCUMENTED.has(code),
      `${path}: status ${outcome.summary} "${outcome.grpcMessage}" for ${Buffer.from(bytes).toString("hex")}`,
    );
    if (code !== 0)
      assert.equal(await snapshot(), before, `${path}: refused (${code}) but the database changed`);
  }

  const inputs = (input: DescMessage) =>
    fc.oneof(
      { weight: 5, arbitrary: encodedMessage(input) },
      { weight: 4, arbitrary: mutatedMessage(input) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 128 }) },
    );

  for (const { path, input } of methods) {
    test(path, async () => {
      await fc.assert(
        fc.asyncProperty(inputs(input), (bytes) => check(path, bytes)),
        { numRuns: Math.max(1, Math.ceil(RUNS / methods.length)) },
      );
    });
  }

  test("the server still answers afterwards", async () => {
    const outcome = await h2Request(session, {
      path: "/smartflow.notification.Notification/GetFeishuWebhook",
      body: [grpcFrame(Buffer.from([0x08, 0x2a]))],
    });
    assert.equal(outcome.summary, "grpc 0");
  });
});
