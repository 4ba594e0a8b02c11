/**
 * `make test-faults`: the service under broker, database, process and webhook faults, driven only from outside (environment, the
 * process, the database, the broker, the fake webhook). Each scenario sends 2,000 notifications across 1,000
 * users at 200/s; its fault hits a third of the way in. A scenario fails its test when a notification is lost,
 * when one is sent twice where that is not allowed, or when the last one goes out more than 15 s after the
 * fault healed. The table of all scenarios is printed at the end (and written to .cache/faults/runs/…).
 *
 *   FAULTS=1,3 make test-faults      only some scenarios
 *   FAULTS_KEEP=1                    keep the private MariaDB and Kafka running afterwards (and their data)
 *   FAULTS_DB_DOWN_MS=12000          MariaDB's downtime in scenario 2 (default 5 s)
 *   FAULTS_CRASH_LIMIT=3             scenario 6: starts after which the poison should be dead
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import mysql from "mysql2/promise";
import { type PrivateKafka, type PrivateMariaDb, startPrivateKafka, startPrivateMariaDb } from "./infra.ts";
import { dedupeKeyOf, OUTBOX_TABLE, userOf } from "./load.ts";
import {
  type FaultContext,
  formatTable,
  type Infra,
  runDir,
  runScenario,
  type ScenarioResult,
  type ScenarioSpec,
} from "./scenario.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const selected = new Set((process.env.FAULTS ?? "1,2,3,4,5,6").split(",").map((s) => s.trim()));
const results: ScenarioResult[] = [];
/** How long MariaDB stays down in scenario 2. */
const dbDownMs = Number(process.env.FAULTS_DB_DOWN_MS ?? 5_000);

/** Kills the running instance named `name`, records what it had in flight, and starts a replacement. */
async function killAndRestart(ctx: FaultContext, name: string, replacement: string) {
  const victim = ctx.services.get(name);
  assert.ok(victim, `no instance ${name}`);
  await victim.kill();
  ctx.markFault(`SIGKILL ${name}`);
  await ctx.captureInFlight();
  ctx.spawn(replacement);
  ctx.markHealed(`${replacement} spawned`);
}

const scenarios: ScenarioSpec[] = [
  {
    id: "1",
    title: "Kafka broker kill -9, restarted on the same data 10 s later",
    duplicates: "none",
    async fault(ctx) {
      const killed = ctx.markFault("broker kill -9");
      await ctx.infra.kafka.kill();
      await sleep(10_000 - (Date.now() - killed));
      ctx.mark("broker restart begins (same log dir and ports)");
      await ctx.infra.kafka.restart();
      ctx.markHealed("broker answers metadata again");
    },
  },
  {
    id: "2",
    title: `private MariaDB kill -9, restarted ${dbDownMs / 1000} s later`,
    duplicates: "none",
    async fault(ctx) {
      const killed = ctx.markFault("mariadbd kill -9");
      await ctx.infra.db.kill();
      await sleep(dbDownMs - (Date.now() - killed));
      ctx.mark("mariadbd restart begins (same data folder and port)");
      await ctx.infra.db.restart();
      ctx.markHealed("MariaDB answers again");
    },
  },
  {
    id: "3",
    title: "service SIGKILL mid-stream (sends in flight), restarted",
    duplicates: "in-flight",
    behaviour: { delayMs: 200 },
    fault: (ctx) => killAndRestart(ctx, "a", "a2"),
  },
  {
    id: "4",
    title: "two instances, one SIGKILLed, the other carries on",
    instances: 2,
    // The killed instance's accepted-but-unrecorded POSTs are re-sent by the survivor after the lease: the same
    // bound as scenario 3 (the goal is 0; see the report).
    duplicates: "in-flight",
    behaviour: { delayMs: 200 },
    async fault(ctx) {
      const victim = ctx.services.get("b");
      assert.ok(victim);
      await victim.kill();
      ctx.markFault("SIGKILL b");
      await ctx.captureInFlight();
      ctx.markHealed("a carries on alone (nothing heals: measured from the kill)");
    },
  },
  {
    id: "5",
    title: "webhook flaps 6 s: 30 % 5xx, 10 % hangs, 11232 bursts",
    duplicates: "none",
    async fault(ctx) {
      const since = ctx.markFault("webhook flaps");
      ctx.fake.setBehaviour({ fail5xx: 0.3, hang: 0.1, burst: { since, everyMs: 2_000, forMs: 300 } });
      await sleep(6_000);
      ctx.fake.setBehaviour({ fail5xx: 0, hang: 0, burst: null });
      ctx.markHealed("webhook healthy again");
    },
  },
  crashLoopScenario(),
];

