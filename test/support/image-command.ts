import { readFile } from "node:fs/promises";
import { join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;

/**
 * The image's command (the Dockerfile's last exec-form `CMD [...]`), read from the Dockerfile itself, so that
 * tests and benchmarks run the service as the image runs it, with its node flags.
 */
export async function imageCommand(): Promise<string[]> {
  const dockerfile = await readFile(join(root, "Dockerfile"), "utf8");
  const cmd = [...dockerfile.matchAll(/^CMD\s+(\[.*\])\s*$/gm)].at(-1)?.[1];
  if (!cmd) throw new Error("the Dockerfile has no exec-form CMD");
  return JSON.parse(cmd) as string[];
}

/**
 * The image's node flags: its command without `node` and the entry point (`dist/main.js`); or, when
 * `override` is set (a benchmark's `*_NODE_ARGS` variable), the flags it lists, space-separated (empty: none).
 */
export async function imageNodeArgs(override?: string): Promise<string[]> {
  if (override !== undefined) return override.split(" ").filter(Boolean);
  const [command, ...args] = await imageCommand();
  if (command !== "node" || args.at(-1) !== "dist/main.js") {
    throw new Error(
      `the image's command is not "node <flags> dist/main.js": ${[command, ...args].join(" ")}`,
    );
  }
  return args.slice(0, -1);
}
