import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { App } from "../../src/app.ts";
import { feishuEnv } from "../support/delivery.ts";
import { type FakeFeishu, startFakeFeishu } from "../support/fake-feishu.ts";
import {
  buildGoGateway,
  type GoGateway,
  type GoResult,
  startGoGateway,
  UNAVAILABLE_EXIT,
} from "../support/go-gateway.ts";
import { createTestEnv, startApp, type TestEnv } from "../support/harness.ts";

// SmartFlow's gateway is Go (go-zero zrpc over grpc-go). This builds a grpc-go 1.33 client from Debian's
// packages and the ORIGINAL proto (scripts/go-gateway.sh, test/go-gateway/main.go) and calls the service
// with it. Where the packages cannot be had, the suite is skipped with the script's reason.
const build = await buildGoGateway();

const DOMAIN = "smartflow.notification";

/** SmartFlow's `respond` Info of each status: the Go service's message, which the gateway shows as `info`. */
const goInfo: Record<string, string> = {
  "40014": "unauthorized",
  "40004": "missing param",
  "40005": "wrong param type",
};

/**
 * The status carries the ErrorInfo first, as the gateway decodes it, and the message is its info, byte for
 * byte the Go service's; then this service's own words in a BadRequest detail (which the gateway ignores).
 */
function assertErrorInfo(result: GoResult, code: string, reason: string) {
  assert.equal(result.code, code, JSON.stringify(result));
  assert.deepEqual(result.details, ["google.rpc.ErrorInfo", "*errdetails.BadRequest"]);
  assert.equal(result.error_info?.domain, DOMAIN);
  assert.equal(result.error_info?.reason, reason);
  assert.deepEqual(result.error_info?.metadata, { info: goInfo[reason] });
  assert.equal(result.message, goInfo[reason]);
  assert.equal(result.response, undefined);
}

