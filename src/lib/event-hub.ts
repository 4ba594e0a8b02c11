/**
 * Typed events that the loops emit (`relay:published`, `delivery:result`, …). Tests record them and await
 * conditions over them instead of sleeping. Nothing in production subscribes yet: the loops log for
 * themselves, and a metrics exporter would subscribe here (`onAny`).
 */
export type EventMap = Record<string, unknown>;

export interface EventHub<E extends EventMap> {
  emit<K extends keyof E & string>(name: K, event: E[K]): void;
  on<K extends keyof E & string>(name: K, listener: (event: E[K]) => void): () => void;
  /** Every event, with its name (test recorders; a metrics exporter). */
  onAny(listener: (name: string, event: unknown) => void): () => void;
}

export function createEventHub<E extends EventMap>(): EventHub<E> {
  const listeners = new Map<string, Set<(event: never) => void>>();
  const anyListeners = new Set<(name: string, event: unknown) => void>();
  const hub: EventHub<E> = {
    emit(name, event) {
      for (const listener of listeners.get(name) ?? []) (listener as (e: E[typeof name]) => void)(event);
      for (const listener of anyListeners) listener(name, event);
    },
    onAny(listener) {
      anyListeners.add(listener);
      return () => anyListeners.delete(listener);
    },
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) {
        set = new Set();
        listeners.set(name, set);
      }
      set.add(listener as (event: never) => void);
      return () => set.delete(listener as (event: never) => void);
    },
  };
  return hub;
}
