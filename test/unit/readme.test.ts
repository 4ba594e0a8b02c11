import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configKeys } from "../../src/config.ts";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("the README opens with the two commands a newcomer needs", () => {
  const opening = readme.split("\n").slice(0, 20).join("\n");
  assert.match(opening, /make run/);
  assert.match(opening, /make test/);
});

test("the README documents every configuration key with its default", () => {
  for (const { key, default: fallback } of configKeys) {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${key}\``));
    assert.ok(row, `README has no row for ${key}`);
    assert.ok(row.includes(fallback), `README row of ${key} does not give its default ${fallback}`);
  }
});
