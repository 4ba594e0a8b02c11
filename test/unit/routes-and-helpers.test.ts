import assert from "node:assert/strict";
import { test } from "node:test";
import { mapByKey } from "../../src/lib/concurrency.ts";
import { truncateCodePoints } from "../../src/lib/text.ts";
import { FEISHU_REQUESTED_EVENT } from "../../src/notifications/feishu-requested-payload.ts";
import { createRouteTable } from "../../src/outbox/routes.ts";

test("routes follow SmartFlow's naming and overrides reach every reader", () => {
  const routes = createRouteTable(
    { notification: { table: "custom_outbox" } },
    { [FEISHU_REQUESTED_EVENT]: "notification" },
  );
  assert.deepEqual(routes.event(FEISHU_REQUESTED_EVENT), {
    service: "notification",
    table: "custom_outbox",
    topic: "smartflow.notification.outbox",
    groupId: "smartflow-notification-outbox-consumer",
  });
  assert.equal(routes.service("active-scheduler").table, "active_scheduler_outbox_messages");
  assert.equal(routes.service("").service, "agent");
  assert.equal(routes.event("unknown.event"), undefined);
});

test("last_error is cut by code points, never inside a character", () => {
  const text = "投递失败😀".repeat(1000);
  const cut = truncateCodePoints(text, 2000);
  assert.equal(Array.from(cut).length, 2000);
  assert.ok(!/\uFFFD/.test(Buffer.from(cut, "utf8").toString("utf8")));
  assert.ok(text.startsWith(cut));
  assert.equal(truncateCodePoints("short", 2000), "short");
});

test("mapByKey keeps each key in order and runs keys in parallel", async () => {
  const items = ["a1", "b1", "a2", "c1", "b2", "a3"];
  const started: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const results = await mapByKey(
    items,
    (item) => item.charAt(0),
    8,
    async (item) => {
      started.push(item);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      return item.toUpperCase();
    },
  );
  assert.deepEqual(results, ["A1", "B1", "A2", "C1", "B2", "A3"]);
  assert.deepEqual(
    started.filter((s) => s.startsWith("a")),
    ["a1", "a2", "a3"],
  );
  assert.equal(maxInFlight, 3);
});
