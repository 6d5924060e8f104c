// The control plane: artifacts (with upload), deployments, API keys, users,
// teams, the audit log. What a page offers follows the caller's permissions;
// the API refuses the rest anyway.
import { useState } from "preact/hooks";
import { ApiError, errorText, json, useJson } from "../api";
import type { Me } from "../api";
import { Sha256 } from "../sha256";
import { Badge, bytes, Link, navigate, Page, Rel, Show, Table } from "../ui";

const CHUNK = 8 * 1024 * 1024;

function Problem(props: { error: string | null }) {
  return props.error ? (
    <p class="state error" role="alert">
      {props.error}
    </p>
  ) : null;
}

async function attempt(run: () => Promise<unknown>, fail: (message: string | null) => void) {
  fail(null);
  try {
    await run();
  } catch (error) {
    fail(error instanceof ApiError ? `${error.message} (${error.status})` : String(error));
  }
}

// -- artifacts -----------------------------------------------------------------------------

function sendChunk(token: string, index: number, chunk: Blob, progress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v2/artifact/upload/${index}`);
    xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => progress(event.loaded);
    xhr.onload = () => {
      if (xhr.status === 200) resolve();
      else reject(new ApiError(xhr.status, JSON.parse(xhr.responseText || "{}").error ?? xhr.statusText));
    };
    xhr.onerror = () => reject(new Error("the connection failed during the upload"));
    xhr.send(chunk);
  });
}

async function upload(file: File, name: string, progress: (fraction: number) => void): Promise<any> {
  const type = file.name.endsWith(".wasm") ? "plugin" : "bundle";
  const { token } = await json<{ token: string }>("POST", "/api/v2/artifact/upload", { name, type });
  const hash = new Sha256();
  for (let index = 0, start = 0; start < file.size || index === 0; index++, start += CHUNK) {
    const chunk = file.slice(start, start + CHUNK);
    hash.update(new Uint8Array(await chunk.arrayBuffer()));
    await sendChunk(token, index, chunk, (sent) => progress((start + sent) / Math.max(1, file.size)));
    if (file.size === 0) break;
  }
  const response = await fetch("/api/v2/artifact/upload/commit", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ sha256: hash.hex() }),
  });
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  progress(1);
  return response.json();
}

function Uploader(props: { done: (artifact: string) => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [over, setOver] = useState(false);
  const [fraction, setFraction] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const pick = (f: File | undefined) => f && setFile(f);
  async function submit(event: Event) {
    event.preventDefault();
    if (!file) return;
    const name = String(new FormData(event.target as HTMLFormElement).get("name"));
    await attempt(async () => {
      setFraction(0);
      const pushed = await upload(file, name, setFraction);
      props.done(pushed.artifact_id);
    }, setError);
    setFraction(null);
  }
  return (
    <form class="upload" onSubmit={submit} aria-label="Push an artifact">
      <div
        class={`drop ${over ? "over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          pick(e.dataTransfer?.files[0]);
        }}
      >
        <label>
          {file ? `${file.name} (${bytes(file.size)})` : "Drop a .wasm plugin or a .zip/.tar.gz app bundle here, or choose one"}
          <input type="file" accept=".wasm,.zip,.tar,.gz,.tgz" onChange={(e) => pick((e.target as HTMLInputElement).files?.[0])} />
        </label>
      </div>
      <label>
        Name (a new name creates an artifact; an existing one adds a version)
        <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{1,63}" value={file?.name.replace(/\.(wasm|zip|tar\.gz|tgz|tar)$/, "") ?? ""} />
      </label>
      {fraction !== null && (
        <progress max={1} value={fraction} aria-label="Upload progress">
          {Math.round(fraction * 100)} %
        </progress>
      )}
      <Problem error={error} />
      <button type="submit" disabled={!file || fraction !== null}>
        Push
      </button>
    </form>
  );
}

