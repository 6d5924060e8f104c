// The fleet: overview with live charts, nodes, modules.
import { useEffect, useRef, useState } from "preact/hooks";
import { useEvents, useJson } from "../api";
import { Badge, bytes, Chart, Link, ms, Page, Pager, percent, Rel, Show, Stat, Table } from "../ui";

interface Runtime {
  uuid: string;
  name: string;
  alive: boolean;
  status: string;
  labels: Record<string, string>;
  load: { cpu_percent?: number; mem_used?: number; cores?: number };
  modules: number;
  functions: number;
  ka_ts: string;
  url: string | null;
}

interface Summary {
  runtimes: Runtime[];
  modules: Record<string, number>;
}

interface Point {
  t: number;
  calls_per_s: number;
  error_rate: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

const STATE_NAMES: Record<string, string> = { A: "alive", Q: "queued", K: "killed", E: "exiting", D: "dead" };
const stateName = (s: string) => STATE_NAMES[s] ?? s;

function StateBadge(props: { state: string }) {
  const name = stateName(props.state).toLowerCase();
  const tone = name === "alive" ? "ok" : name === "queued" || name === "exiting" ? "warn" : "bad";
  return <Badge tone={tone}>{name}</Badge>;
}

export function Overview() {
  const live = useEvents("/api/events");
  const history = useJson<{ points: Point[] }>("/api/stats/calls?window=900&step=10", 10_000);
  const failures = useJson<{ results: { uuid: string; name: string; status: string; parent: string | null }[] }>(
    "/api/modules/?status=all",
    5_000,
  );
  const fleet: Summary | undefined = live.fleet;
  const points = history.data?.points ?? [];
  const latest: Point | undefined = live.calls ?? points[points.length - 1];
  const alive = fleet?.runtimes.filter((r) => r.alive).length ?? 0;
  const dead = (fleet?.runtimes.length ?? 0) - alive;
  return (
    <Page title="Overview">
      {!fleet ? (
        <p class="state" aria-busy="true">
          Connecting to the fleet…
        </p>
      ) : (
        <>
          <div class="stats">
            <Stat label="nodes alive" value={alive} tone={alive ? "ok" : "warn"} />
            <Stat label="nodes dead" value={dead} tone={dead ? "bad" : undefined} />
            {Object.entries(fleet.modules).map(([state, count]) => (
              <Stat label={`modules ${stateName(state).toLowerCase()}`} value={count} />
            ))}
            <Stat label="calls/s (gateway)" value={latest ? latest.calls_per_s.toFixed(1) : "–"} />
            <Stat
              label="error rate"
              value={latest ? percent(latest.error_rate) : "–"}
              tone={latest && latest.error_rate > 0.01 ? "bad" : undefined}
            />
            <Stat label="latency p50 / p95" value={latest ? `${ms(latest.p50_ms)} / ${ms(latest.p95_ms)}` : "–"} />
          </div>
          {alive === 0 && (
            <p class="state empty">
              No node has joined yet. Start one: <code>modrun serve --orchestrator {location.origin} --token …</code>{" "}
              (make the token with <code>modrun node-token</code>).
            </p>
          )}
          <div class="charts">
            <Chart label="Calls" unit="calls/s" points={points} series={[{ key: "calls_per_s", name: "now" }]} />
            <Chart
              label="Latency"
              unit="ms"
              points={points}
              series={[
                { key: "p50_ms", name: "p50" },
                { key: "p95_ms", name: "p95" },
              ]}
            />
            <Chart
              label="Errors"
              unit="%"
              points={points.map((p) => ({ ...p, error_pct: p.error_rate * 100 }))}
              series={[{ key: "error_pct", name: "now" }]}
            />
          </div>
          <h2>Nodes</h2>
          <NodesTable runtimes={fleet.runtimes} />
          <h2>Recent failures</h2>
          <Show
            loaded={failures}
            empty={(d) => !d.results.some((m) => m.status === "K" || m.status === "D") && "No module has failed."}
          >
            {(d) => (
              <Table
                label="Failed modules"
                head={["Module", "State"]}
                rows={d.results
                  .filter((m) => m.status === "K" || m.status === "D")
                  .slice(-10)
                  .map((m) => [<Link href={`/console/modules/${m.uuid}`}>{m.name}</Link>, <StateBadge state={m.status} />])}
              />
            )}
          </Show>
        </>
      )}
    </Page>
  );
}

const NODES_PAGE = 100;

function NodesTable(props: { runtimes: Runtime[] }) {
  // a fleet of a thousand nodes is shown a page at a time, filtered by name or label
  const [start, setStart] = useState(0);
  const [filter, setFilter] = useState("");
  if (!props.runtimes.length) return <p class="state empty">No nodes yet.</p>;
  const wanted = filter.trim().toLowerCase();
  const matching = wanted
    ? props.runtimes.filter(
        (r) =>
          r.name.toLowerCase().includes(wanted) ||
          Object.entries(r.labels).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(wanted)),
      )
    : props.runtimes;
  const from = Math.min(start, Math.max(0, matching.length - 1));
  const page = matching.slice(from, from + NODES_PAGE);
  return (
    <>
      {props.runtimes.length > NODES_PAGE / 10 && (
        <div class="pager">
          <input
            type="search"
            aria-label="Filter nodes"
            placeholder="Filter by name or label"
            value={filter}
            onInput={(e) => {
              setFilter((e.target as HTMLInputElement).value);
              setStart(0);
            }}
          />
          {matching.length > NODES_PAGE && (
            <Pager start={from} shown={page.length} size={NODES_PAGE} total={matching.length} onStart={setStart} />
          )}
        </div>
      )}
      <Table
        label="Nodes"
        head={["Node", "State", "Labels", "Modules", "Functions", "CPU", "Memory", "Last keepalive"]}
        rows={page.map((r) => [
        <Link href={`/console/nodes/${r.uuid}`}>{r.name}</Link>,
        <span data-node-state={r.alive ? "alive" : "dead"}>
          <Badge tone={r.alive ? "ok" : "bad"}>{r.alive ? "alive" : "dead"}</Badge>
        </span>,
        Object.entries(r.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ") || <span class="muted">none</span>,
        r.modules,
        r.functions,
        r.load?.cpu_percent === undefined ? "–" : `${r.load.cpu_percent.toFixed(1)} %`,
        bytes(r.load?.mem_used),
        <Rel at={r.ka_ts} />,
      ])}
      />
    </>
  );
}

export function NodesPage() {
  const live = useEvents("/api/events");
  return (
    <Page title="Nodes">
      {live.fleet ? <NodesTable runtimes={live.fleet.runtimes} /> : <p class="state" aria-busy="true">Loading…</p>}
    </Page>
  );
}

export function NodePage(props: { id: string }) {
  const live = useEvents("/api/events");
  const detail = useJson<any>(`/api/runtimes/${encodeURIComponent(props.id)}/`, 3_000);
  const summary: Runtime | undefined = live.fleet?.runtimes.find((r: Runtime) => r.uuid === props.id);
  return (
    <Page title={detail.data?.name ? `Node ${detail.data.name}` : "Node"}>
      <Show loaded={detail}>
        {(node) => {
          const alive = summary ? summary.alive : node.alive;
          return (
            <>
              <dl class="facts">
                <dt>State</dt>
                <dd data-node-state={alive ? "alive" : "dead"}>
                  <Badge tone={alive ? "ok" : "bad"}>{alive ? "alive" : "dead"}</Badge>
                </dd>
                <dt>Last keepalive</dt>
                <dd>
                  <Rel at={summary?.ka_ts ?? node.ka_ts} />
                </dd>
                <dt>Address</dt>
                <dd>
                  {node.metadata?.url ? (
                    <>
                      {node.metadata.url} (<a href={`${node.metadata.url}/console`}>its console: models, inferences</a>)
                    </>
                  ) : (
                    "–"
                  )}
                </dd>
                <dt>APIs</dt>
                <dd>{(node.apis ?? []).join(", ")}</dd>
                <dt>Labels</dt>
                <dd>
                  {Object.entries(node.labels ?? {})
                    .map(([k, v]) => `${k}=${v}`)
                    .join(", ") || "none"}
                </dd>
                <dt>Load</dt>
                <dd>
                  CPU {node.load?.cpu_percent?.toFixed?.(1) ?? "–"} %, memory {bytes(node.load?.mem_used)} of{" "}
                  {bytes(node.load?.mem_total)}
                </dd>
              </dl>
              <h2>Modules</h2>
              {node.children?.length ? (
                <Table
                  label="Modules on this node"
                  head={["Module", "File"]}
                  rows={node.children.map((m: any) => [
                    <Link href={`/console/modules/${m.uuid}`}>{m.name}</Link>,
                    <code>{m.file}</code>,
                  ])}
                />
              ) : (
                <p class="state empty">No modules run here.</p>
              )}
              <h2>Functions</h2>
              {node.functions?.length ? (
                <Table
                  label="Functions on this node"
                  head={["Function", "Plugin", "Signature"]}
                  rows={node.functions.map((f: any) => [f.name, f.plugin ?? "–", <code>{f.signature ?? ""}</code>])}
                />
              ) : (
                <p class="state empty">This node serves no functions.</p>
              )}
            </>
          );
        }}
      </Show>
    </Page>
  );
}

const MODULES_PAGE = 100;

export function ModulesPage() {
  // the fleet's lists come in pages (?start=&count=): a page at a time, whatever the fleet's size
  const [start, setStart] = useState(0);
  const modules = useJson<{ results: any[]; count: number }>(
    `/api/modules/?status=all&start=${start}&count=${MODULES_PAGE}`,
    3_000,
  );
  const shown = modules.data?.count ?? 0;
  const pager = <Pager start={start} shown={shown} size={MODULES_PAGE} onStart={setStart} />;
  return (
    <Page title="Modules" actions={pager}>
      <Show
        loaded={modules}
        empty={(d) => !d.results.length && "No modules yet: deploy an artifact, or create a module with modrun module create."}
      >
        {(d) => (
          <Table
            label="Modules"
            head={["Module", "State", "File"]}
            rows={d.results.map((m) => [
              <Link href={`/console/modules/${m.uuid}`}>{m.name}</Link>,
              <StateBadge state={m.status} />,
              <code>{m.file}</code>,
            ])}
          />
        )}
      </Show>
    </Page>
  );
}

export function ModulePage(props: { id: string }) {
  const module = useJson<any>(`/api/modules/${encodeURIComponent(props.id)}/`, 3_000);
  const output = useJson<{ lines: { at: string; stream: string; line: string }[] }>(
    `/api/modules/${encodeURIComponent(props.id)}/output`,
    1_000,
  );
  const tail = useRef<HTMLPreElement>(null);
  useEffect(() => {
    tail.current?.scrollTo(0, tail.current.scrollHeight);
  }, [output.data?.lines.length]);
  return (
    <Page title={module.data ? `Module ${module.data.name}` : "Module"}>
      <Show loaded={module}>
        {(m) => (
          <>
            <dl class="facts">
              <dt>State</dt>
              <dd>
                <StateBadge state={m.status} />
              </dd>
              <dt>Node</dt>
              <dd>{m.parent ? <Link href={`/console/nodes/${m.parent}`}>{m.parent}</Link> : "none (queued)"}</dd>
              <dt>Kind</dt>
              <dd>{m.kind}</dd>
              <dt>Restart policy</dt>
              <dd>
                {m.restart} ({m.restarts} restarts)
              </dd>
              <dt>Exit code</dt>
              <dd>{m.exit_code ?? "–"}</dd>
              <dt>Last error</dt>
              <dd>{m.last_error ?? "none"}</dd>
            </dl>
            <h2>History</h2>
            <ol class="timeline">
              {m.history.map((e: any) => (
                <li>
                  <Rel at={e.at} /> <StateBadge state={e.status} /> {e.runtime && <span class="muted">on {e.runtime.slice(0, 8)}</span>}{" "}
                  {e.reason}
                </li>
              ))}
            </ol>
            <h2>Output</h2>
            <pre class="output" ref={tail} aria-live="polite" tabIndex={0}>
              {(output.data?.lines ?? []).map((l) => (
                <span class={l.stream}>{l.line + "\n"}</span>
              ))}
              {!output.data?.lines.length && <span class="muted">Nothing printed yet (live).</span>}
            </pre>
          </>
        )}
      </Show>
    </Page>
  );
}
