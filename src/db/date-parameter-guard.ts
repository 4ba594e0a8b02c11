import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from "kysely";

/**
 * Refuses any query that binds a JS `Date`. On MySQL a Date would be written in the driver's zone, not in
 * `DATABASE_TIME_ZONE`, and would silently disagree with the Go producers' wall clock; every time must go
 * through `DbTraits.time` (db-traits.ts). Failing loudly turns a missed conversion into a test failure. The
 * query's tree is only read (no copy), operation nodes and arrays only, so large values are never walked.
 */
export class DateParameterGuard implements KyselyPlugin {
  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    rejectDates(node);
    return node;
  }

  transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(result);
  }
}

function rejectDates(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) rejectDates(item);
    return;
  }
  if (typeof node !== "object" || node === null || !("kind" in node)) return;
  const fields = node as Readonly<Record<string, unknown>>;
  if (fields.kind === "ValueNode") {
    rejectDate(fields.value);
    return;
  }
  if (fields.kind === "PrimitiveValueListNode") {
    for (const value of fields.values as readonly unknown[]) rejectDate(value);
    return;
  }
  for (const key in fields) rejectDates(fields[key]);
}

function rejectDate(value: unknown): void {
  if (value instanceof Date) {
    throw new TypeError(
      `a Date was bound to a query (${value.toISOString()}): bind DbTraits.time(date), the database zone's wall clock`,
    );
  }
}
