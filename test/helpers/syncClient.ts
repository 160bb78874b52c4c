/** A minimal v11 / legacy protocol client for protocol tests (the e2e tests use the real one). */
export interface SyncReply {
  status: number;
  headers: Headers;
  body: Uint8Array;
  text: string;
  json(): unknown;
}

export async function v11(
  url: string,
  method: string,
  body: Uint8Array | string | object,
  opts: {
    hkey?: string;
    skey?: string;
    v?: number;
    path?: string;
    rawBody?: Uint8Array;
    headers?: Record<string, string>;
    /** The header's client version (`<version>,<build>,<platform>`). */
    c?: string;
  } = {},
): Promise<SyncReply> {
  const payload =
    typeof body === "string"
      ? new TextEncoder().encode(body)
      : body instanceof Uint8Array
        ? body
        : new TextEncoder().encode(JSON.stringify(body));
  const header = JSON.stringify({
    v: opts.v ?? 11,
    k: opts.hkey ?? "",
    c: opts.c ?? "test,1.0,linux",
    s: opts.skey ?? "skey1",
  });
  const res = await fetch(`${url}${opts.path ?? "sync"}/${method}`, {
    method: "POST",
    headers: {
      "anki-sync": header,
      "content-type": "application/octet-stream",
      ...opts.headers,
    },
    body: (opts.rawBody ?? Bun.zstdCompressSync(payload)) as Uint8Array<ArrayBuffer>,
  });
  const raw = new Uint8Array(await res.arrayBuffer());
  const decoded =
    res.status === 200 && res.headers.has("anki-original-size") ? Bun.zstdDecompressSync(raw) : raw;
  const text = new TextDecoder().decode(decoded);
  return {
    status: res.status,
    headers: res.headers,
    body: decoded,
    text,
    json: () => JSON.parse(text),
  };
}

export async function legacy(
  url: string,
  method: string,
  fields: Record<string, string | Blob>,
): Promise<{ status: number; body: Uint8Array; text: string }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${url}sync/${method}`, { method: "POST", body: form });
  const body = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, body, text: new TextDecoder().decode(body) };
}

export function gzipJson(value: unknown): Blob {
  return new Blob([Bun.gzipSync(new TextEncoder().encode(JSON.stringify(value)))]);
}

export async function login(url: string, user: string, password: string): Promise<string> {
  const reply = await v11(url, "hostKey", { u: user, p: password });
  if (reply.status !== 200) throw new Error(`login failed: ${reply.status}`);
  return (reply.json() as { key: string }).key;
}
