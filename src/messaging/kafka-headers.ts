/** A Kafka message's headers as kafkajs gives them: bytes or text, a repeated one as a list. */
export type RawHeaders = Readonly<Record<string, Buffer | string | readonly (Buffer | string)[] | undefined>>;

/** Kafka headers as text: a repeated header's first value. */
export function textHeaders(headers: RawHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value)
      ? (value[0] as Buffer | string | undefined)
      : (value as Buffer | string | undefined);
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}
