import assert from "node:assert/strict";
import { test } from "node:test";
import { zonedTime } from "../../src/db/zoned-time.ts";

test("Asia/Shanghai wall clock: a Go producer's 10:41 is 02:41 UTC", () => {
  const shanghai = zonedTime("Asia/Shanghai");
  const instant = new Date("2026-03-02T02:41:00.123Z");
  assert.equal(shanghai.format(instant), "2026-03-02 10:41:00.123");
  assert.equal(shanghai.parse("2026-03-02 10:41:00.123").toISOString(), instant.toISOString());
  assert.equal(shanghai.parse("2026-03-02 10:41:00").toISOString(), "2026-03-02T02:41:00.000Z");
  assert.equal(shanghai.parse("2026-03-02T10:41:00.5").toISOString(), "2026-03-02T02:41:00.500Z");
});

test("zones with daylight saving follow it, both ways, next to the change", () => {
  const berlin = zonedTime("Europe/Berlin");
  assert.equal(berlin.format(new Date("2026-01-15T12:00:00Z")), "2026-01-15 13:00:00.000");
  assert.equal(berlin.format(new Date("2026-07-15T12:00:00Z")), "2026-07-15 14:00:00.000");
  // Clocks go forward at 02:00 local on 2026-03-29 (01:00 UTC).
  assert.equal(berlin.format(new Date("2026-03-29T00:59:59Z")), "2026-03-29 01:59:59.000");
  assert.equal(berlin.format(new Date("2026-03-29T01:00:00Z")), "2026-03-29 03:00:00.000");
  assert.equal(berlin.parse("2026-03-29 01:59:59").toISOString(), "2026-03-29T00:59:59.000Z");
  assert.equal(berlin.parse("2026-03-29 03:00:00").toISOString(), "2026-03-29T01:00:00.000Z");
  // Clocks go back at 03:00 local on 2026-10-25: 02:30 happens twice; the earlier instant is taken.
  assert.equal(berlin.parse("2026-10-25 02:30:00").toISOString(), "2026-10-25T00:30:00.000Z");
  for (let t = Date.parse("2026-10-24T22:00:00Z"); t < Date.parse("2026-10-25T04:00:00Z"); t += 7 * 60_000) {
    const date = new Date(t);
    const text = berlin.format(date);
    const back = berlin.parse(text).getTime();
    assert.ok(back === t || back === t - 3_600_000, `${date.toISOString()} → ${text}`);
  }
});

test("UTC and the process's local zone", () => {
  const utc = zonedTime("UTC");
  assert.equal(utc.format(new Date("2026-03-02T02:41:00Z")), "2026-03-02 02:41:00.000");
  const local = zonedTime("local");
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 7);
  assert.equal(local.parse(local.format(now)).getTime(), now.getTime());
});

test("unknown zones and malformed times are errors", () => {
  assert.throws(() => zonedTime("Mars/Olympus_Mons"), RangeError);
  assert.throws(() => zonedTime("UTC").parse("yesterday"), /not a datetime/);
});
