import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import { toRpcStatus } from "../../src/api/error-mapping.ts";
import { retryingPort } from "../../src/app/transient-ports.ts";
import { retryTransient, transientKind } from "../../src/db/transient-retry.ts";
import { AppError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";

/** An error as the drivers make them: mysql2 sets `code`, `errno` (and `fatal` when the connection died). */
const dbError = (fields: Record<string, unknown>, message = "db error") =>
  Object.assign(new Error(message), fields);

test("transientKind: deadlocks, lock wait timeouts and SQLITE_BUSY are conflicts; lost connections are connection", () => {
  const cases: [Error, string | undefined][] = [
    [dbError({ code: "ER_LOCK_DEADLOCK", errno: 1213 }), "conflict"],
    [dbError({ code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 }), "conflict"],
    [dbError({ errno: 1213 }), "conflict"],
    [dbError({ code: "SQLITE_BUSY" }), "conflict"],
    [dbError({ code: "SQLITE_BUSY_SNAPSHOT" }), "conflict"],
    [dbError({ code: "PROTOCOL_CONNECTION_LOST", fatal: true }), "connection"],
    [dbError({ code: "ECONNRESET" }), "connection"],
    [dbError({ code: "EPIPE" }), "connection"],
    [dbError({ code: "ETIMEDOUT" }), "connection"],
    [dbError({ code: "ECONNREFUSED" }), "connection"],
    [dbError({ errno: 2006 }), "connection"],
    [dbError({ errno: 2013 }), "connection"],
    [dbError({ code: "ER_CONNECTION_KILLED", errno: 1927 }), "connection"],
    [dbError({ fatal: true }, "Can't add new command when connection is in closed state"), "connection"],
    [new Error("outer", { cause: dbError({ errno: 1213 }) }), "conflict"],
    [dbError({ code: "ER_DUP_ENTRY", errno: 1062 }), undefined],
    [dbError({ code: "ER_WARN_DATA_OUT_OF_RANGE", errno: 1264 }), undefined],
    [dbError({ code: "SQLITE_CONSTRAINT_UNIQUE" }), undefined],
    [new Error("plain"), undefined],
  ];
  for (const [error, kind] of cases) assert.equal(transientKind(error), kind, error.message);
  assert.equal(transientKind("not an error"), undefined);
});

test("retryTransient: the unit of work is re-run until it succeeds", async () => {
  let calls = 0;
  const retries: number[] = [];
  const value = await retryTransient(
    async () => {
      calls++;
      if (calls < 3) throw dbError({ code: "ER_LOCK_DEADLOCK", errno: 1213 });
      return "done";
    },
    { onRetry: (_kind, attempt) => retries.push(attempt) },
  );
  assert.equal(value, "done");
  assert.equal(calls, 3);
  assert.deepEqual(retries, [1, 2]);
});

test("retryTransient: bounded; then ABORTED for conflicts, UNAVAILABLE for connections, retryable, in both error styles", async () => {
  for (const [error, code, grpc] of [
    [dbError({ code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 }), "aborted", Code.Aborted],
    [dbError({ code: "PROTOCOL_CONNECTION_LOST", fatal: true }), "unavailable", Code.Unavailable],
  ] as const) {
    let calls = 0;
    const givenUp: AppError[] = [];
    const failure = await retryTransient(
      async () => {
        calls++;
        throw error;
      },
      { attempts: 4, onGiveUp: (e) => givenUp.push(e) },
    ).catch((e: unknown) => e);
    assert.equal(calls, 4);
    assert.ok(AppError.is(failure, code), String(failure));
    assert.equal(failure.retryable, true);
    assert.equal(failure.cause, error);
    assert.deepEqual(givenUp, [failure]);
    const v1 = toRpcStatus(failure, "v1", silentLogger);
    assert.equal(v1.code, grpc);
    assert.doesNotMatch(v1.message, /internal error/);
    const legacy = toRpcStatus(failure, "legacy", silentLogger);
    assert.equal(legacy.code, grpc);
    const info = legacy.details[0]?.value as { reason?: string; metadata?: Record<string, string> };
    assert.equal(
      info.reason,
      "500",
      "SmartFlow's InternalError status: the gateway answers HTTP 500 as before",
    );
    assert.equal(info.metadata?.info, legacy.message);
  }
});

test("retryTransient: any other error is thrown at once, unchanged", async () => {
  let calls = 0;
  const duplicate = dbError({ code: "ER_DUP_ENTRY", errno: 1062 });
  await assert.rejects(
    retryTransient(async () => {
      calls++;
      throw duplicate;
    }),
    (e: unknown) => e === duplicate,
  );
  assert.equal(calls, 1);
});

test("retryingPort: every method is retried with its own arguments; `this` is the port", async () => {
  let failures = 2;
  const port = {
    seen: [] as unknown[],
    async save(this: { seen: unknown[] }, a: number, b: string) {
      this.seen.push([a, b]);
      if (failures-- > 0) throw dbError({ errno: 1213 });
      return `${a}${b}`;
    },
  };
  const wrapped = retryingPort(port, (work) => retryTransient(work, { attempts: 5 }));
  assert.equal(await wrapped.save(1, "x"), "1x");
  assert.deepEqual(port.seen, [
    [1, "x"],
    [1, "x"],
    [1, "x"],
  ]);
});