export function ArtifactsPage(_props: { me: Me | null }) {
  const artifacts = useJson<{ artifacts: any[] }>("/api/v2/artifact/list", 10_000);
  return (
    <Page title="Artifacts">
      <Uploader done={(id) => navigate(`/console/artifacts/${id}`)} />
      <Show loaded={artifacts} empty={(d) => !d.artifacts.length && "No artifacts you can see yet: push one above."}>
        {(d) => (
          <Table
            label="Artifacts"
            head={["Name", "Type", "Access", "Latest version", "Created"]}
            rows={d.artifacts.map((a) => [
              <Link href={`/console/artifacts/${a.id}`}>{a.name}</Link>,
              a.type,
              a.access,
              a.latest_version ?? a.versions ?? "–",
              <Rel at={a.created_at} />,
            ])}
          />
        )}
      </Show>
    </Page>
  );
}

export function ArtifactPage(props: { id: string; me: Me | null }) {
  const artifact = useJson<any>(`/api/v2/artifact/${props.id}`);
  const permissions = useJson<any>(`/api/v2/artifact/${props.id}/permissions`);
  const [error, setError] = useState<string | null>(null);
  const level = permissions.data?.yours ?? "none";
  const canWrite = level === "write" || level === "owner";
  return (
    <Page title={artifact.data ? `Artifact ${artifact.data.name}` : "Artifact"}>
      <Show loaded={artifact}>
        {(a) => (
          <>
            <dl class="facts">
              <dt>Type</dt>
              <dd>{a.type}</dd>
              <dt>Access</dt>
              <dd>
                {a.access}, default permission {a.default_permission}
              </dd>
              <dt>Your permission</dt>
              <dd>{level}</dd>
              <dt>Aliases</dt>
              <dd>
                {Object.entries(a.aliases ?? {})
                  .map(([k, v]) => `${k} → v${v}`)
                  .join(", ") || "none"}
              </dd>
            </dl>
            {canWrite && (
              <form
                class="inline"
                onSubmit={(e) => {
                  e.preventDefault();
                  const form = new FormData(e.target as HTMLFormElement);
                  const replicas = String(form.get("replicas"));
                  attempt(async () => {
                    await json("POST", `/api/v2/deploy/${props.id}`, {
                      version: Number(form.get("version")),
                      replicas: replicas === "daemon" ? "daemon" : Number(replicas),
                    });
                    navigate(`/console/deployments/${props.id}`);
                  }, setError);
                }}
              >
                <label>
                  Version
                  <select name="version">
                    {[...a.versions].reverse().map((v: any) => (
                      <option value={v.version}>v{v.version}</option>
                    ))}
                  </select>
                </label>
                <label>
                  Replicas
                  <input name="replicas" value="1" size={6} aria-describedby="replicas-help" />
                </label>
                <span id="replicas-help" class="muted small">
                  a number, or daemon (one per node)
                </span>
                <button type="submit">Deploy</button>
              </form>
            )}
            <Problem error={error} />
            <h2>Versions</h2>
            <Table
              label="Versions"
              head={["Version", "SHA-256", "Size", "Pushed by", "When", "Tags"]}
              rows={[...a.versions].reverse().map((v: any) => [
                `v${v.version}`,
                <code title={v.sha256}>{v.sha256.slice(0, 16)}…</code>,
                bytes(v.size),
                v.pushed_by,
                <Rel at={v.pushed_at} />,
                (v.tags ?? []).join(", "),
              ])}
            />
            <h2>Permissions</h2>
            <Show loaded={permissions}>
              {(p) => <pre class="output" tabIndex={0}>{JSON.stringify(p, null, 2)}</pre>}
            </Show>
          </>
        )}
      </Show>
    </Page>
  );
}

// -- deployments --------------------------------------------------------------------------

function statusTone(status: string) {
  return status === "complete" ? "ok" : status === "failed" ? "bad" : status === "stopped" ? "muted" : "warn";
}