/**
 * 6. An event whose handling kills the process. The harness makes the intake of one notification (the poison)
 * block where anyone outside can see it: two committed guard records (status `sent`, ignored by the service)
 * sit right below and above the poison's dedupe key, and an open transaction of the harness reads that key
 * `FOR UPDATE`, which finds nothing and so holds only the gap between the guards. The service's insert of the
 * poison's record waits on that gap (information_schema.innodb_lock_waits), in the middle of handling the
 * event; nothing else does (a gap lock stops only inserts into that gap, not scans or other keys). The harness
 * then SIGKILLs the service and starts it again, each time. The started/finished attempt counters on the
 * outbox row (src/outbox/crash-guard.ts) make the row `dead` after OUTBOX_MAX_CRASHES crashes (default 3),
 * and the service stays up; without them it would loop.
 * After FAULTS_CRASH_LIMIT + 2 kills (or 4 min) the harness gives up and releases the gap.
 */
function crashLoopScenario(): ScenarioSpec {
  const notifications = 2_000;
  const users = 1_000;
  const poison = Math.round(notifications / 3) - 1;
  assert.ok(poison % 10 !== 0, "the guard below the poison's key decrements its last digit");
  const limit = Number(process.env.FAULTS_CRASH_LIMIT ?? 3);
  let lock: mysql.Connection | undefined;
  return {
    id: "6",
    title: `crash-loop: handling one event kills the process (dead after ${limit} starts, the service stays up)`,
    notifications,
    users,
    duplicates: "in-flight",
    deadlineMs: 60_000,
    async prepare(ctx) {
      const key = dedupeKeyOf(poison, users);
      const below = `${key.slice(0, -1)}${Number(key.slice(-1)) - 1}z`;
      const above = `${key}z`;
      await ctx.pool.query(
        `insert into notification_records (channel, user_id, trigger_id, preview_id, trigger_type, target_type,
           target_id, dedupe_key, target_url, status) values ('feishu', ?, '', '', '', '', 0, ?, '', 'sent'),
           ('feishu', ?, '', '', '', '', 0, ?, '', 'sent')`,
        [userOf(poison, users), below, userOf(poison, users), above],
      );
      lock = await mysql.createConnection({ uri: ctx.databaseUrl });
      await lock.beginTransaction();
      const [found] = (await lock.query(
        "select id from notification_records where channel = 'feishu' and dedupe_key = ? for update",
        [key],
      )) as [unknown[], unknown];
      assert.equal(found.length, 0);
      ctx.mark(`harness holds the gap of notification ${poison}'s record key (the poison)`);
    },
    async fault(ctx) {
      const held = lock as mysql.Connection;
      const started = Date.now();
      const seen = new Set<number>();
      let kills = 0;
      let generation = 1;
      const poisonRows = async () => {
        const [rows] = (await ctx.pool.query(
          `select id, status, retry_count, last_error from ${OUTBOX_TABLE} where payload like ? order by id`,
          [`%"dedupe_key":"${dedupeKeyOf(poison, users)}"%`],
        )) as [{ id: number; status: string; retry_count: number; last_error: string | null }[], unknown];
        return rows;
      };
      const describe = (rows: Awaited<ReturnType<typeof poisonRows>>) =>
        rows.map((r) => `#${r.id} ${r.status} retry_count=${r.retry_count}`).join(", ");
      for (;;) {
        const rows = await poisonRows();
        if (rows.some((r) => r.status === "dead" && (r.last_error ?? "") !== "")) {
          ctx.markHealed(`poison outbox row dead after ${kills} crash(es): ${describe(rows)}`);
          ctx.note(
            `the poison row ended dead after ${kills} crash(es): ${rows.map((r) => r.last_error).join(" | ")}`,
          );
          break;
        }
        if (kills >= limit + 2 || Date.now() - started > 240_000) {
          ctx.note(
            `6: after ${kills} crash(es) in ${Math.round((Date.now() - started) / 1000)} s the poison row is still ${describe(rows)}: nothing counts the crashes, so it would loop (until the sweeper re-queues it after OUTBOX_STALE_PUBLISHED_MS, max_retry times)`,
          );
          await held.rollback();
          ctx.markHealed(
            `harness gives up after ${kills} crash(es) and releases the poison (${describe(rows)})`,
          );
          break;
        }
        // The intake's insert waiting on the poison's gap. information_schema.innodb_lock_waits does not show
        // it reliably on MariaDB 10.11 (a 500-row insert waited 40 s unlisted), so: an insert into the records
        // table running for over 500 ms (they take milliseconds; nothing else here blocks one).
        const [waiting] = (await held.query(
          `select id as thread from information_schema.processlist
            where command = 'Query' and info like 'insert%notification_records%' and time_ms > 500`,
        )) as [{ thread: number }[], unknown];
        const fresh = waiting.map((w) => Number(w.thread)).filter((t) => !seen.has(t));
        for (const t of fresh) seen.add(t);
        if (fresh.length > 0) {
          const name = generation === 1 ? "a" : `a${generation}`;
          const victim = ctx.services.get(name);
          assert.ok(victim, `no instance ${name}`);
          await victim.kill();
          kills++;
          if (kills === 1) ctx.markFault(`handling the poison: SIGKILL ${name}`);
          else
            ctx.mark(`handling the poison again: SIGKILL ${name} (crash ${kills}); poison ${describe(rows)}`);
          await ctx.captureInFlight();
          // The dead process's statement would wait out innodb_lock_wait_timeout: end it, as the server would.
          for (const t of fresh) await held.query(`kill connection ${t}`).catch(() => undefined);
          await sleep(500);
          generation++;
          ctx.spawn(`a${generation}`);
        }
        await sleep(50);
      }
      await held.end().catch(() => undefined);
    },
  };
}

