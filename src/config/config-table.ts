import { configKeys } from "./load-config.ts";

/** The README's configuration table, rendered from the spec (scripts/config-table.ts writes it). */
export function configTableMarkdown(): string {
  return [
    "| key | default | meaning |",
    "|---|---|---|",
    ...configKeys.map(({ key, default: shown, doc }) => `| \`${key}\` | ${shown} | ${doc} |`),
  ].join("\n");
}
