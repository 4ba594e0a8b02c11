import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { parseTimeout } from "../../src/api/grpc-fast-path.ts";
import { signBotRequest } from "../../src/channels/feishu/signing.ts";
import { parseWebhookUrl } from "../../src/channels/feishu/webhook-url.ts";
import { loadConfig } from "../../src/config/load-config.ts";
import { createCoalescingLoader } from "../../src/lib/coalescing-loader.ts";
import { AppError } from "../../src/lib/errors.ts";
import { buildFeishuDedupeKey } from "../../src/notifications/dedupe-key.ts";
import { parseFeishuRequestedPayload } from "../../src/notifications/feishu-requested-payload.ts";
import {
  buildSendRequest,
  DEFAULT_FALLBACK_TEMPLATE,
  normalizeTexts,
} from "../../src/notifications/message-composer.ts";

test("webhook URLs: Flow triggers and Feishu/Lark bots on https and allowed hosts only", () => {
  const ok = (url: string) => parseWebhookUrl(url, loadConfig({}).feishu.allowedHosts);
  assert.deepEqual(ok("https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234"), {
    ok: true,
    kind: "flow_trigger",
    url: "https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234",
  });
  assert.equal(
    (ok("https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f") as { kind: string }).kind,
    "group_bot",
  );
  assert.equal(
    (ok("https://open.larksuite.com/open-apis/bot/v2/hook/0a1b2c3d-4e5f") as { kind: string }).kind,
    "group_bot",
  );
  const refused: [string, RegExp][] = [
    ["http://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234", /https/],
    ["https://evil.example/flow/api/trigger-webhook/abcdefgh1234", /not allowed/],
    ["https://www.feishu.cn.evil.example/flow/api/trigger-webhook/abcdefgh1234", /not allowed/],
    ["https://user:pw@www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234", /credentials/],
    ["https://www.feishu.cn/flow/api/trigger-webhook/", /no valid key/],
    ["https://www.feishu.cn/flow/api/trigger-webhook/abc/../x", /no valid key|must be/],
    ["https://www.feishu.cn/other/abcdefgh1234", /must be a Feishu Flow trigger/],
    ["https://www.feishu.cn/flow/api/trigger-webhook/abcdefgh1234?x=1", /query/],
    ["https://www.feishu.cn:8443/flow/api/trigger-webhook/abcdefgh1234", /not allowed/],
    ["not a url", /not a valid URL/],
  ];
  for (const [url, reason] of refused) {
    const parsed = ok(url);
    assert.equal(parsed.ok, false, url);
    if (!parsed.ok) assert.match(parsed.reason, reason, url);
  }
  assert.equal(
    parseWebhookUrl("https://127.0.0.1:8443/open-apis/bot/v2/hook/abcdefgh", ["127.0.0.1:8443"]).ok,
    true,
  );
});

test("bot signature: HMAC-SHA256 keyed with timestamp\\nsecret over an empty message, base64", () => {
  const expected = createHmac("sha256", "1700000000\nSEC").update(Buffer.alloc(0)).digest("base64");
  assert.equal(signBotRequest(1_700_000_000, "SEC"), expected);
  assert.notEqual(signBotRequest(1_700_000_001, "SEC"), expected, "a new timestamp, a new signature");
});

test("dedupe keys are byte-compatible with SmartFlow's Go builder", () => {
  const at = new Date("2026-03-02T10:41:00+08:00");
  assert.equal(
    buildFeishuDedupeKey(42n, " unfinished_feedback ", at, 8 * 60),
    "42:unfinished_feedback:2026-03-02T10:30:00+08:00",
  );
  assert.equal(
    buildFeishuDedupeKey(42n, "t", new Date("2026-03-02T10:29:59Z"), 0),
    "42:t:2026-03-02T10:00:00Z",
  );
  assert.equal(
    buildFeishuDedupeKey(42n, "t", new Date("2026-03-02T10:31:00Z"), 0),
    "42:t:2026-03-02T10:30:00Z",
  );
  assert.equal(buildFeishuDedupeKey(0n, "t", at, 0), "");
  assert.equal(buildFeishuDedupeKey(42n, " ", at, 0), "");
  assert.equal(buildFeishuDedupeKey(42n, "t", undefined, 0), "");
});

