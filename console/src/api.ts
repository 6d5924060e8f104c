// Talking to modrun from the console. The session lives in HttpOnly cookies
// (no token is ever visible to scripts); requests that change something carry
// the X-Modrun-Console header, which the server requires with cookies (CSRF).
import { useEffect, useState } from "preact/hooks";

/** The signed-in user, as ``GET /api/v2/user/info`` describes them. */
export interface Me {
  id: string;
  username: string;
  admin: boolean;
}

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export const mode: "fleet" | "node" = document.body.dataset.mode === "node" ? "node" : "fleet";

let refreshing: Promise<boolean> | null = null;

async function refreshSession(): Promise<boolean> {
  if (mode !== "fleet") return false;
  refreshing ??= fetch("/api/v2/session/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "x-modrun-console": "1" },
  })
    .then((r) => r.ok)
    .finally(() => setTimeout(() => (refreshing = null), 0));
  return refreshing;
}

export type Body = BodyInit | object | undefined;

export async function request(
  method: string,
  path: string,
  body?: Body,
  retry = true,
  accept = "application/json",
): Promise<Response> {
  const headers: Record<string, string> = { accept };
  if (method !== "GET") headers["x-modrun-console"] = "1";
  let payload: BodyInit | undefined;
  if (body instanceof Blob || body instanceof ArrayBuffer || typeof body === "string") {
    payload = body as BodyInit;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401 && retry && (await refreshSession())) {
    return request(method, path, body, false, accept);
  }
  return response;
}

export async function json<T = any>(method: string, path: string, body?: Body): Promise<T> {
  const response = await request(method, path, body);
  if (response.status === 401 && mode === "fleet" && !location.pathname.startsWith("/console/login")) {
    signedOut();
  }
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return response.status === 204 ? (undefined as T) : response.json();
}

export async function errorText(response: Response): Promise<string> {
  try {
    const data = await response.json();
    return data.error ?? data.errors?.[0]?.message ?? response.statusText;
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

let onSignedOut: () => void = () => {};
export function whenSignedOut(handler: () => void) {
  onSignedOut = handler;
}
function signedOut() {
  onSignedOut();
}

export interface Loaded<T> {
  data?: T;
  error?: ApiError | Error;
  loading: boolean;
  reload: () => void;
}

/** GET ``path`` as JSON, again whenever ``path`` or ``every`` (ms polling) asks. */
export function useJson<T = any>(path: string | null, every?: number): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    json<T>("GET", path)
      .then((data) => live && setState({ data, loading: false }))
      .catch((error) => live && setState((old) => ({ data: old.data, error, loading: false })));
    const timer = every ? setTimeout(() => setTick((t) => t + 1), every) : undefined;
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [path, tick, every]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** The latest payload of each event name from a server-sent event stream. */
export function useEvents(path: string): { [event: string]: any } {
  const [latest, setLatest] = useState<{ [event: string]: any }>({});
  useEffect(() => {
    const source = new EventSource(path, { withCredentials: true });
    const take = (name: string) => (event: MessageEvent) =>
      setLatest((old) => ({ ...old, [name]: JSON.parse(event.data) }));
    source.addEventListener("fleet", take("fleet"));
    source.addEventListener("calls", take("calls"));
    return () => source.close();
  }, [path]);
  return latest;
}

/** Server-sent events of a streaming answer as they arrive: ``onEvent(name, data)``
 * for each, until the stream ends. */
export async function readEvents(response: Response, onEvent: (name: string, data: string) => void): Promise<void> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    let end: number;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      let name = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.startsWith("data: ") ? line.slice(6) : line.slice(5));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}
