/** `GET /metrics` of an app's metrics listener, as text and as a map of `name{labels}` → value. */
export async function scrape(port: number | undefined) {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  const text = await response.text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return {
    text,
    values,
    /** A sample's value; 0 when the series has no such sample yet (a counter never incremented). */
    get: (sample: string) => values.get(sample) ?? 0,
  };
}

/** The status of a probe of the metrics listener (`/livez`, `/readyz`). */
export async function probe(port: number | undefined, path: "/livez" | "/readyz"): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  await response.arrayBuffer();
  return response.status;
}