export function DeploymentsPage() {
  const deployments = useJson<{ deployments: any[] }>("/api/v2/deploy/list", 3_000);
  const names = useJson<{ artifacts: any[] }>("/api/v2/artifact/list");
  const nameOf = (id: string) => names.data?.artifacts.find((a) => a.id === id)?.name ?? id.slice(0, 8);
  return (
    <Page title="Deployments">
      <Show loaded={deployments} empty={(d) => !d.deployments.length && "Nothing is deployed: open an artifact and deploy it."}>
        {(d) => (
          <Table
            label="Deployments"
            head={["Artifact", "Status", "Version", "Replicas", "Where", "Deployed by"]}
            rows={d.deployments.map((x) => [
              <Link href={`/console/deployments/${x.artifact_id}`}>{nameOf(x.artifact_id)}</Link>,
              <Badge tone={statusTone(x.status)}>{x.status}</Badge>,
              `v${x.version}`,
              x.replicas_wanted,
              x.replicas.map((r: any) => `${r.node ?? "–"} (v${r.version} ${r.state})`).join(", ") || "–",
              x.deployed_by,
            ])}
          />
        )}
      </Show>
    </Page>
  );
}

export function DeploymentPage(props: { id: string }) {
  const status = useJson<any>(`/api/v2/deploy/${props.id}/status`, 2_000);
  const history = useJson<{ history: any[] }>(`/api/v2/deploy/${props.id}/history`, 5_000);
  const permissions = useJson<any>(`/api/v2/artifact/${props.id}/permissions`);
  const [error, setError] = useState<string | null>(null);
  const canWrite = ["write", "owner"].includes(permissions.data?.yours);
  return (
    <Page
      title="Deployment"
      actions={
        canWrite && (
          <button
            type="button"
            onClick={() => attempt(() => json("POST", `/api/v2/deploy/${props.id}/rollback`).then(status.reload), setError)}
          >
            Roll back
          </button>
        )
      }
    >
      <Problem error={error} />
      <Show loaded={status}>
        {(s) => {
          const serving = s.replicas.filter((r: any) => r.state === "serving" && r.version === s.version).length;
          const wanted = typeof s.replicas_wanted === "number" ? s.replicas_wanted : s.replicas.length;
          return (
            <>
              <dl class="facts">
                <dt>Status</dt>
                <dd>
                  <Badge tone={statusTone(s.status)}>{s.status}</Badge>
                </dd>
                <dt>Version</dt>
                <dd>v{s.version}</dd>
                <dt>Rollout</dt>
                <dd>
                  <progress max={Math.max(1, wanted)} value={serving} aria-label="Replicas of this version serving" />{" "}
                  {serving} of {wanted} replicas of v{s.version} serving
                </dd>
              </dl>
              {s.errors?.length ? <Problem error={s.errors.join("; ")} /> : null}
              <h2>Replicas</h2>
              <Table
                label="Replicas"
                head={["Node", "Version", "State", "Module"]}
                rows={s.replicas.map((r: any) => [
                  r.node ?? "–",
                  `v${r.version}`,
                  r.state,
                  <Link href={`/console/modules/${r.module}`}>{r.module.slice(0, 8)}</Link>,
                ])}
              />
            </>
          );
        }}
      </Show>
      <h2>History</h2>
      <Show loaded={history} empty={(h) => !h.history.length && "No history yet."}>
        {(h) => (
          <Table
            label="Deployment history"
            head={["When", "Event", "Version", "Node", "By", "Detail"]}
            rows={[...h.history].reverse().map((e) => [
              <Rel at={e.at} />,
              e.event,
              e.version ? `v${e.version}` : "–",
              e.runtime ?? "–",
              e.actor,
              e.detail ?? "",
            ])}
          />
        )}
      </Show>
    </Page>
  );
}

// -- keys, users, audit ---------------------------------------------------------------------

