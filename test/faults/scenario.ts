/**
 * One fault scenario, driven from outside the service: a private MariaDB database, a topic and group of its
 * own on the private broker, the service as 1 or 2 child processes, the fake Feishu in its own process, and
 * Go-format outbox rows inserted at a fixed rate. A third of the way in, the scenario's fault hits; it marks
 * when the fault healed. The run ends once every notification was accepted by the fake Feishu or is dead with
 * a reason (or a deadline passed), plus a settle time that lets late duplicates show.
 *
 * Measured: delivered (at least one accepted POST), duplicated (more than one), dead (record or outbox row
 * `dead` with a reason), lost (neither delivered nor dead), the sends in flight at a kill (records `sending`
 * right after the SIGKILL, the most a kill can duplicate), and the recovery time: fault healed → the last
 * notification's first accepted POST. Each run writes its service logs, a timeline and a summary under
 * .cache/faults/runs/<run>/s<id>/.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import type mysql from "mysql2/promise";
import { type Behaviour, caFile, type FakeFeishu, startFakeFeishu } from "./fake-feishu.ts";
import { faultsDir, type GroupView, type PrivateKafka, type PrivateMariaDb } from "./infra.ts";
import { dedupeKeyOf, insertChannels, type Load, OUTBOX_TABLE, startLoad } from "./load.ts";
import { type LogLine, type ServiceProcess, spawnService } from "./service.ts";

/** `FAULTS_RECOVERY_GOAL=report` (how `make test` runs the faults): a slow recovery is a note, not a failure. */
const recoveryGoalAsserted = process.env.FAULTS_RECOVERY_GOAL !== "report";

export interface Infra {
  readonly db: PrivateMariaDb;
  readonly kafka: PrivateKafka;
}

/**
 * The service's configuration for every scenario: the production defaults except delays that would make a
 * run take minutes. Each is an existing environment variable (README, Configuration).
 */
export const tunedEnv: Readonly<Record<string, string>> = {
  // A webhook attempt times out after 1.5 s (default 5 s), so the flapping webhook's hangs cost little.
  FEISHU_TIMEOUT_MS: "1500",
  // A killed sender's records are re-sent 4 s after its claim (default 10 min); must exceed 2 × the timeout.
  DELIVERY_SENDING_LEASE_MS: "4000",
  // Retries after 1, 2, 4, 8 s (default 5, 10, 20, 30 min), found by a scan every second (default 60 s).
  DELIVERY_RETRY_BASE_MS: "1000",
  DELIVERY_RETRY_MAX_MS: "8000",
  DELIVERY_RETRY_SCAN_INTERVAL_MS: "1000",
  // A record taken in but never claimed (its instance died) is retried after 3 s (default 2 min).
  DELIVERY_STRANDED_AFTER_MS: "3000",
  // The sweeper looks every second (default 30 s) for rows stuck in `published`, and a publish times out after
  // 3 s (default 10 s): a killed relay's claimed, unacknowledged batch is re-queued and goes out again 7 s
  // (2 × the publish timeout + 1 s) after its claim.
  OUTBOX_SWEEP_INTERVAL_MS: "1000",
  OUTBOX_PUBLISH_TIMEOUT_MS: "3000",
  SHUTDOWN_GRACE_MS: "5000",
};

export interface FaultContext {
  readonly infra: Infra;
  readonly fake: FakeFeishu;
  readonly pool: mysql.Pool;
  readonly databaseUrl: string;
  readonly load: Load;
  readonly users: number;
  /** The running instances by name. */
  readonly services: Map<string, ServiceProcess>;
  /** Starts one more instance (or a replacement) with the scenario's environment. */
  spawn(name: string): ServiceProcess;
  mark(what: string): number;
  /** The fault hits now (the first call counts). */
  markFault(what: string): number;
  /** The fault healed now: recovery is measured from here. */
  markHealed(what: string): number;
  /** Right after a SIGKILL: the records `sending` (claimed, result not written): the most it can duplicate. */
  captureInFlight(): Promise<number>;
  /** A note for the report (shown under the table). */
  note(text: string): void;
}