describe("faults: the service from outside, under a broker, database, process and webhook fault", () => {
  let infra: Infra | undefined;
  let db: PrivateMariaDb | undefined;
  let kafka: PrivateKafka | undefined;
  before(async () => {
    [db, kafka] = await Promise.all([startPrivateMariaDb(), startPrivateKafka()]);
    infra = { db, kafka };
  });
  after(async () => {
    if (results.length > 0) {
      const table = formatTable(results);
      const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.id}: ${n}`));
      const text = `\n${table}\n${notes.length > 0 ? `\n${notes.join("\n")}\n` : ""}\nlogs and timelines: ${runDir}\n`;
      writeFileSync(`${runDir}/table.md`, text);
      process.stdout.write(text);
    }
    await kafka?.close();
    if (!process.env.FAULTS_KEEP) await Promise.all([db?.stop(), kafka?.stop()]);
  });

  for (const spec of scenarios) {
    test(`${spec.id}. ${spec.title}`, {
      skip: !selected.has(spec.id),
      timeout: 600_000,
    }, async (t) => {
      assert.ok(infra, "the private MariaDB and Kafka did not start");
      const result = await runScenario(infra, spec);
      results.push(result);
      t.diagnostic(
        `delivered ${result.delivered}/${result.notifications}, lost ${result.lost}, duplicated ${result.duplicated}, dead ${result.dead}, in flight at kill ${result.inFlightAtKill ?? "–"}, recovery ${result.recoveryS?.toFixed(1) ?? "never"} s`,
      );
      assert.deepEqual(
        result.failures,
        [],
        `scenario ${spec.id} missed its goals (timeline: ${result.dir}/timeline.txt)`,
      );
    });
  }
});
