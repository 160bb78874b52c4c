/**
 * Which node base a request was addressed to. Behind the proxy a node sees `/sync/...` either
 * way: the proxy says which public prefix it stripped (`X-Forwarded-Prefix`, set per node
 * route; absent on the shared one), and the host the client used.
 */
export function addressedBase(headers: Headers): string {
  const host = (headers.get("x-forwarded-host") ?? headers.get("host") ?? "").split(",")[0];
  const prefix = (headers.get("x-forwarded-prefix") ?? "").split(",")[0]?.trim() ?? "";
  return normalBase(`${host?.trim() ?? ""}/${prefix}`);
}

/** `host/path/` of a public URL, the form `addressedBase` answers in. */
export function baseOfUrl(url: string): string {
  const parsed = new URL(url);
  return normalBase(`${parsed.host}/${parsed.pathname}`);
}

function normalBase(value: string): string {
  return `${value.toLowerCase().replace(/\/+/g, "/").replace(/\/$/, "")}/`;
}