export interface ScenarioSpec {
  readonly id: string;
  readonly title: string;
  readonly instances?: number;
  readonly notifications?: number;
  readonly users?: number;
  readonly perSecond?: number;
  /** Share of the rows inserted when the fault hits. */
  readonly faultAfter?: number;
  readonly env?: Record<string, string>;
  /** The fake Feishu's behaviour for the whole run (the fault may change it). */
  readonly behaviour?: Partial<Behaviour>;
  /** Duplicates allowed: none, or only notifications that were being sent at a kill. */
  readonly duplicates: "none" | "in-flight";
  /** Runs before the load starts (e.g. to take a lock the fault uses). */
  readonly prepare?: (ctx: FaultContext) => Promise<void>;
  readonly fault: (ctx: FaultContext) => Promise<void>;
  readonly recoveryGoalMs?: number;
  /** How long after the heal to wait for the last notification. */
  readonly deadlineMs?: number;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly notifications: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly dead: number;
  readonly inFlightAtKill: number | null;
  readonly duplicatesBeyondInFlight: number;
  /** Fault healed → last notification delivered, in seconds (null: some never went out). */
  readonly recoveryS: number | null;
  /** Last insert → last notification delivered, in seconds. */
  readonly afterLoadS: number | null;
  readonly faultToHealS: number | null;
  readonly instancesAliveAtEnd: boolean;
  readonly runS: number;
  readonly notes: readonly string[];
  readonly failures: readonly string[];
  readonly dir: string;
  readonly loadAvg: readonly [number, number];
}

