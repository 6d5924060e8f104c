// The function catalog (the fleet's, or one node's) with a "try it" form
// generated from each function's typed schema.
import { useState } from "preact/hooks";
import { errorText, mode, readEvents, request, useJson } from "../api";
import { ms, Page, Show } from "../ui";

interface Param {
  name: string;
  type: string;
  description?: string | null;
}

interface Fn {
  name: string;
  plugin?: string | null;
  signature?: string | null;
  description?: string | null;
  params?: Param[] | null;
  input?: string | null;
  returns?: string | null;
  path?: string;
  streams?: boolean;
  runtimes?: { name: string }[];
}

export function FunctionsPage() {
  const path = mode === "fleet" ? "/api/functions" : "/functions";
  const loaded = useJson<{ results?: Fn[]; functions?: Fn[] }>(path, 10_000);
  const [filter, setFilter] = useState("");
  return (
    <Page title="Functions">
      <label class="filter">
        Filter
        <input
          type="search"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          placeholder="name or plugin"
        />
      </label>
      <Show
        loaded={loaded}
        empty={(d) =>
          !(d.results ?? d.functions ?? []).length &&
          (mode === "fleet"
            ? "No functions yet: deploy a plugin artifact (modrun push, then modrun deploy)."
            : "No functions: put .wasm plugins in the --plugins directory.")
        }
      >
        {(d) => (
          <div class="cards">
            {(d.results ?? d.functions ?? [])
              .filter((f) => `${f.name} ${f.plugin ?? ""}`.toLowerCase().includes(filter.toLowerCase()))
              .map((f) => (
                <FunctionCard fn={f} />
              ))}
          </div>
        )}
      </Show>
    </Page>
  );
}

function FunctionCard(props: { fn: Fn }) {
  const fn = props.fn;
  const [open, setOpen] = useState(false);
  const id = `fn-${fn.plugin ?? ""}-${fn.name}`.replace(/[^A-Za-z0-9_-]/g, "-");
  return (
    <article class="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        {fn.name} {fn.plugin && <span class="muted small">({fn.plugin})</span>}
      </h2>
      {fn.signature && <code class="signature">{fn.signature}</code>}
      <p>{fn.description || <span class="muted">No description in its schema.</span>}</p>
      {fn.runtimes && <p class="muted small">On {fn.runtimes.map((r) => r.name).join(", ")}</p>}
      <button type="button" aria-expanded={open} aria-controls={`${id}-try`} onClick={() => setOpen(!open)}>
        {open ? "Close" : "Try it"}
      </button>
      {open && <TryIt fn={fn} id={`${id}-try`} />}
    </article>
  );
}

function inputFor(param: Param) {
  const type = param.type.replace(/!$/, "");
  if (type === "Boolean") return { type: "checkbox" };
  if (type === "Int" || type === "Float") return { type: "number", step: type === "Int" ? "1" : "any" };
  return { type: "text" };
}

function valueOf(param: Param, raw: FormDataEntryValue | null): unknown {
  const type = param.type.replace(/!$/, "");
  if (type === "Boolean") return raw === "on";
  if (raw === null || raw === "") return null;
  if (type === "Int") return parseInt(String(raw), 10);
  if (type === "Float") return parseFloat(String(raw));
  if (type === "String" || type === "ID") return String(raw);
  try {
    return JSON.parse(String(raw));
  } catch {
    return String(raw);
  }
}

function TryIt(props: { fn: Fn; id: string }) {
  const fn = props.fn;
  const params = fn.params ?? [];
  const raw = !params.length || fn.input === "text" || fn.input === "bytes";
  const [result, setResult] = useState<{
    status: number;
    body: string;
    seconds: number;
    logs?: any[];
    live?: boolean; // still streaming
    chunks?: number;
  } | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    let body: string;
    if (raw) {
      body = String(form.get(params[0]?.name ?? "input") ?? "");
    } else {
      const object: Record<string, unknown> = {};
      for (const p of params) object[p.name] = valueOf(p, form.get(p.name));
      body = JSON.stringify(object);
    }
    setBusy(true);
    const started = performance.now();
    const path = fn.path ?? `/functions/${fn.name}`;
    const target = mode === "fleet" ? `/functions/${fn.name}` : path;
    if (fn.streams) {
      await stream(target, body, started);
      return;
    }
    const response = await request("POST", target, body);
    const seconds = (performance.now() - started) / 1000;
    const text = response.ok ? await response.text() : await errorText(response.clone());
    let logs: any[] | undefined;
    if (!response.ok) {
      try {
        logs = (await response.json()).logs;
      } catch {
        logs = undefined;
      }
    }
    setResult({ status: response.status, body: text, seconds, logs });
    setBusy(false);
  }
  // a streaming function: its output shown as it comes (server-sent events)
  async function stream(target: string, body: string, started: number) {
    const response = await request("POST", target, body, true, "text/event-stream");
    const elapsed = () => (performance.now() - started) / 1000;
    if (!response.ok || !response.body) {
      setResult({ status: response.status, body: await errorText(response), seconds: elapsed() });
      setBusy(false);
      return;
    }
    let text = "";
    let chunks = 0;
    setResult({ status: response.status, body: "", seconds: elapsed(), live: true, chunks });
    await readEvents(response, (name, data) => {
      if (name === "message") {
        text += data;
        chunks += 1;
        setResult({ status: 200, body: text, seconds: elapsed(), live: true, chunks });
      } else if (name === "error") {
        const failure = JSON.parse(data);
        setResult({ status: 500, body: `${text}\n${failure.error}`, seconds: elapsed(), logs: failure.logs, chunks });
      } else if (name === "done") {
        setResult({ status: 200, body: text, seconds: elapsed(), chunks: JSON.parse(data).chunks });
      }
    });
    setBusy(false);
  }
  return (
    <form class="try" id={props.id} onSubmit={submit}>
      {(params.length ? params : [{ name: "input", type: "String", description: "The raw input" }]).map((p) => (
        <label>
          {p.name} <span class="muted small">{p.type}</span>
          {raw ? (
            <textarea name={p.name} rows={3} />
          ) : (
            <input name={p.name} {...inputFor(p)} required={p.type.endsWith("!") && inputFor(p).type !== "checkbox"} />
          )}
          {p.description && <span class="muted small">{p.description}</span>}
        </label>
      ))}
      <button type="submit" disabled={busy}>
        {busy ? "Calling…" : "Call"}
      </button>
      {result && (
        <div class="result" role="status">
          <p>
            <strong>{result.status < 400 ? "Output" : `Failed (${result.status})`}</strong>{" "}
            {result.live ? "streaming…" : "in"} {ms(result.seconds * 1000)}
            {result.chunks !== undefined && <span class="muted small"> · {result.chunks} chunks</span>}
          </p>
          <pre class={result.status < 400 ? "output" : "output stderr"} tabIndex={0}>{result.body || "(empty)"}</pre>
          {result.logs?.length ? (
            <pre class="output" tabIndex={0}>{result.logs.map((l) => `${l.level} ${l.message}\n`).join("")}</pre>
          ) : null}
        </div>
      )}
    </form>
  );
}
