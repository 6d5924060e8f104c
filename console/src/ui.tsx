// Small shared pieces: navigation, states, tables, times, numbers, a chart.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { Loaded } from "./api";

const listeners = new Set<() => void>();

export function navigate(path: string) {
  history.pushState(null, "", path);
  listeners.forEach((listener) => listener());
  window.scrollTo(0, 0);
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return path;
}

export function Link(props: { href: string; children: ComponentChildren; class?: string; current?: boolean }) {
  return (
    <a
      href={props.href}
      class={props.class}
      aria-current={props.current ? "page" : undefined}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

export function Page(props: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${props.title} · modrun`;
  }, [props.title]);
  return (
    <section class="page">
      <header class="page-head">
        <h1>{props.title}</h1>
        {props.actions && <div class="actions">{props.actions}</div>}
      </header>
      {props.children}
    </section>
  );
}

/** Loading, error and empty states that say what to do; else the children. */
export function Show<T>(props: {
  loaded: Loaded<T>;
  empty?: (data: T) => string | false;
  children: (data: T) => ComponentChildren;
}) {
  const { data, error, loading } = props.loaded;
  if (error && data === undefined) {
    const hint =
      "status" in error && (error as any).status === 403
        ? "You are not allowed to see this; ask an admin for access."
        : "Check that the server is running, then reload.";
    return (
      <p class="state error" role="alert">
        Could not load: {error.message}. {hint}
      </p>
    );
  }
  if (loading && data === undefined) return <p class="state" aria-busy="true">Loading…</p>;
  if (data === undefined) return null;
  const empty = props.empty?.(data);
  if (empty) return <p class="state empty">{empty}</p>;
  return <>{props.children(data)}</>;
}

export function Table(props: { head: ComponentChildren[]; rows: ComponentChildren[][]; label: string }) {
  return (
    <div class="table-wrap">
      <table aria-label={props.label}>
        <thead>
          <tr>
            {props.head.map((cell) => (
              <th scope="col">{cell}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr>
              {row.map((cell) => (
                <td>{cell}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Badge(props: { tone: "ok" | "bad" | "warn" | "muted"; children: ComponentChildren }) {
  return <span class={`badge ${props.tone}`}>{props.children}</span>;
}

const UNITS: [number, string][] = [
  [60, "s"],
  [60, "min"],
  [24, "h"],
  [365, "d"],
];

export function relative(iso: string | number, now = Date.now()): string {
  const then = typeof iso === "number" ? iso * 1000 : Date.parse(iso);
  let delta = Math.round((now - then) / 1000);
  const future = delta < 0;
  delta = Math.abs(delta);
  if (delta < 5) return "just now";
  let unit = "s";
  for (const [size, name] of UNITS) {
    unit = name;
    if (delta < size) break;
    delta = Math.floor(delta / size);
  }
  return future ? `in ${delta} ${unit}` : `${delta} ${unit} ago`;
}

/** A relative time that keeps itself current, the exact time on hover. */
// one clock for every relative time on the page (a thousand rows: one timer, not a thousand)
const ticking = new Set<() => void>();
let clock: ReturnType<typeof setInterval> | undefined;

function useEverySecond() {
  const [, tick] = useState(0);
  useEffect(() => {
    const update = () => tick((t) => t + 1);
    ticking.add(update);
    clock ??= setInterval(() => ticking.forEach((f) => f()), 1000);
    return () => {
      ticking.delete(update);
      if (!ticking.size && clock !== undefined) {
        clearInterval(clock);
        clock = undefined;
      }
    };
  }, []);
}

/** Previous / Next over a list shown ``size`` at a time (``shown`` on this page, of ``total`` when known). */
export function Pager(props: { start: number; shown: number; size: number; total?: number; onStart: (n: number) => void }) {
  const last = props.total !== undefined ? props.start + props.shown >= props.total : props.shown < props.size;
  return (
    <div class="pager">
      <span class="muted">
        {props.shown ? `${props.start + 1}–${props.start + props.shown}` : ""}
        {props.total !== undefined && props.shown ? ` of ${props.total.toLocaleString()}` : ""}
      </span>
      <button type="button" disabled={props.start === 0} onClick={() => props.onStart(Math.max(0, props.start - props.size))}>
        Previous
      </button>
      <button type="button" disabled={last} onClick={() => props.onStart(props.start + props.size)}>
        Next
      </button>
    </div>
  );
}

export function Rel(props: { at: string | number | null | undefined }) {
  useEverySecond();
  if (props.at === null || props.at === undefined || props.at === -1) return <span class="muted">never</span>;
  const exact = new Date(typeof props.at === "number" ? props.at * 1000 : props.at);
  return (
    <time dateTime={exact.toISOString()} title={exact.toLocaleString()}>
      {relative(props.at)}
    </time>
  );
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let value = n;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  return n < 1 ? `${(n * 1000).toFixed(0)} µs` : n < 1000 ? `${n.toFixed(n < 10 ? 2 : 0)} ms` : `${(n / 1000).toFixed(2)} s`;
}

export function percent(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : `${(n * 100).toFixed(n < 0.01 && n > 0 ? 2 : 1)} %`;
}

/** A line chart as SVG: one or more series over time, with the unit on the axis. */
export function Chart(props: {
  label: string;
  unit: string;
  points: { t: number; [key: string]: number | null }[];
  series: { key: string; name: string }[];
  format?: (n: number) => string;
}) {
  const width = 600;
  const height = 160;
  const pad = { left: 48, right: 8, top: 8, bottom: 20 };
  const values = props.points.flatMap((p) => props.series.map((s) => p[s.key])).filter((v): v is number => v !== null);
  const top = Math.max(1e-9, ...values) * 1.1;
  const t0 = props.points[0]?.t ?? 0;
  const t1 = props.points[props.points.length - 1]?.t ?? 1;
  const x = (t: number) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  const format = props.format ?? ((n: number) => n.toFixed(n < 10 ? 2 : 0));
  const latest = props.points[props.points.length - 1];
  return (
    <figure class="chart">
      <figcaption>
        {props.label}
        {latest &&
          props.series.map((s) => (
            <span class="latest">
              {" "}
              {s.name}: {latest[s.key] === null ? "–" : `${format(latest[s.key] as number)} ${props.unit}`}
            </span>
          ))}
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${props.label} over the last 15 minutes`}>
        <line x1={pad.left} x2={width - pad.right} y1={y(0)} y2={y(0)} class="axis" />
        <text x={pad.left - 4} y={pad.top + 8} class="tick" text-anchor="end">
          {format(top)} {props.unit}
        </text>
        <text x={pad.left - 4} y={y(0)} class="tick" text-anchor="end">
          0
        </text>
        <text x={pad.left} y={height - 4} class="tick">
          −15 min
        </text>
        <text x={width - pad.right} y={height - 4} class="tick" text-anchor="end">
          now
        </text>
        {props.series.map((s, i) => {
          const path = props.points
            .filter((p) => p[s.key] !== null)
            .map((p, j) => `${j ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[s.key] as number).toFixed(1)}`)
            .join("");
          return <path d={path} class={`line s${i}`} />;
        })}
      </svg>
    </figure>
  );
}

export function Stat(props: { label: string; value: ComponentChildren; tone?: "ok" | "bad" | "warn" }) {
  return (
    <div class={`stat ${props.tone ?? ""}`}>
      <div class="value">{props.value}</div>
      <div class="label">{props.label}</div>
    </div>
  );
}
