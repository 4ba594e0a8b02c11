/**
 * The service as an operator runs it: `node --import tsx src/main.ts`, configured only by environment
 * variables, its JSON log lines written to a file (and kept in memory for the timeline).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createInterface } from "node:readline";

const root = new URL("../../", import.meta.url).pathname;

export interface LogLine {
  readonly instance: string;
  /** Epoch ms: the line's own `time`, else when it was read. */
  readonly at: number;
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  readonly spawnedAt: number;
  /** Resolves when the process logged that it started (its API is open, its loops run). */
  readonly started: Promise<number>;
  readonly exited: Promise<number | null>;
  alive(): boolean;
  /** True once the harness killed or stopped it on purpose. */
  ended(): boolean;
  /** SIGKILL; resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (staged shutdown); resolves on exit. */
  stop(): Promise<void>;
}

export function spawnService(
  name: string,
  env: Record<string, string>,
  logFile: string,
  lines: LogLine[],
): ServiceProcess {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const spawnedAt = Date.now();
  const file = createWriteStream(logFile, { flags: "a" });
  file.write(
    `${JSON.stringify({ harness: "spawned", instance: name, pid: child.pid, at: new Date(spawnedAt).toISOString() })}\n`,
  );
  let exitCode: number | null | undefined;
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      exitCode = code;
      file.write(
        `${JSON.stringify({ harness: "exited", instance: name, code, signal, at: new Date().toISOString() })}\n`,
      );
      resolve(code);
    });
  });
  let onStarted: (at: number) => void = () => undefined;
  const started = new Promise<number>((resolve, reject) => {
    onStarted = resolve;
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before it started`)));
  });
  started.catch(() => undefined);
  const read = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    createInterface({ input: stream }).on("line", (text) => {
      file.write(`${text}\n`);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        lines.push({ instance: name, at: Date.now(), level: "raw", msg: text, fields: {} });
        return;
      }
      const { time, level, msg, ...fields } = parsed;
      const at = typeof time === "string" ? Date.parse(time) : Date.now();
      const line = { instance: name, at, level: String(level ?? ""), msg: String(msg ?? ""), fields };
      lines.push(line);
      if (line.msg === "smartflow-notification started") onStarted(at);
    });
  };
  read(child.stdout);
  read(child.stderr);
  return {
    name,
    pid: child.pid ?? -1,
    spawnedAt,
    started,
    exited,
    alive: () => exitCode === undefined,
    ended: () => ended,
    async kill() {
      ended = true;
      if (exitCode !== undefined) return;
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      ended = true;
      if (exitCode !== undefined) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
