/**
 * The rules the README's layout and the style guide state, checked over src/ (part of `make lint`):
 * - each area imports only the areas `allowedImports` lists: the domain (`notifications/`) only `lib/`; its
 *   SQL adapters (`notifications/sql/`) the domain and `db/`; no folder imports one that imports it back;
 * - each vendor client is imported by exactly one file, and only the config module reads `process.env`;
 * - files fit on a few screens (250 lines) and functions can be read in one (80 lines), unless a comment
 *   before the function says why (`long-function: <reason>`).
 *
 *   npx tsx scripts/check-architecture.ts      exits 1 and lists what breaks a rule
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

/** Who may import whom. An area is a folder of src/ (`notifications/sql` is its own), or app.ts/main.ts. */
export const allowedImports: Readonly<Record<string, readonly string[]>> = {
  lib: [],
  gen: [],
  db: ["lib"],
  messaging: ["lib"],
  notifications: ["lib"],
  "notifications/sql": ["notifications", "db", "lib"],
  channels: ["notifications", "lib"],
  outbox: ["messaging", "db", "lib"],
  config: ["db", "outbox", "lib"],
  retention: ["db", "lib"],
  api: ["notifications", "outbox", "gen", "lib"],
  observability: ["notifications", "outbox", "lib"],
  app: [
    "api",
    "channels",
    "config",
    "db",
    "lib",
    "messaging",
    "notifications",
    "notifications/sql",
    "observability",
    "outbox",
    "retention",
  ],
  main: ["app", "config", "lib"],
};

/** Vendor clients behind our own ports: each may be imported by these files only. */
export const vendorHomes: Readonly<Record<string, string | readonly string[]>> = {
  kafkajs: ["messaging/kafka-bus.ts", "messaging/kafka-batches.ts"],
  mysql2: "db/mysql-driver.ts",
  "better-sqlite3": "db/sqlite-driver.ts",
  "prom-client": "observability/metric-series.ts",
  "@opentelemetry/sdk-trace-node": "app/tracing-sdk.ts",
  "@opentelemetry/sdk-trace-base": "app/tracing-sdk.ts",
  "@opentelemetry/exporter-trace-otlp-http": "app/tracing-sdk.ts",
  "@opentelemetry/resources": "app/tracing-sdk.ts",
};

/** Only tests and benchmarks use these. */
const devOnly = ["@grpc/grpc-js", "@grpc/proto-loader"];

export const MAX_FILE_LINES = 250;
export const MAX_FUNCTION_LINES = 80;

export interface SourceFile {
  /** Relative to src/, with forward slashes: `notifications/record-state.ts`. */
  readonly path: string;
  readonly text: string;
}

export function areaOf(path: string): string {
  const parts = path.split("/");
  if (parts.length === 1) return (parts[0] ?? "").replace(/\.ts$/, "");
  if (parts[0] === "notifications" && parts[1] === "sql" && parts.length > 2) return "notifications/sql";
  return parts[0] ?? "";
}

/** Every rule broken by these files, one line each (empty when the tree is clean). */
export function checkArchitecture(files: readonly SourceFile[]): string[] {
  const problems: string[] = [];
  const edges = new Map<string, Set<string>>();
  for (const file of files) {
    const from = areaOf(file.path);
    const allowed = allowedImports[from];
    if (!allowed) problems.push(`${file.path}: area "${from}" has no rule in scripts/check-architecture.ts`);
    for (const specifier of importsOf(file.text)) {
      problems.push(...checkVendor(file.path, specifier));
      if (!specifier.startsWith(".")) continue;
      const target = normalize(join(dirname(file.path), specifier)).replaceAll("\\", "/");
      if (target.startsWith("..")) {
        problems.push(`${file.path}: imports ${specifier}, outside src/`);
        continue;
      }
      const to = areaOf(target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)?.add(to);
      if (allowed && !allowed.includes(to))
        problems.push(`${file.path}: ${from}/ may not import ${to}/ (${specifier})`);
    }
    if (/\bprocess\.env\b/.test(stripComments(file.text)) && areaOf(file.path) !== "config") {
      problems.push(`${file.path}: reads process.env (only src/config/ may)`);
    }
    if (!file.path.startsWith("gen/")) problems.push(...checkSizes(file));
  }
  for (const cycle of cyclesOf(edges)) problems.push(`folder cycle: ${cycle.join(" → ")}`);
  return problems;
}

function checkVendor(path: string, specifier: string): string[] {
  const home = Object.entries(vendorHomes).find(
    ([name]) => specifier === name || specifier.startsWith(`${name}/`),
  );
  const homes = home ? [home[1]].flat() : [];
  if (home && !homes.includes(path))
    return [`${path}: imports ${specifier} (only ${homes.join(" or ")} may)`];
  if (devOnly.some((name) => specifier === name || specifier.startsWith(`${name}/`))) {
    return [`${path}: imports ${specifier}, a dev dependency (tests and benchmarks only)`];
  }
  return [];
}

function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((file) => file.fileName);
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

function checkSizes(file: SourceFile): string[] {
  const problems: string[] = [];
  const lines = file.text.split("\n").length;
  if (lines > MAX_FILE_LINES) problems.push(`${file.path}: ${lines} lines (at most ${MAX_FILE_LINES})`);
  const source = ts.createSourceFile(file.path, file.text, ts.ScriptTarget.ES2022, true);
  const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line + 1;
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = lineOf(node.getStart(source));
      const length = lineOf(node.getEnd()) - start + 1;
      if (length > MAX_FUNCTION_LINES && !explained(source, node)) {
        problems.push(
          `${file.path}:${start}: a function of ${length} lines (at most ${MAX_FUNCTION_LINES}, or say why in a "long-function:" comment)`,
        );
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return problems;
}

/** Whether a comment just before the function (or the statement declaring it) says why it is long. */
function explained(source: ts.SourceFile, node: ts.Node): boolean {
  for (let at: ts.Node | undefined = node; at && !ts.isSourceFile(at); at = at.parent) {
    const comments = ts.getLeadingCommentRanges(source.text, at.getFullStart()) ?? [];
    if (comments.some((c) => source.text.slice(c.pos, c.end).includes("long-function:"))) return true;
    if (ts.isStatement(at) || ts.isPropertyAssignment(at) || ts.isMethodDeclaration(at)) break;
  }
  return false;
}

/** Each elementary cycle of the folder graph, once (as found by depth-first search). */
export function cyclesOf(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (area: string) => {
    seen.add(area);
    path.push(area);
    for (const next of edges.get(area) ?? []) {
      if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (!seen.has(next)) visit(next);
    }
    path.pop();
    done.add(area);
  };
  for (const area of [...edges.keys()].sort()) if (!done.has(area)) visit(area);
  return cycles;
}

export function readSources(root: string): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts")) {
        files.push({ path: relative(root, full).replaceAll("\\", "/"), text: readFileSync(full, "utf8") });
      }
    }
  };
  walk(root);
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

if (import.meta.url === pathToFileURL(resolve(process.argv[1] ?? "")).href) {
  const problems = checkArchitecture(readSources(new URL("../src", import.meta.url).pathname));
  for (const problem of problems) process.stderr.write(`check-architecture: ${problem}\n`);
  process.exit(problems.length > 0 ? 1 : 0);
}