export function KeysPage() {
  const keys = useJson<{ keys: any[] }>("/api/v2/api-key/list");
  const [shown, setShown] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <Page title="API keys">
      <form
        class="inline"
        aria-label="Create an API key"
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.target as HTMLFormElement);
          const days = Number(form.get("days"));
          attempt(async () => {
            const made = await json<{ api_key: string }>("POST", "/api/v2/api-key/create", {
              name: form.get("name"),
              all_artifacts: true,
              scopes: form.getAll("scope"),
              exp: new Date(Date.now() + days * 86_400_000).toISOString(),
            });
            setShown(made.api_key);
            keys.reload();
          }, setError);
        }}
      >
        <label>
          Name
          <input name="name" required />
        </label>
        <fieldset>
          <legend>Scopes</legend>
          {["invoke", "read", "deploy", "manage"].map((scope) => (
            <label class="check">
              <input type="checkbox" name="scope" value={scope} checked={scope === "invoke"} /> {scope}
            </label>
          ))}
        </fieldset>
        <label>
          Days valid
          <input name="days" type="number" min={1} max={90} value={30} />
        </label>
        <button type="submit">Create</button>
      </form>
      <Problem error={error} />
      {shown && (
        <div class="shown-once" role="status">
          <p>
            <strong>Copy this key now: it is shown once.</strong>
          </p>
          <code>{shown}</code>
        </div>
      )}
      <Show loaded={keys} empty={(d) => !d.keys.length && "You have no API keys."}>
        {(d) => (
          <Table
            label="Your API keys"
            head={["Name", "Prefix", "Scopes", "Expires", "Last used", ""]}
            rows={d.keys.map((k) => [
              k.name,
              <code>{k.prefix}…</code>,
              k.scopes.join(", "),
              <Rel at={k.expires_at} />,
              <Rel at={k.last_used_at} />,
              <button
                type="button"
                class="danger"
                onClick={() => attempt(() => json("POST", "/api/v2/api-key/delete", { api_key_id: k.id }).then(keys.reload), setError)}
              >
                Delete
              </button>,
            ])}
          />
        )}
      </Show>
    </Page>
  );
}

function AdminOnly(props: { me: Me | null }) {
  return props.me?.admin ? null : (
    <p class="state error" role="alert">
      Only global admins may see this page.
    </p>
  );
}

export function UsersPage(props: { me: Me | null }) {
  const users = useJson<{ users: any[] }>(props.me?.admin ? "/api/v2/user/list" : null);
  const teams = useJson<{ teams: any[] }>(props.me?.admin ? "/api/v2/team/list" : null);
  if (!props.me?.admin) return <Page title="Users & teams"><AdminOnly me={props.me} /></Page>;
  return (
    <Page title="Users & teams">
      <h2>Users</h2>
      <Show loaded={users}>
        {(d) => (
          <Table
            label="Users"
            head={["Username", "Email", "Admin"]}
            rows={d.users.map((u) => [u.username, u.email ?? "–", u.admin ? "yes" : "no"])}
          />
        )}
      </Show>
      <h2>Teams</h2>
      <Show loaded={teams} empty={(d) => !d.teams.length && "No teams yet."}>
        {(d) => <Table label="Teams" head={["Team"]} rows={d.teams.map((t) => [t.name])} />}
      </Show>
    </Page>
  );
}

export function AuditPage(props: { me: Me | null }) {
  const [outcome, setOutcome] = useState("");
  const audit = useJson<{ entries: any[] }>(
    props.me?.admin ? `/api/v2/audit?limit=200${outcome ? `&outcome=${outcome}` : ""}` : null,
    5_000,
  );
  if (!props.me?.admin) return <Page title="Audit log"><AdminOnly me={props.me} /></Page>;
  return (
    <Page title="Audit log">
      <label class="filter">
        Outcome
        <select value={outcome} onChange={(e) => setOutcome((e.target as HTMLSelectElement).value)}>
          <option value="">all</option>
          <option value="ok">ok</option>
          <option value="denied">denied</option>
          <option value="error">error</option>
        </select>
      </label>
      <Show loaded={audit} empty={(d) => !d.entries.length && "Nothing recorded yet."}>
        {(d) => (
          <Table
            label="Audit log"
            head={["When", "Actor", "Action", "Target", "Outcome", "Status"]}
            rows={d.entries.map((e) => [
              <Rel at={e.at} />,
              e.actor,
              e.action,
              e.target ?? "–",
              <Badge tone={e.outcome === "ok" ? "ok" : e.outcome === "denied" ? "warn" : "bad"}>{e.outcome}</Badge>,
              e.status,
            ])}
          />
        )}
      </Show>
    </Page>
  );
}
