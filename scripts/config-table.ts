/**
 * Writes the README's configuration table from the config spec (src/config/config-spec.ts).
 *   npx tsx scripts/config-table.ts          rewrite README.md in place
 *   npx tsx scripts/config-table.ts --check  exit 1 when README.md differs from the spec
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { configTableMarkdown } from "../src/config/config-table.ts";

const readmePath = new URL("../README.md", import.meta.url);

/** The README with its configuration table (from its header row to the next blank line) replaced. */
export function withConfigTable(readme: string, table = configTableMarkdown()): string {
  const lines = readme.split("\n");
  const start = lines.indexOf("| key | default | meaning |");
  if (start < 0) throw new Error("README.md has no configuration table (| key | default | meaning |)");
  let end = start;
  while (end < lines.length && lines[end]?.startsWith("|")) end++;
  return [...lines.slice(0, start), table, ...lines.slice(end)].join("\n");
}

if (import.meta.url === pathToFileURL(resolve(process.argv[1] ?? "")).href) {
  const readme = readFileSync(readmePath, "utf8");
  const updated = withConfigTable(readme);
  if (process.argv.includes("--check")) {
    if (updated !== readme) {
      process.stderr.write(
        "README.md's configuration table differs from the spec: run npx tsx scripts/config-table.ts\n",
      );
      process.exit(1);
    }
  } else if (updated !== readme) {
    writeFileSync(readmePath, updated);
    process.stdout.write("README.md: configuration table rewritten from the spec\n");
  }
}
