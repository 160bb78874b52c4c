/**
 * The container's health check: GET /health on the local server (SYNC_PORT), exit 0 when it
 * answers 200 within the timeout, 1 otherwise. The image has no curl; Bun is there anyway.
 */
const port = process.env.SYNC_PORT || "8080";
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS) || 4000;

try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    console.error(`health: status ${res.status}`);
    process.exit(1);
  }
} catch (err) {
  console.error(`health: ${(err as Error).message}`);
  process.exit(1);
}
