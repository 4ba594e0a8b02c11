import assert from "node:assert/strict";
import { test } from "node:test";
import {
  areaOf,
  checkArchitecture,
  cyclesOf,
  MAX_FUNCTION_LINES,
  readSources,
  type SourceFile,
} from "../../scripts/check-architecture.ts";

const src = new URL("../../src", import.meta.url).pathname;
const file = (path: string, ...lines: string[]): SourceFile => ({ path, text: lines.join("\n") });
const longFunction = (comment = "") =>
  [comment, "export function f() {", ...Array.from({ length: MAX_FUNCTION_LINES }, () => "  g();"), "}"].join(
    "\n",
  );

test("the tree keeps its rules: no arrow from the domain to an adapter, no folder cycle, vendors quarantined", () => {
  assert.deepEqual(checkArchitecture(readSources(src)), []);
});

test("areas are folders of src/, with the domain's SQL adapters apart", () => {
  assert.equal(areaOf("notifications/record-state.ts"), "notifications");
  assert.equal(areaOf("notifications/ports/record-store.ts"), "notifications");
  assert.equal(areaOf("notifications/sql/record-claims.ts"), "notifications/sql");
  assert.equal(areaOf("channels/feishu/group-bot.ts"), "channels");
  assert.equal(areaOf("app.ts"), "app");
  assert.equal(areaOf("app/api-wiring.ts"), "app");
});

test("the domain may not import an adapter folder; only its sql/ folder may reach db/", () => {
  const problems = checkArchitecture([
    file("notifications/a.ts", 'import { x } from "../outbox/enqueue.ts";'),
    file("notifications/b.ts", 'import type { Db } from "../db/database.ts";'),
    file("notifications/c.ts", 'import { y } from "../channels/feishu/webhook-url.ts";'),
    file("notifications/d.ts", 'import { z } from "./sql/sql-record-store.ts";'),
    file("notifications/sql/e.ts", 'import type { Db } from "../../db/database.ts";', 'import "../d.ts";'),
    file("notifications/sql/f.ts", 'import { x } from "../../outbox/enqueue.ts";'),
  ]);
  assert.deepEqual(problems, [
    "notifications/a.ts: notifications/ may not import outbox/ (../outbox/enqueue.ts)",
    "notifications/b.ts: notifications/ may not import db/ (../db/database.ts)",
    "notifications/c.ts: notifications/ may not import channels/ (../channels/feishu/webhook-url.ts)",
    "notifications/d.ts: notifications/ may not import notifications/sql/ (./sql/sql-record-store.ts)",
    "notifications/sql/f.ts: notifications/sql/ may not import outbox/ (../../outbox/enqueue.ts)",
    "folder cycle: notifications → notifications/sql → notifications",
  ]);
});

test("lib imports nothing of ours; a folder cycle is named", () => {
  const problems = checkArchitecture([
    file("lib/a.ts", 'import { b } from "../outbox/b.ts";'),
    file("outbox/b.ts", 'import { a } from "../lib/a.ts";'),
  ]);
  assert.deepEqual(problems, [
    "lib/a.ts: lib/ may not import outbox/ (../outbox/b.ts)",
    "folder cycle: lib → outbox → lib",
  ]);
  assert.deepEqual(
    cyclesOf(
      new Map([
        ["a", new Set(["b"])],
        ["b", new Set(["c"])],
        ["c", new Set(["a"])],
      ]),
    ),
    [["a", "b", "c", "a"]],
  );
});

test("vendor clients, process.env and test-only packages stay where they belong", () => {
  const problems = checkArchitecture([
    file("outbox/a.ts", 'import kafkajs from "kafkajs";'),
    file("messaging/kafka-bus.ts", 'import kafkajs from "kafkajs";'),
    file("messaging/kafka-batches.ts", 'import type { EachBatchHandler } from "kafkajs";'),
    file("api/b.ts", 'import * as grpc from "@grpc/grpc-js";'),
    file("app/c.ts", "const level = process.env.LOG_LEVEL;"),
    file("config/load-config.ts", "export const load = (env = process.env) => env;"),
  ]);
  assert.deepEqual(problems, [
    "outbox/a.ts: imports kafkajs (only messaging/kafka-bus.ts or messaging/kafka-batches.ts may)",
    "api/b.ts: imports @grpc/grpc-js, a dev dependency (tests and benchmarks only)",
    "app/c.ts: reads process.env (only src/config/ may)",
  ]);
});

test("a long function needs a comment that says why; a long file is reported", () => {
  assert.match(checkArchitecture([file("lib/a.ts", longFunction())]).join(), /a function of 82 lines/);
  assert.deepEqual(checkArchitecture([file("lib/a.ts", longFunction("// long-function: one table"))]), []);
  const long = file("lib/b.ts", ...Array.from({ length: 251 }, (_, i) => `export const x${i} = ${i};`));
  assert.deepEqual(checkArchitecture([long]), ["lib/b.ts: 251 lines (at most 250)"]);
});
