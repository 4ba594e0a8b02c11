import { type ChildProcess, fork } from "node:child_process";
import type { Answer, Behaviour } from "./fake-feishu-process.ts";

export type { Answer, Behaviour };

export const caFile = new URL("../fixtures/tls/cert.pem", import.meta.url).pathname;

/** The fake Feishu process, seen from the harness: what it answered, per notification number. */
export interface FakeFeishu {
  readonly host: string;
  botUrl(token: string): string;
  setBehaviour(behaviour: Partial<Behaviour>): void;
  /** Every answer so far, in arrival order. */
  readonly answers: readonly Answer[];
  /** Epoch ms of each accepted POST, per notification number. */
  accepted(n: number): readonly number[];
  /** Requests the server holds open right now (received, not yet answered, client still connected or not). */
  openRequests(): Promise<number>;
  close(): Promise<void>;
}

export async function startFakeFeishu(): Promise<FakeFeishu> {
  const child: ChildProcess = fork(new URL("./fake-feishu-process.ts", import.meta.url).pathname, [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const answers: Answer[] = [];
  const acceptedAt = new Map<number, number[]>();
  let openWaiter: ((n: number) => void) | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`fake feishu exited with ${code}`)));
    child.on("message", (message: { type: string; port?: number; items?: Answer[]; open?: number }) => {
      if (message.type === "ready" && message.port) resolve(message.port);
      else if (message.type === "answers" && message.items) {
        for (const answer of message.items) {
          answers.push(answer);
          if (answer.outcome === "accepted") {
            const list = acceptedAt.get(answer.n);
            if (list) list.push(answer.at);
            else acceptedAt.set(answer.n, [answer.at]);
          }
        }
      } else if (message.type === "open" && message.open !== undefined) {
        openWaiter?.(message.open);
      }
    });
  });
  const host = `127.0.0.1:${port}`;
  return {
    host,
    botUrl: (token) => `https://${host}/open-apis/bot/v2/hook/${token}`,
    setBehaviour(behaviour) {
      child.send({ type: "behaviour", behaviour });
    },
    answers,
    accepted: (n) => acceptedAt.get(n) ?? [],
    openRequests() {
      return new Promise((resolve) => {
        openWaiter = resolve;
        child.send({ type: "open" });
      });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.disconnect();
      await exited;
    },
  };
}
