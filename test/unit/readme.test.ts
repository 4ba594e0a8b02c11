import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { withConfigTable } from "../../scripts/config-table.ts";
import { configTableMarkdown } from "../../src/config/config-table.ts";
import { configKeys } from "../../src/config/load-config.ts";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("the README opens with the two commands a newcomer needs", () => {
  const opening = readme.split("\n").slice(0, 20).join("\n");
  assert.match(opening, /make run/);
  assert.match(opening, /make test/);
});

test("the README's configuration table is the spec's: every key, its default and its meaning", () => {
  for (const { key, default: shown, doc } of configKeys) {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${key}\` |`));
    assert.ok(row, `README has no row for ${key}`);
    assert.equal(row, `| \`${key}\` | ${shown} | ${doc} |`, `README row of ${key}`);
  }
  assert.ok(readme.includes(configTableMarkdown()), "rows in the spec's order, and no other rows");
  assert.equal(withConfigTable(readme), readme, "run `npx tsx scripts/config-table.ts` to regenerate it");
});
