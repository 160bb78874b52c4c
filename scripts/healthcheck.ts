/**
 * The container's health check: GET /ready on the local server (SYNC_PORT), exit 0 when it
 * answers 200 within the timeout, 1 otherwise (printing why: a read-only or nearly full data
 * folder makes the container unhealthy rather than a server that only answers 500s). The image
 * has no curl; Bun is there anyway.
 */
const port = process.env.SYNC_PORT || "8080";
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS) || 4000;

try {
  const res = await fetch(`http://127.0.0.1:${port}/ready`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    console.error(`health: status ${res.status} ${(await res.text()).trim()}`);
    process.exit(1);
  }
} catch (err) {
  console.error(`health: ${(err as Error).message}`);
  process.exit(1);
}