const runStamp = process.env.FAULTS_RUN ?? new Date().toISOString().replace(/[:.]/g, "-");
export const runDir = `${faultsDir}/runs/${runStamp}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runScenario(infra: Infra, spec: ScenarioSpec): Promise<ScenarioResult> {
  const t0 = Date.now();
  const load0 = loadavg()[0] ?? 0;
  const notifications = spec.notifications ?? 2_000;
  const users = spec.users ?? 1_000;
  const perSecond = spec.perSecond ?? 200;
  const dir = `${runDir}/s${spec.id}`;
  mkdirSync(dir, { recursive: true });
  const tag = randomBytes(3).toString("hex");
  const events: { at: number; what: string }[] = [];
  const notes: string[] = [];
  const lines: LogLine[] = [];
  const mark = (what: string) => {
    const at = Date.now();
    events.push({ at, what });
    return at;
  };
  let faultAt: number | undefined;
  let healAt: number | undefined;
  const inFlight = new Set<number>();
  let inFlightCount: number | null = null;

  const fake = await startFakeFeishu();
  fake.setBehaviour({ delayMs: 50, enforceLimit: true, ...spec.behaviour });
  const database = await infra.db.createDatabase(`faults_s${spec.id}`);
  const env: Record<string, string> = {
    LOG_LEVEL: "info",
    DATABASE_URL: database.url,
    KAFKA_BROKERS: infra.kafka.brokers,
    OUTBOX_SERVICES_NOTIFICATION_TOPIC: `faults.s${spec.id}.${tag}`,
    OUTBOX_SERVICES_NOTIFICATION_GROUP_ID: `faults-s${spec.id}-${tag}`,
    GRPC_ADDR: "127.0.0.1:0",
    METRICS_ADDR: "127.0.0.1:0",
    FEISHU_ALLOWED_HOSTS: fake.host,
    FEISHU_CA_FILE: caFile,
    FRONTEND_BASE_URL: "https://app.faults.test",
    ...tunedEnv,
    ...spec.env,
  };
  const groupId = env.OUTBOX_SERVICES_NOTIFICATION_GROUP_ID as string;
  const services = new Map<string, ServiceProcess>();
  const spawn = (name: string) => {
    const service = spawnService(name, env, `${dir}/service-${name}.log`, lines);
    services.set(name, service);
    mark(`spawned ${name} (pid ${service.pid})`);
    void service.started.then(
      (at) => events.push({ at, what: `${name} logged "started"` }),
      () => undefined,
    );
    return service;
  };

  // The group's membership, watched from outside, for the timeline.
  let watching = true;
  let lastGroup = "";
  const groupWatch = (async () => {
    while (watching) {
      const view: GroupView | undefined = await infra.kafka.describeGroup(groupId);
      const text = view
        ? `${view.state}, ${view.members.length} member(s)${view.members
            .map((m) => ` ${m.memberId.slice(-6)}:[${m.partitions.join(",")}]`)
            .join("")}`
        : "broker not answering";
      if (text !== lastGroup) {
        lastGroup = text;
        mark(`group: ${text}`);
      }
      await sleep(250);
    }
  })();

  const failures: string[] = [];
  let load: Load | undefined;
  let lastInsert = 0;
  let result: ScenarioResult | undefined;
  let loadStart = Date.now();
  let lastDelivered = 0;
  try {
    const instances = spec.instances ?? 1;
    // One after the other: instances started at once on a fresh database race on its migrations (one exits
    // with "Duplicate key name 'idx_outbox_status_next'"; see the report).
    for (let i = 0; i < instances; i++) await spawn(String.fromCharCode(97 + i)).started;
    await insertChannels(database.pool, users, fake.botUrl);

    // Warm-up: a few notifications through the whole pipeline, then every instance in the group.
    const warm = Array.from({ length: 20 }, (_, i) => 100_000 + i);
    const warmLoad = startLoad({
      pool: database.pool,
      topic: env.OUTBOX_SERVICES_NOTIFICATION_TOPIC as string,
      numbers: warm,
      users,
      perSecond: 1_000,
    });
    await waitUntil(
      () => warm.every((n) => fake.accepted(n).length > 0),
      90_000,
      "warm-up notifications delivered",
    );
    await warmLoad.done;
    await waitUntil(
      () => lastGroup.startsWith(`Stable, ${instances} member`),
      90_000,
      `${instances} member(s) in the group`,
    );
    mark("warm-up done");

    const numbers = Array.from({ length: notifications }, (_, n) => n);
    const ctx: FaultContext = {
      infra,
      fake,
      pool: database.pool,
      databaseUrl: database.url,
      get load() {
        return load as Load;
      },
      users,
      services,
      spawn,
      mark,
      markFault: (what) => {
        const at = mark(`FAULT: ${what}`);
        faultAt ??= at;
        return at;
      },
      markHealed: (what) => {
        const at = mark(`HEALED: ${what}`);
        healAt = at;
        return at;
      },
      async captureInFlight() {
        const [rows] = (await database.pool.query(
          "select dedupe_key from notification_records where status = 'sending'",
        )) as [{ dedupe_key: string }[], unknown];
        for (const row of rows) inFlight.add(Number(row.dedupe_key.split(":").pop()));
        inFlightCount = (inFlightCount ?? 0) + rows.length;
        mark(`${rows.length} record(s) sending at the kill`);
        return rows.length;
      },
      note: (text) => notes.push(text),
    };
    await spec.prepare?.(ctx);
    loadStart = mark("load starts");
    load = startLoad({
      pool: database.pool,
      topic: env.OUTBOX_SERVICES_NOTIFICATION_TOPIC as string,
      numbers,
      users,
      perSecond,
    });
    const faultDone = load
      .reached(Math.round(notifications * (spec.faultAfter ?? 1 / 3)))
      .then(() => spec.fault(ctx));
    lastInsert = await load.done;
    mark(`load done (${load.failures()} failed insert(s) retried)`);
    await faultDone;
    if (healAt === undefined) throw new Error("the fault never marked itself healed");

    // Until every notification is delivered or dead, or the deadline.
    const deadline = healAt + (spec.deadlineMs ?? 120_000);
    let deadNumbers = new Set<number>();
    let lastDeadCheck = 0;
    for (;;) {
      const open = numbers.filter((n) => fake.accepted(n).length === 0 && !deadNumbers.has(n));
      if (open.length === 0) break;
      if (Date.now() > deadline) {
        failures.push(
          `${open.length} notification(s) still open ${Math.round((deadline - healAt) / 1000)} s after the heal`,
        );
        break;
      }
      if (Date.now() - lastDeadCheck > 2_000) {
        lastDeadCheck = Date.now();
        deadNumbers = await deadWithReason(database.pool, users).catch(() => deadNumbers);
      }
      await sleep(200);
    }
    mark("all notifications delivered or dead (or deadline)");
    await sleep(Number(process.env.FAULTS_SETTLE_MS ?? 6_000));
    mark("settled");

    // The figures.
    deadNumbers = await deadWithReason(database.pool, users);
    let delivered = 0;
    let duplicated = 0;
    let beyond = 0;
    let lost = 0;
    const lostList: number[] = [];
    for (const n of numbers) {
      const accepted = fake.accepted(n);
      if (accepted.length > 0) {
        delivered++;
        lastDelivered = Math.max(lastDelivered, Math.min(...accepted));
        if (accepted.length > 1) {
          duplicated++;
          if (!inFlight.has(n)) beyond++;
        }
      } else if (!deadNumbers.has(n)) {
        lost++;
        lostList.push(n);
      }
    }
    const dead = numbers.filter((n) => deadNumbers.has(n)).length;
    if (lostList.length > 0) {
      notes.push(`lost: ${lostList.slice(0, 20).join(", ")}${lostList.length > 20 ? " …" : ""}`);
      notes.push(...(await describeNotifications(database.pool, lostList.slice(0, 5), users)));
    }
    const alive = [...services.values()].every((s) => s.alive() || s.ended());
    const complete = lost === 0;
    const sinceHeal = complete && healAt !== undefined ? (lastDelivered - healAt) / 1000 : null;
    // Everything may have gone out before the heal was seen (scenario 6: the others are delivered while the
    // poison is still being retried): nothing was left to recover.
    if (sinceHeal !== null && sinceHeal < 0)
      notes.push(
        `the last notification went out ${(-sinceHeal).toFixed(1)} s before the fault was seen healed`,
      );
    const recoveryS = sinceHeal === null ? null : Math.max(0, sinceHeal);
    const goal = spec.recoveryGoalMs ?? 15_000;
    if (lost > 0) failures.push(`${lost} lost`);
    if (spec.duplicates === "none" && duplicated > 0) failures.push(`${duplicated} duplicated (goal: 0)`);
    if (spec.duplicates === "in-flight" && beyond > 0)
      failures.push(`${beyond} duplicated that were not in flight at the kill`);
    if (recoveryS !== null && recoveryS * 1000 > goal) {
      const missed = `recovery ${recoveryS.toFixed(1)} s > ${goal / 1000} s`;
      // In `make test` a time is reported, never asserted (a shared CI machine is noisy); `make test-faults` asserts it.
      if (recoveryGoalAsserted) failures.push(missed);
      else notes.push(`${missed} (reported, not asserted: FAULTS_RECOVERY_GOAL=report)`);
    }
    if (!alive) failures.push("an instance that should be running has exited");

    result = {
      id: spec.id,
      title: spec.title,
      notifications,
      delivered,
      lost,
      duplicated,
      dead,
      inFlightAtKill: inFlightCount,
      duplicatesBeyondInFlight: beyond,
      recoveryS,
      afterLoadS: complete ? (lastDelivered - lastInsert) / 1000 : null,
      faultToHealS: faultAt !== undefined ? (healAt - faultAt) / 1000 : null,
      instancesAliveAtEnd: alive,
      runS: (Date.now() - t0) / 1000,
      notes,
      failures,
      dir,
      loadAvg: [round1(load0), round1(loadavg()[0] ?? 0)],
    };
    return result;
  } finally {
    try {
      writeTimeline(`${dir}/timeline.txt`, loadStart, events, lines, fake, load, healAt ?? 0, lastDelivered);
    } catch (error) {
      writeFileSync(`${dir}/timeline.txt`, `cannot write the timeline: ${String(error)}\n`);
    }
    load?.stop();
    watching = false;
    await groupWatch;
    await Promise.all([...services.values()].map((s) => s.stop()));
    await fake.close();
    await database.pool.end().catch(() => undefined);
    const summary = result ?? {
      id: spec.id,
      title: spec.title,
      failures,
      notes,
      dir,
      error: "did not finish",
    };
    writeFileSync(`${dir}/summary.json`, `${JSON.stringify(summary, null, 2)}\n`);
    appendFileSync(
      `${faultsDir}/results.jsonl`,
      `${JSON.stringify({ run: runStamp, commit: commitOf(), label: process.env.FAULTS_LABEL ?? "", at: new Date().toISOString(), ...summary })}\n`,
    );
  }
}

/** Where a notification stands in the database: its outbox row(s) and its record. */
async function describeNotifications(pool: mysql.Pool, numbers: readonly number[], users: number) {
  const out: string[] = [];
  for (const n of numbers) {
    const key = dedupeKeyOf(n, users);
    const [rows] = (await pool.query(
      `select id, status, retry_count, published_at, consumed_at, last_error from ${OUTBOX_TABLE} where payload like ?`,
      [`%"dedupe_key":"${key}"%`],
    )) as [Record<string, unknown>[], unknown];
    const [records] = (await pool.query(
      "select id, status, attempt_count, last_error_code, lease_until from notification_records where dedupe_key = ?",
      [key],
    )) as [Record<string, unknown>[], unknown];
    const time = (v: unknown) => (v instanceof Date ? v.toISOString().slice(11, 23) : String(v));
    const outbox = rows
      .map(
        (r) =>
          `#${r.id} ${r.status} retry_count=${r.retry_count} published_at=${time(r.published_at)} consumed_at=${time(r.consumed_at)}${r.last_error ? ` last_error=${String(r.last_error).slice(0, 80)}` : ""}`,
      )
      .join("; ");
    const record = records
      .map((r) => `#${r.id} ${r.status} attempts=${r.attempt_count} ${r.last_error_code ?? ""}`)
      .join("; ");
    out.push(`n=${n}: outbox ${outbox || "none"}; record ${record || "none"}`);
  }
  return out;
}

