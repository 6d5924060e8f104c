import { useEffect, useState } from "preact/hooks";
import { errorText, json, request } from "../api";
import type { Me } from "../api";
import { navigate } from "../ui";

export function LoginPage(props: { onIn: (me: Me) => void }) {
  const params = new URLSearchParams(location.search);
  const [error, setError] = useState<string | null>(params.get("error"));
  const [busy, setBusy] = useState(false);
  const [oidc, setOidc] = useState(false);
  useEffect(() => {
    json<{ oidc?: boolean }>("GET", "/api/v2/session")
      .then((state) => setOidc(Boolean(state.oidc)))
      .catch(() => setOidc(false));
  }, []);
  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    setBusy(true);
    setError(null);
    const response = await request(
      "POST",
      "/api/v2/session",
      { username: form.get("username"), password: form.get("password") },
      false,
    );
    setBusy(false);
    if (!response.ok) {
      setError(
        response.status === 429
          ? "Too many failed attempts; wait a few minutes and try again."
          : await errorText(response),
      );
      return;
    }
    const { user } = await json<{ user: Me }>("GET", "/api/v2/session");
    props.onIn(user);
    const next = new URLSearchParams(location.search).get("next");
    navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/console");
  }
  return (
    <main class="login" id="main">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to modrun</h1>
        <label>
          Username or email
          <input name="username" autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        {error && (
          <p class="state error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {oidc && (
          <p>
            <a
              class="button secondary"
              href={`/api/v2/session/oidc?next=${encodeURIComponent(params.get("next") ?? "/console")}`}
            >
              Sign in with your organization's account
            </a>
          </p>
        )}
        <p class="muted small">
          First start: the admin's password is MODRUN_ADMIN_PASSWORD, or the one printed once in the
          orchestrator's log.
        </p>
      </form>
    </main>
  );
}
