/**
 * The real parts the scenarios break: a private MariaDB (scripts/mariadb-private.sh) and a single-node Kafka
 * (scripts/kafka.sh), each in a folder of its own under .cache/faults, killed with SIGKILL and restarted on the
 * same data and ports. The machine's shared MariaDB is never used.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import kafkajs from "kafkajs";
import mysql from "mysql2/promise";

const run = promisify(execFile);
const root = new URL("../../", import.meta.url).pathname;
export const faultsDir = `${root}.cache/faults`;

/**
 * SIGKILL to the pid a script recorded in `pidFile`, at once (a script would add its own startup time to the
 * moment of the fault); resolves when the process is gone.
 */
async function killPidFile(pidFile: string) {
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  process.kill(pid, "SIGKILL");
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function script(name: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(`${root}scripts/${name}`, args, { cwd: root, maxBuffer: 1 << 20 });
  return stdout;
}

export interface PrivateMariaDb {
  readonly url: string;
  /** SIGKILL (what `mariadb-private.sh kill` does, without a shell's startup time). */
  kill(): Promise<void>;
  /** Starts the killed server again on the same data folder and port; resolves once it answers. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** A pool on a database of its own (created here), with the service's time conventions. */
  createDatabase(prefix: string): Promise<{ name: string; url: string; pool: mysql.Pool }>;
}

export async function startPrivateMariaDb(dir = `${faultsDir}/mariadb`): Promise<PrivateMariaDb> {
  mkdirSync(faultsDir, { recursive: true });
  const out = await script("mariadb-private.sh", "start", dir);
  const url = out.match(/^MYSQL_URL=(.+)$/m)?.[1];
  if (!url) throw new Error(`mariadb-private.sh start printed no MYSQL_URL: ${out}`);
  return {
    url,
    kill: () => killPidFile(`${dir}/pid`),
    restart: async () => void (await script("mariadb-private.sh", "restart", dir)),
    stop: async () => void (await script("mariadb-private.sh", "stop", dir)),
    async createDatabase(prefix) {
      const name = `${prefix}_${randomBytes(3).toString("hex")}`;
      const admin = await mysql.createConnection({ uri: url });
      await admin.query(`create database \`${name}\` character set utf8mb4 collate utf8mb4_unicode_ci`);
      await admin.end();
      const dbUrl = `${url}/${name}`;
      // Local time, like the service's driver and Go's `loc=Local`: rows compare correctly with its own.
      const pool = mysql.createPool({
        uri: dbUrl,
        timezone: "local",
        connectionLimit: 4,
        connectTimeout: 2_000,
      });
      // A killed server leaves dead connections in the pool: they fail once, then the pool opens new ones.
      pool.on("connection", (connection) => connection.on("error", () => undefined));
      return { name, url: dbUrl, pool };
    },
  };
}

export interface PrivateKafka {
  readonly brokers: string;
  /** SIGKILL (what `kafka.sh kill` does, without a shell's startup time). */
  kill(): Promise<void>;
  /** Starts the killed broker again on the same log dir and ports; resolves once it answers metadata. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Members of a group and their partitions, or undefined when the broker does not answer. */
  describeGroup(groupId: string): Promise<GroupView | undefined>;
  close(): Promise<void>;
}

export interface GroupView {
  readonly state: string;
  readonly members: readonly { readonly memberId: string; readonly partitions: readonly number[] }[];
}

export async function startPrivateKafka(dir = `${faultsDir}/kafka`): Promise<PrivateKafka> {
  mkdirSync(faultsDir, { recursive: true });
  const out = await script("kafka.sh", "start", dir);
  const brokers = out.match(/^KAFKA_BROKERS=(.+)$/m)?.[1];
  if (!brokers) throw new Error(`kafka.sh start printed no KAFKA_BROKERS: ${out}`);
  let admin: kafkajs.Admin | undefined;
  const connectedAdmin = async () => {
    if (!admin) {
      const created = new kafkajs.Kafka({
        clientId: "faults-watcher",
        brokers: [brokers],
        logLevel: kafkajs.logLevel.NOTHING,
        connectionTimeout: 500,
        requestTimeout: 1_000,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 300 },
      }).admin();
      await created.connect();
      admin = created;
    }
    return admin;
  };
  const dropAdmin = async () => {
    const old = admin;
    admin = undefined;
    await old?.disconnect().catch(() => undefined);
  };
  return {
    brokers,
    kill: () => killPidFile(`${dir}/pid`),
    restart: async () => void (await script("kafka.sh", "restart", dir)),
    stop: async () => {
      await dropAdmin();
      await script("kafka.sh", "stop", dir);
    },
    async describeGroup(groupId) {
      try {
        const client = await connectedAdmin();
        const { groups } = await client.describeGroups([groupId]);
        const group = groups[0];
        if (!group) return undefined;
        return {
          state: group.state,
          members: group.members.map((member) => ({
            memberId: member.memberId,
            partitions: decodeAssignment(member.memberAssignment),
          })),
        };
      } catch (error) {
        if (process.env.FAULTS_DEBUG) console.error("describeGroup", error);
        await dropAdmin();
        return undefined;
      }
    },
    close: dropAdmin,
  };
}

/** The partitions of a consumer protocol assignment (kafkajs' AssignerProtocol wire format). */
function decodeAssignment(buffer: Buffer): number[] {
  if (!buffer || buffer.length === 0) return [];
  try {
    const decoded = kafkajs.AssignerProtocol.MemberAssignment.decode(buffer);
    return Object.values(decoded?.assignment ?? {})
      .flat()
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}