/** Notification numbers whose record, or one of whose outbox rows, is `dead` with a reason. */
async function deadWithReason(pool: mysql.Pool, users: number): Promise<Set<number>> {
  const dead = new Set<number>();
  const [records] = (await pool.query(
    "select dedupe_key from notification_records where status = 'dead' and coalesce(last_error, '') <> ''",
  )) as [{ dedupe_key: string }[], unknown];
  for (const row of records) dead.add(Number(row.dedupe_key.split(":").pop()));
  const [rows] = (await pool.query(
    `select payload from ${OUTBOX_TABLE} where status = 'dead' and coalesce(last_error, '') <> ''`,
  )) as [{ payload: string }[], unknown];
  for (const row of rows) {
    const key = String(row.payload).match(/"dedupe_key":"([^"]+)"/)?.[1];
    const n = Number(key?.split(":").pop());
    if (Number.isInteger(n) && key === dedupeKeyOf(n, users)) dead.add(n);
  }
  return dead;
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(100);
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function commitOf(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

/** Harness marks, the service's notable log lines and deliveries per second, relative to the load's start. */
function writeTimeline(
  file: string,
  t0: number,
  events: readonly { at: number; what: string }[],
  lines: readonly LogLine[],
  fake: FakeFeishu,
  load: Load | undefined,
  healAt: number,
  lastDelivered: number,
) {
  const rel = (at: number) => `${((at - t0) / 1000).toFixed(2).padStart(7)}s`;
  const notable = lines.filter(
    (line) =>
      line.level === "warn" ||
      line.level === "error" ||
      line.level === "raw" ||
      line.msg.startsWith("kafkajs") ||
      /started|stopped|retry scan|database ready|shutting|re-queued/.test(line.msg),
  );
  const entries: { at: number; text: string }[] = [];
  for (const event of events) entries.push({ at: event.at, text: `[harness] ${event.what}` });
  // Repeated lines of one instance are folded into the first, with a count and the last time.
  const folded = new Map<string, { at: number; text: string; count: number; last: number }>();
  for (const line of notable) {
    const detail = [
      line.fields.error,
      line.fields.retryInMs !== undefined ? `retryInMs=${line.fields.retryInMs}` : undefined,
    ]
      .filter(Boolean)
      .join(" ")
      .slice(0, 220);
    const key = `${line.instance}|${line.level}|${line.msg}`;
    const seen = folded.get(key);
    if (seen && line.at - seen.last < 5_000) {
      seen.count++;
      seen.last = line.at;
      continue;
    }
    const entry = {
      at: line.at,
      text: `[${line.instance}] ${line.level} ${line.msg}${detail ? ` — ${detail}` : ""}`,
      count: 1,
      last: line.at,
    };
    folded.set(key, entry);
    entries.push(entry);
  }
  for (const entry of folded.values()) {
    if (entry.count > 1) entry.text += ` (×${entry.count} until ${rel(entry.last)})`;
  }
  const perSecond = new Map<number, { inserted: number; accepted: number; refused: number }>();
  const bucket = (at: number) => {
    const s = Math.floor((at - t0) / 1000);
    let b = perSecond.get(s);
    if (!b) {
      b = { inserted: 0, accepted: 0, refused: 0 };
      perSecond.set(s, b);
    }
    return b;
  };
  for (const at of load?.insertedAt.values() ?? []) bucket(at).inserted++;
  const firstSeen = new Set<number>();
  for (const answer of fake.answers) {
    if (answer.n >= 100_000) continue;
    if (answer.outcome === "accepted") {
      if (!firstSeen.has(answer.n)) {
        firstSeen.add(answer.n);
        bucket(answer.at).accepted++;
      }
    } else bucket(answer.at).refused++;
  }
  const seconds = [...perSecond.keys()].sort((a, b) => a - b);
  const out = [
    `t=0 is the load's start (${new Date(t0).toISOString()}); healed at ${rel(healAt)}; last notification at ${rel(lastDelivered)}`,
    "",
    ...entries.sort((a, b) => a.at - b.at).map((e) => `${rel(e.at)} ${e.text}`),
    "",
    "second  inserted  delivered(first POST)  refused/failed answers",
    ...seconds.map((s) => {
      const b = perSecond.get(s) as { inserted: number; accepted: number; refused: number };
      return `${String(s).padStart(6)}  ${String(b.inserted).padStart(8)}  ${String(b.accepted).padStart(21)}  ${String(b.refused).padStart(8)}`;
    }),
  ];
  writeFileSync(file, `${out.join("\n")}\n`);
}

export function formatTable(results: readonly ScenarioResult[]): string {
  const header =
    "| # | scenario | delivered | lost | duplicated | dead | in flight at kill | recovery s | after last insert s | run s | load 1m | result |";
  const rule = "|---|---|---|---|---|---|---|---|---|---|---|---|";
  const rows = results.map(
    (r) =>
      `| ${r.id} | ${r.title} | ${r.delivered}/${r.notifications} | ${r.lost} | ${r.duplicated} | ${r.dead} | ${r.inFlightAtKill ?? "–"} | ${r.recoveryS === null ? "never" : r.recoveryS.toFixed(1)} | ${r.afterLoadS === null ? "–" : r.afterLoadS.toFixed(1)} | ${r.runS.toFixed(0)} | ${r.loadAvg[0]}→${r.loadAvg[1]} | ${r.failures.length === 0 ? "ok" : r.failures.join("; ")} |`,
  );
  return [header, rule, ...rows].join("\n");
}