describe("SmartFlow's Go gateway stack (grpc-go 1.33, conn.Invoke) against the service on MariaDB + Kafka", {
  skip: build.available ? false : build.reason,
}, () => {
  let fake: FakeFeishu;
  let testEnv: TestEnv;
  let app: App;
  let gateway: GoGateway;
  before(async () => {
    if (!build.available) return;
    fake = await startFakeFeishu();
    testEnv = await createTestEnv("mysql+kafka", feishuEnv(fake));
    app = await startApp(testEnv);
    // One client process, one ClientConn, for every case below: as the gateway holds one per service.
    gateway = startGoGateway(build.binary, `127.0.0.1:${app.apiPort()}`);
  });
  after(async () => {
    if (!build.available) return;
    assert.equal(await gateway.close(), 0, gateway.stderr());
    await app.stop();
    await fake.close();
    await testEnv.dispose();
  });

  test("all four RPCs: save a Flow trigger, get it masked, test it through the fake, delete it", async () => {
    const key = "gwflow000701";
    const saved = await gateway.run({
      op: "save",
      user_id: 701,
      enabled: true,
      webhook_url: `  ${fake.flowUrl(key)}  `,
      auth_type: " Bearer ",
      bearer_token: "tok-701",
    });
    assert.equal(saved.code, "OK", JSON.stringify(saved));
    assert.equal(saved.message, "");
    assert.equal(saved.error_info, undefined);
    const channel = {
      channel: "feishu_webhook",
      enabled: true,
      configured: true,
      webhook_url_mask: `${fake.origin}/flow/api/trigger-webhook/gwfl...0701`,
      auth_type: "bearer",
      has_bearer_token: true,
      last_test_status: "",
      last_test_error: "",
      last_test_at_unix_nano: "0",
    };
    assert.deepEqual(saved.response, channel);
    assert.deepEqual(saved.header?.["content-type"], ["application/grpc"]);

    const read = await gateway.run({ op: "get", user_id: 701 });
    assert.equal(read.code, "OK");
    assert.deepEqual(read.response, channel);

    const tested = await gateway.run({ op: "test", user_id: 701, deadline_ms: 5_000 });
    assert.equal(tested.code, "OK", JSON.stringify(tested));
    const result = tested.response as {
      status: string;
      outcome: string;
      provider: string;
      skipped: boolean;
      sent_at_unix_nano: string;
      channel: { last_test_status: string; last_test_at_unix_nano: string };
    };
    assert.deepEqual(
      [result.status, result.outcome, result.provider, result.skipped],
      ["success", "success", "feishu", false],
    );
    assert.ok(BigInt(result.sent_at_unix_nano) > 0n);
    assert.equal(result.channel.last_test_status, "success");
    assert.ok(BigInt(result.channel.last_test_at_unix_nano) > 0n);
    const [post] = fake.requestsFor(key);
    assert.equal(post?.headers.authorization, "Bearer tok-701");
    assert.equal(post?.body.trigger_type, "manual_test");
    assert.equal(fake.requestsFor(key).length, 1);

    const deleted = await gateway.run({ op: "delete", user_id: 701 });
    assert.deepEqual([deleted.code, deleted.response], ["OK", {}]);
    const again = await gateway.run({ op: "delete", user_id: 701 });
    assert.deepEqual([again.code, again.response], ["OK", {}], "delete is idempotent");

    const gone = await gateway.run({ op: "get", user_id: 701 });
    assert.equal(gone.code, "OK");
    assert.deepEqual(gone.response, {
      channel: "feishu_webhook",
      enabled: false,
      configured: false,
      webhook_url_mask: "",
      auth_type: "none",
      has_bearer_token: false,
      last_test_status: "",
      last_test_error: "",
      last_test_at_unix_nano: "0",
    });
    assert.equal(gone.dials, 1);
  });

  test("errors decode from google.rpc.ErrorInfo as the gateway does: code, reason, info", async () => {
    for (const userId of [0, -5]) {
      for (const op of ["get", "save", "delete", "test"] as const) {
        const result = await gateway.run({ op, user_id: userId, webhook_url: fake.flowUrl("gwflow000702") });
        assertErrorInfo(result, "Unauthenticated", "40014");
      }
    }
    const missingUrl = await gateway.run({ op: "save", user_id: 702, enabled: true, webhook_url: "   " });
    assertErrorInfo(missingUrl, "InvalidArgument", "40004");
    const missingToken = await gateway.run({
      op: "save",
      user_id: 702,
      webhook_url: fake.flowUrl("gwflow000702"),
      auth_type: "bearer",
    });
    assertErrorInfo(missingToken, "InvalidArgument", "40004");
    for (const bad of [
      `http://${fake.host}/flow/api/trigger-webhook/gwflow000702`,
      "https://evil.example.com/flow/api/trigger-webhook/gwflow000702",
      `${fake.origin}/somewhere/else`,
      "not a url",
    ]) {
      const wrong = await gateway.run({ op: "save", user_id: 702, enabled: true, webhook_url: bad });
      assertErrorInfo(wrong, "InvalidArgument", "40005");
    }
    const untouched = await gateway.run({ op: "get", user_id: 702 });
    assert.equal((untouched.response as { configured: boolean }).configured, false);
  });

  test("a deadline that expires while the webhook hangs is DeadlineExceeded; the connection serves on", async () => {
    const key = "gwflow000703";
    const saved = await gateway.run({
      op: "save",
      user_id: 703,
      enabled: true,
      webhook_url: fake.flowUrl(key),
    });
    assert.equal(saved.code, "OK");
    fake.script(key, { hang: true }, { hang: true });

    const late = await gateway.run({ op: "test", user_id: 703, deadline_ms: 300 });
    assert.equal(late.code, "DeadlineExceeded", JSON.stringify(late));
    // Both ends time the same deadline (grpc-timeout): grpc-go's own timer usually ends the call first (no
    // details); when the server's fires first, its answer carries the same code with its ErrorInfo.
    if (late.error_info !== undefined) {
      assert.deepEqual(late.error_info, {
        domain: "smartflow.notification",
        reason: "500",
        metadata: { info: "the deadline was exceeded" },
      });
    }
    assert.ok(late.elapsed_ms >= 299 && late.elapsed_ms < 900, `answered after ${late.elapsed_ms} ms`);
    assert.equal(fake.requestsFor(key).length, 1, "the call was in flight: the webhook had been called");

    // The gateway's HTTP client went away (its request context was cancelled).
    const cancelled = await gateway.run({ op: "test", user_id: 703, cancel_ms: 200, deadline_ms: 5_000 });
    assert.equal(cancelled.code, "Canceled", JSON.stringify(cancelled));
    assert.ok(cancelled.elapsed_ms < 900, `answered after ${cancelled.elapsed_ms} ms`);
    assert.equal(fake.requestsFor(key).length, 2);

    const read = await gateway.run({ op: "get", user_id: 703, deadline_ms: 2_000 });
    assert.equal(read.code, "OK");
    assert.equal((read.response as { configured: boolean }).configured, true);
    const tested = await gateway.run({ op: "test", user_id: 703, deadline_ms: 5_000 });
    assert.equal(tested.code, "OK");
    assert.equal((tested.response as { outcome: string }).outcome, "success");
    assert.equal(tested.dials, 1, "the same connection, never redialled");
  });

  test("600 concurrent calls on one ClientConn: every one OK, one dial", async () => {
    const users = Array.from({ length: 10 }, (_, i) => 710 + i);
    for (const userId of users) {
      const saved = await gateway.run({
        op: "save",
        user_id: userId,
        enabled: true,
        webhook_url: fake.botUrl(`gwbot00${userId}`),
      });
      assert.equal(saved.code, "OK");
    }
    const burst = await gateway.run({
      op: "burst",
      n: 600,
      calls: [
        ...users.map((userId) => ({ op: "get" as const, user_id: userId, deadline_ms: 20_000 })),
        {
          op: "save",
          user_id: 720,
          enabled: true,
          webhook_url: fake.flowUrl("gwflow000720"),
          deadline_ms: 20_000,
        },
        { op: "delete", user_id: 721, deadline_ms: 20_000 },
      ],
    });
    assert.deepEqual(burst.counts, { OK: 600 }, JSON.stringify(burst));
    assert.equal(burst.dials, 1);

    const check = await gateway.run({ op: "get", user_id: 715 });
    assert.equal(
      (check.response as { webhook_url_mask: string }).webhook_url_mask,
      fake.botUrl("gwbo...0715"),
    );
    assert.equal(check.dials, 1);
  });

  // SmartFlow's user ids are int64. Each id's outcome is collected, so a failure names every wrong answer.
  const mask = (id: bigint) => fake.flowUrl(`gwid...${String(id).slice(-4)}`);
  const urlFor = (id: bigint) => fake.flowUrl(`gwid${id}`);
  const outcome = (what: string, r: GoResult) => `${what}: ${r.code} ${JSON.stringify(r.message)}`;
  const maskOf = (r: GoResult) => (r.response as { webhook_url_mask?: string } | undefined)?.webhook_url_mask;

  /** Saves each id's own URL, then reads each back; returns what went wrong. */
  async function saveThenRead(ids: readonly bigint[]): Promise<string[]> {
    const wrong: string[] = [];
    for (const id of ids) {
      const saved = await gateway.run({ op: "save", user_id: id, enabled: true, webhook_url: urlFor(id) });
      if (saved.code !== "OK") wrong.push(outcome(`save ${id}`, saved));
    }
    for (const id of ids) {
      const read = await gateway.run({ op: "get", user_id: id });
      if (read.code !== "OK") wrong.push(outcome(`get ${id}`, read));
      else if (maskOf(read) !== mask(id)) wrong.push(`get ${id}: reads ${JSON.stringify(maskOf(read))}`);
    }
    return wrong;
  }

  test("ids past 2^31 − 1: 2147483647 and 2147483648 each read their own channel", async () => {
    const wrong = await saveThenRead([2147483647n, 2147483648n]);
    const deleted = await gateway.run({ op: "delete", user_id: 2147483648n });
    if (deleted.code !== "OK") wrong.push(outcome("delete 2147483648", deleted));
    const survivor = await gateway.run({ op: "get", user_id: 2147483647n });
    if (maskOf(survivor) !== mask(2147483647n)) {
      wrong.push(`after deleting 2147483648, get 2147483647 reads ${JSON.stringify(maskOf(survivor))}`);
    }
    assert.deepEqual(wrong, []);
  });

  test("ids 2147483648, 5000000000 and 9223372036854775807 are saved and read back as themselves", async () => {
    assert.deepEqual(await saveThenRead([2147483648n, 5000000000n, 9223372036854775807n]), []);
  });
});

