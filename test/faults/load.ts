/**
 * The producer side, as SmartFlow's Go services write it: `notification.feishu.requested` rows inserted into
 * the outbox table by SQL (the columns and envelope of `outbox.WithTx(tx).CreateMessage`, reference §3, §4.3),
 * at a fixed rate, and each user's group-bot channel in `user_notification_channels`. Nothing here imports the
 * service: it only knows the tables, which are SmartFlow's.
 */
import type mysql from "mysql2/promise";

export const EVENT = "notification.feishu.requested";
export const OUTBOX_TABLE = "notification_outbox_messages";

/** Notification `n` goes to user `1 + n % users`; its number is in the action URL the fake Feishu reads. */
export const userOf = (n: number, users: number) => 1 + (n % users);
export const dedupeKeyOf = (n: number, users: number) => `${userOf(n, users)}:faults:${n}`;
export const botToken = (user: number) => `faultsbot${String(user).padStart(6, "0")}`;

/** The row envelope, with the event payload as a JSON object (Go's json.RawMessage), key = user id. */
export function goRow(n: number, users: number, topic: string, stamp: Date, maxRetry = 20) {
  const user = userOf(n, users);
  const previewId = `asp_faults_${n}`;
  const payload = JSON.stringify({
    event_id: previewId,
    event_type: EVENT,
    event_version: "1",
    aggregate_id: previewId,
    payload: {
      user_id: user,
      trigger_id: `ast_faults_${n}`,
      preview_id: previewId,
      trigger_type: "unfinished_feedback",
      target_type: "task",
      target_id: n + 1,
      dedupe_key: dedupeKeyOf(n, users),
      target_url: `/assistant/faults-n-${n}`,
      summary_text: "明天上午的两个任务时间冲突，建议把复习挪到下午三点。",
      fallback_text: "你有一条新的日程调整建议，请查看。",
      trace_id: `trace_faults_${n}`,
      requested_at: "2026-03-02T10:41:00+08:00",
    },
  });
  return [
    EVENT,
    "notification",
    topic,
    String(user),
    payload,
    "pending",
    0,
    maxRetry,
    stamp,
    null,
    null,
    null,
    stamp,
    stamp,
  ];
}

const COLUMNS =
  "(biz_type, service_name, topic, message_key, payload, status, retry_count, max_retry, next_retry_at, last_error, published_at, consumed_at, created_at, updated_at)";

/** One INSERT of several Go-format rows (the Go producer writes one per transaction; the SQL is the same). */
export async function insertRows(pool: mysql.Pool, rows: readonly unknown[][]) {
  const marks = rows.map((row) => `(${row.map(() => "?").join(", ")})`).join(", ");
  await pool.query(`insert into ${OUTBOX_TABLE} ${COLUMNS} values ${marks}`, rows.flat());
}

/** Every user's channel: an enabled group bot on the fake Feishu (unsigned). */
export async function insertChannels(pool: mysql.Pool, users: number, botUrl: (token: string) => string) {
  const now = new Date();
  for (let from = 1; from <= users; from += 500) {
    const rows = [];
    for (let user = from; user < Math.min(from + 500, users + 1); user++) {
      rows.push([user, "feishu_webhook", 1, botUrl(botToken(user)), "none", "", "group_bot", "", now, now]);
    }
    const marks = rows.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ");
    await pool.query(
      `insert into user_notification_channels (user_id, channel, enabled, webhook_url, auth_type, bearer_token,
        webhook_kind, signing_secret, created_at, updated_at) values ${marks}`,
      rows.flat(),
    );
  }
}

export interface LoadOptions {
  readonly pool: mysql.Pool;
  readonly topic: string;
  /** Notification numbers to send, in order. */
  readonly numbers: readonly number[];
  readonly users: number;
  readonly perSecond: number;
  readonly tickMs?: number;
  readonly maxRetry?: number;
}

export interface Load {
  /** Resolves with the epoch ms of the last insert once every row is in. */
  readonly done: Promise<number>;
  /** Resolves when `count` rows are in. */
  reached(count: number): Promise<number>;
  inserted(): number;
  /** Epoch ms at which row `n` was committed. */
  readonly insertedAt: Map<number, number>;
  /** Inserts that failed (the database was down) and were tried again. */
  failures(): number;
  stop(): void;
}

/**
 * Inserts the rows on a fixed schedule (row i is due at start + i / perSecond), one multi-row INSERT per tick.
 * While the database is down an insert fails and is tried again every 200 ms, as a producer's own retry
 * would; rows that fell behind go out as soon as it answers again. A retried insert that had in fact
 * committed makes a second outbox row with the same dedupe key, which the service must not send twice.
 */
export function startLoad(options: LoadOptions): Load {
  const tickMs = options.tickMs ?? 50;
  const insertedAt = new Map<number, number>();
  const waiters: { count: number; resolve: (at: number) => void }[] = [];
  let count = 0;
  let failures = 0;
  let stopped = false;
  const started = Date.now();
  const done = (async () => {
    let next = 0;
    while (next < options.numbers.length && !stopped) {
      const due = Math.min(
        options.numbers.length,
        Math.floor(((Date.now() - started) / 1000) * options.perSecond) + 1,
      );
      if (due > next) {
        const batch = options.numbers.slice(next, due);
        const stamp = new Date();
        const rows = batch.map((n) => goRow(n, options.users, options.topic, stamp, options.maxRetry));
        try {
          await insertRows(options.pool, rows);
        } catch {
          failures++;
          await new Promise((resolve) => setTimeout(resolve, 200));
          continue;
        }
        const at = Date.now();
        for (const n of batch) insertedAt.set(n, at);
        next = due;
        count = next;
        for (const waiter of waiters.filter((w) => w.count <= count)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(at);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, tickMs));
    }
    return Date.now();
  })();
  return {
    done,
    reached(target) {
      if (count >= target) return Promise.resolve(Date.now());
      return new Promise((resolve) => waiters.push({ count: target, resolve }));
    },
    inserted: () => count,
    insertedAt,
    failures: () => failures,
    stop() {
      stopped = true;
    },
  };
}
