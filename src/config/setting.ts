/**
 * One configuration key: its environment name, its default as the README shows it, what it means, and how
 * its text becomes a value. The default is text too and goes through the same parser, so it is written once
 * and is valid by construction.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Turns a key's text into its value, or throws a `ConfigError` that names the key. */
export type Parse<T> = (raw: string, key: string) => T;

export interface Setting<T> {
  /** The environment variable (or, for a family of keys, its pattern), as the README lists it. */
  readonly key: string;
  /** The default as the README shows it: the default text, "(none)" or "(empty)". */
  readonly shownDefault: string;
  readonly doc: string;
  read(env: Env): T;
}

/** A key's trimmed value; a blank value counts as unset. */
export function envValue(env: Env, key: string): string | undefined {
  const value = env[key]?.trim();
  return value === "" ? undefined : value;
}

/** A key with a default: unset, it is `fallback` (parsed like any value). */
export function setting<T>(
  key: string,
  fallback: string,
  parse: Parse<T>,
  doc: string,
  shownDefault: string = fallback,
): Setting<T> {
  return { key, shownDefault, doc, read: (env) => parse(envValue(env, key) ?? fallback, key) };
}

/** A key without a default: unset, it is `undefined`. */
export function optional<T>(key: string, parse: Parse<T>, doc: string): Setting<T | undefined> {
  return {
    key,
    shownDefault: "(none)",
    doc,
    read: (env) => {
      const raw = envValue(env, key);
      return raw === undefined ? undefined : parse(raw, key);
    },
  };
}

/** A family of keys read together (e.g. `OUTBOX_SERVICES_<SERVICE>_TABLE`). */
export function family<T>(key: string, shownDefault: string, read: (env: Env) => T, doc: string): Setting<T> {
  return { key, shownDefault, doc, read };
}

/** A spec is a tree of settings; its config has the same shape with each setting replaced by its value. */
export interface SpecTree {
  readonly [name: string]: Setting<unknown> | SpecTree;
}

export type ValuesOf<S> = {
  readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : ValuesOf<S[K]>;
};

export function isSetting(node: Setting<unknown> | SpecTree): node is Setting<unknown> {
  return typeof (node as Setting<unknown>).read === "function";
}

/** Every setting of a spec, in the order it is written (the README's order). */
export function settingsOf(spec: SpecTree): Setting<unknown>[] {
  return Object.values(spec).flatMap((node) => (isSetting(node) ? [node] : settingsOf(node)));
}

/** Reads every setting of a spec from the environment into a tree of the same shape. */
export function readSpec<S extends SpecTree>(spec: S, env: Env): ValuesOf<S> {
  const values: Record<string, unknown> = {};
  for (const [name, node] of Object.entries(spec)) {
    values[name] = isSetting(node) ? node.read(env) : readSpec(node, env);
  }
  return values as ValuesOf<S>;
}