describe("the Go gateway's ClientConn across a stop and a restart of the service (SQLite + in-process bus)", {
  skip: build.available ? false : build.reason,
}, () => {
  test("a call in flight at stop finishes (GOAWAY); then Unavailable at once; the same ClientConn reconnects", async () => {
    if (!build.available) return;
    const fake = await startFakeFeishu();
    const testEnv = await createTestEnv("sqlite+memory", feishuEnv(fake));
    let app = await startApp(testEnv);
    const port = app.apiPort();
    const gateway = startGoGateway(build.binary, `127.0.0.1:${port}`);
    try {
      const key = "gwflow000801";
      const saved = await gateway.run({
        op: "save",
        user_id: 801,
        enabled: true,
        webhook_url: fake.flowUrl(key),
      });
      assert.equal(saved.code, "OK");
      fake.script(key, { delayMs: 600 });
      const inFlight = gateway.run({ op: "test", user_id: 801, deadline_ms: 5_000 });
      await fake.waitForRequests(key, 1);
      const stopped = app.stop();
      const finished = await inFlight;
      assert.equal(finished.code, "OK", JSON.stringify(finished));
      assert.equal((finished.response as { outcome: string }).outcome, "success");
      await stopped;

      // Without WaitForReady (the gateway sets none) a call on a broken connection fails fast.
      const down = await gateway.run({ op: "get", user_id: 801, deadline_ms: 2_000 });
      assert.equal(down.code, "Unavailable", JSON.stringify(down));
      assert.ok(down.elapsed_ms < 1_000);

      app = await startApp(testEnv, { env: { GRPC_ADDR: `127.0.0.1:${port}` } });
      // grpc-go redials with its backoff (1 s base, ×1.6, ±20 %); until then calls fail fast.
      let back = down;
      for (let i = 0; i < 50 && back.code !== "OK"; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        back = await gateway.run({ op: "get", user_id: 801, deadline_ms: 2_000 });
      }
      assert.equal(back.code, "OK", JSON.stringify(back));
      assert.equal((back.response as { configured: boolean }).configured, true);
      assert.ok(back.dials >= 2, "a new connection, dialled by the same ClientConn");
    } finally {
      assert.equal(await gateway.close(), 0, gateway.stderr());
      await app.stop();
      await fake.close();
      await testEnv.dispose();
    }
  });
});