test("message texts follow §6.5: links in summaries fall back, 180 code points, target URL appended", () => {
  assert.deepEqual(normalizeTexts("see https://x.example", ""), {
    summaryText: "",
    fallbackText: DEFAULT_FALLBACK_TEMPLATE,
    fallbackUsed: true,
  });
  assert.equal(normalizeTexts("visit WWW.example.com", "fb").fallbackUsed, true);
  assert.equal(Array.from(normalizeTexts("调".repeat(400), "").summaryText).length, 180);
  const base = {
    id: 1,
    userId: 2n,
    triggerId: "t",
    previewId: "p",
    triggerType: "x",
    targetType: "y",
    targetId: 3n,
    targetUrl: "/assistant/c1",
    summaryText: "明天调整",
    fallbackText: "fb",
    fallbackUsed: false,
    traceId: "",
    attemptCount: 2,
  };
  assert.equal(buildSendRequest(base).messageText, "明天调整\n/assistant/c1");
  assert.equal(
    buildSendRequest({ ...base, fallbackUsed: true, fallbackText: "看 /assistant/c1" }).messageText,
    "看 /assistant/c1",
  );
  assert.equal(buildSendRequest(base).attemptCount, 2);
});

test("payload validation names the field, in SmartFlow's order", () => {
  const valid = {
    user_id: 1,
    preview_id: "p",
    dedupe_key: "k",
    target_url: "/assistant/x",
    requested_at: "2026-03-02T10:41:00+08:00",
  };
  assert.equal(parseFeishuRequestedPayload(JSON.stringify(valid)).userId, 1n);
  const cases: [unknown, string][] = [
    [{ ...valid, user_id: "1" }, "user_id"],
    [{ ...valid, user_id: 0, preview_id: "" }, "user_id"],
    [{ ...valid, preview_id: "" }, "preview_id"],
    [{ ...valid, dedupe_key: "" }, "dedupe_key"],
    [{ ...valid, target_url: "//evil.example/x" }, "target_url"],
    [{ ...valid, target_url: "/assistant/https://x" }, "target_url"],
    [{ ...valid, requested_at: "0001-01-01T00:00:00Z" }, "requested_at"],
    [[1, 2], "payload"],
  ];
  for (const [payload, field] of cases) {
    assert.throws(
      () => parseFeishuRequestedPayload(JSON.stringify(payload)),
      (error: unknown) =>
        (error as { field?: string }).field === field &&
        (error as { retryable?: boolean }).retryable === false,
      JSON.stringify(payload),
    );
  }
  assert.throws(() => parseFeishuRequestedPayload("{not json"), /not JSON/);
});

test("payload ids are Go's int64: exact up to 2^63 − 1, anything else is poison naming the field", () => {
  const rest =
    '"preview_id":"p","dedupe_key":"k","target_url":"/assistant/x","requested_at":"2026-03-02T10:41:00Z"';
  const parse = (ids: string) => parseFeishuRequestedPayload(`{${ids},${rest}}`);
  const big = parse('"user_id":9223372036854775807,"target_id":9007199254740993,"notification_id":12');
  assert.deepEqual([big.userId, big.targetId, big.notificationId], [2n ** 63n - 1n, 2n ** 53n + 1n, 12]);
  // A notification_id past 2^53 names none of this service's records.
  assert.equal(parse('"user_id":5,"notification_id":9007199254740993').notificationId, 0);
  assert.equal(parse('"user_id":5,"target_id":-3').targetId, -3n, "target_id is not validated (as Go)");
  const cases: [string, string][] = [
    ['"user_id":9223372036854775808', "user_id"],
    ['"user_id":-1', "user_id"],
    ['"user_id":1.5', "user_id"],
    ['"user_id":1e3', "user_id"],
    ['"user_id":5,"target_id":2.0', "target_id"],
    ['"user_id":5,"target_id":-9223372036854775809', "target_id"],
    ['"user_id":5,"notification_id":"7"', "notification_id"],
  ];
  for (const [ids, field] of cases) {
    assert.throws(
      () => parse(ids),
      (error: unknown) => AppError.is(error, "poison") && error.field === field,
      ids,
    );
  }
});

test("grpc-timeout parsing", () => {
  assert.equal(parseTimeout("1S"), 1_000);
  assert.equal(parseTimeout("250m"), 250);
  assert.equal(parseTimeout("2H"), 7_200_000);
  assert.equal(parseTimeout("100u"), 0.1);
  assert.equal(parseTimeout("5x"), undefined);
  assert.equal(parseTimeout("123456789S"), undefined);
  assert.equal(parseTimeout(undefined), undefined);
});

test("coalescing loader: concurrent reads share loads, and a read after a write waits for a new load", async () => {
  const loads: number[][] = [];
  let value = "old";
  const loader = createCoalescingLoader(async (keys: readonly number[]) => {
    loads.push([...keys]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    return new Map(keys.map((k) => [k, `${value}-${k}`]));
  }, 1);
  const first = await Promise.all([loader.load(1), loader.load(2), loader.load(1)]);
  assert.deepEqual(first, ["old-1", "old-2", "old-1"]);
  assert.deepEqual(loads, [[1, 2]]);
  value = "new";
  assert.equal(await loader.load(1), "new-1");
  assert.equal(loads.length, 2);
});
