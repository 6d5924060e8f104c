// One node's models and inference history.
import { useState } from "preact/hooks";
import { ApiError, json, useJson } from "../api";
import { Badge, Chart, Page, Rel, Show, Table, ms } from "../ui";

export function ModelsPage() {
  const models = useJson<{ models: any[] }>("/models", 10_000);
  return (
    <Page title="Models">
      <Show loaded={models} empty={(d) => !d.models.length && "No models: declare them under models in modrun.json."}>
        {(d) => (
          <div class="cards">
            {d.models.map((m) => (
              <ModelCard model={m} />
            ))}
          </div>
        )}
      </Show>
    </Page>
  );
}

function ModelCard(props: { model: any }) {
  const m = props.model;
  const healthy = m.status ? m.status.healthy : true;
  const [answer, setAnswer] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function invoke(event: Event) {
    event.preventDefault();
    const raw = String(new FormData(event.target as HTMLFormElement).get("payload") ?? "");
    let payload: unknown;
    try {
      payload = JSON.parse(raw);
    } catch {
      payload = raw;
    }
    setBusy(true);
    try {
      const result = await json("POST", `/models/${encodeURIComponent(m.name)}/invoke`, payload);
      setAnswer(JSON.stringify(result, null, 2));
    } catch (error) {
      setAnswer(error instanceof ApiError ? `Failed (${error.status}): ${error.message}` : String(error));
    }
    setBusy(false);
  }
  return (
    <article class="card">
      <h2>{m.name}</h2>
      <p>
        <Badge tone={healthy ? "ok" : "bad"}>{healthy ? "healthy" : "unhealthy"}</Badge> {m.provider}
        {m.sourceModel && <span class="muted"> · {m.sourceModel}</span>}
      </p>
      <form class="try" onSubmit={invoke}>
        <label>
          Input (JSON, or text)
          <textarea name="payload" rows={3} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Invoking…" : "Invoke"}
        </button>
        {answer && <pre class="output" role="status" tabIndex={0}>{answer}</pre>}
      </form>
    </article>
  );
}

export function InferencesPage() {
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [cursors, setCursors] = useState<string[]>([]);
  const [picked, setPicked] = useState<any>(null);
  const query = new URLSearchParams({ ...filters, limit: "50", ...(cursors.length ? { cursor: cursors[cursors.length - 1] } : {}) });
  const page = useJson<{ inferences: any[]; nextCursor: string | null }>(`/inferences?${query}`, 5_000);
  const recent = useJson<{ inferences: any[] }>(`/inferences?limit=1000&since=${Math.floor(Date.now() / 60_000) * 60 - 900}`, 10_000);
  const points = buckets(recent.data?.inferences ?? []);
  return (
    <Page title="Inferences">
      <Chart
        label="Model calls"
        unit="/min"
        points={points}
        series={[{ key: "count", name: "last minute" }]}
        format={(n) => n.toFixed(0)}
      />
      <Chart label="Model latency" unit="ms" points={points} series={[{ key: "p50", name: "p50" }]} />
      <form
        class="inline"
        aria-label="Filter inferences"
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.target as HTMLFormElement);
          const next: Record<string, string> = {};
          for (const key of ["model", "function", "plugin", "since"]) {
            const value = String(form.get(key) ?? "").trim();
            if (value) next[key] = key === "since" ? new Date(value).toISOString() : value;
          }
          setFilters(next);
          setCursors([]);
        }}
      >
        <label>
          Model <input name="model" />
        </label>
        <label>
          Function <input name="function" />
        </label>
        <label>
          Plugin <input name="plugin" />
        </label>
        <label>
          Since <input name="since" type="datetime-local" />
        </label>
        <button type="submit">Filter</button>
      </form>
      <Show loaded={page} empty={(d) => !d.inferences.length && "No inferences match: call a function that uses a model."}>
        {(d) => (
          <>
            <Table
              label="Inferences"
              head={["When", "Model", "Function", "Plugin", "Status", "Duration", ""]}
              rows={d.inferences.map((row) => [
                <Rel at={row.startedAt} />,
                row.model,
                row.function ?? "–",
                row.plugin ?? "–",
                <Badge tone={row.status === "success" ? "ok" : "bad"}>{row.status}</Badge>,
                ms(row.durationMs),
                <button type="button" class="link" onClick={() => setPicked(row)}>
                  Details
                </button>,
              ])}
            />
            <div class="pager">
              <button type="button" disabled={!cursors.length} onClick={() => setCursors(cursors.slice(0, -1))}>
                Newer
              </button>
              <button type="button" disabled={!d.nextCursor} onClick={() => d.nextCursor && setCursors([...cursors, d.nextCursor])}>
                Older
              </button>
            </div>
          </>
        )}
      </Show>
      {picked && (
        <section class="detail" aria-label="Inference detail">
          <h2>
            {picked.model} at <Rel at={picked.startedAt} />
          </h2>
          <h3>Input</h3>
          <pre class="output" tabIndex={0}>{JSON.stringify(picked.input, null, 2)}</pre>
          <h3>Output</h3>
          <pre class="output" tabIndex={0}>{JSON.stringify(picked.output ?? picked.error, null, 2)}</pre>
          <button type="button" onClick={() => setPicked(null)}>
            Close
          </button>
        </section>
      )}
    </Page>
  );
}

function buckets(rows: any[]): { t: number; count: number; p50: number | null }[] {
  const now = Math.floor(Date.now() / 60_000) * 60;
  const out = [];
  for (let t = now - 14 * 60; t <= now; t += 60) {
    const inside = rows.filter((r) => Math.floor(Date.parse(r.startedAt) / 60_000) * 60 === t);
    const durations = inside.map((r) => r.durationMs).sort((a, b) => a - b);
    out.push({ t, count: inside.length, p50: durations.length ? durations[Math.floor(durations.length / 2)] : null });
  }
  return out;
}