describe("scripts/go-gateway.sh when the packages cannot be had", () => {
  test("GO_GATEWAY_UNAVAILABLE=1 simulates it: exit 3 and a reason, which skips the suites above", async () => {
    const simulated = await buildGoGateway({ ...process.env, GO_GATEWAY_UNAVAILABLE: "1" });
    assert.deepEqual(simulated, {
      available: false,
      reason: "grpc-go client not built: go-gateway.sh: unavailable: GO_GATEWAY_UNAVAILABLE=1 (simulated)",
    });
  });

  test("packages missing and apt-get failing: exit 3 naming the packages", async () => {
    // Stand-ins first on PATH: dpkg-query finds nothing installed, apt-get cannot install anything.
    const bin = await mkdtemp(join(tmpdir(), "go-gateway-stubs-"));
    try {
      await writeFile(join(bin, "dpkg-query"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
      await writeFile(join(bin, "apt-get"), '#!/bin/sh\necho "E: stub apt-get $*" >&2\nexit 100\n', {
        mode: 0o755,
      });
      const failed = await buildGoGateway({ ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` });
      assert.equal(failed.available, false);
      assert.match(
        failed.available ? "" : failed.reason,
        /unavailable: (apt-get cannot install|apt-get update failed|not root).*golang-google-grpc-dev/,
      );
      assert.equal(UNAVAILABLE_EXIT, 3);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
});
