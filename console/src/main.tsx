// The modrun console: one page per URL, served by modrun itself.
import "./style.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { json, mode, whenSignedOut, type Me } from "./api";
import { ArtifactPage, ArtifactsPage, AuditPage, DeploymentPage, DeploymentsPage, KeysPage, UsersPage } from "./pages/control";
import { ModulePage, ModulesPage, NodePage, NodesPage, Overview } from "./pages/fleet";
import { FunctionsPage } from "./pages/functions";
import { LoginPage } from "./pages/login";
import { InferencesPage, ModelsPage } from "./pages/node";
import { Link, navigate, usePath } from "./ui";

type Route = [RegExp, (match: RegExpMatchArray, me: Me | null) => preact.JSX.Element];

const FLEET: Route[] = [
  [/^\/(console\/?)?$/, () => <Overview />],
  [/^\/console\/nodes\/?$/, () => <NodesPage />],
  [/^\/console\/nodes\/([^/]+)$/, (m) => <NodePage id={decodeURIComponent(m[1])} />],
  [/^\/console\/modules\/?$/, () => <ModulesPage />],
  [/^\/console\/modules\/([^/]+)$/, (m) => <ModulePage id={decodeURIComponent(m[1])} />],
  [/^\/console\/functions\/?$/, () => <FunctionsPage />],
  [/^\/console\/artifacts\/?$/, (_m, me) => <ArtifactsPage me={me} />],
  [/^\/console\/artifacts\/([^/]+)$/, (m, me) => <ArtifactPage id={m[1]} me={me} />],
  [/^\/console\/deployments\/?$/, () => <DeploymentsPage />],
  [/^\/console\/deployments\/([^/]+)$/, (m) => <DeploymentPage id={m[1]} />],
  [/^\/console\/keys\/?$/, () => <KeysPage />],
  [/^\/console\/users\/?$/, (_m, me) => <UsersPage me={me} />],
  [/^\/console\/audit\/?$/, (_m, me) => <AuditPage me={me} />],
];

const NODE: Route[] = [
  [/^\/console\/?$/, () => <FunctionsPage />],
  [/^\/console\/functions\/?$/, () => <FunctionsPage />],
  [/^\/console\/models\/?$/, () => <ModelsPage />],
  [/^\/console\/inferences\/?$/, () => <InferencesPage />],
];

const NAV: Record<"fleet" | "node", [string, string, boolean?][]> = {
  fleet: [
    ["/console", "Overview"],
    ["/console/nodes", "Nodes"],
    ["/console/modules", "Modules"],
    ["/console/functions", "Functions"],
    ["/console/artifacts", "Artifacts"],
    ["/console/deployments", "Deployments"],
    ["/console/keys", "API keys"],
    ["/console/users", "Users & teams", true],
    ["/console/audit", "Audit log", true],
    ["/console/graphql", "GraphQL explorer"],
  ],
  node: [
    ["/console/functions", "Functions"],
    ["/console/models", "Models"],
    ["/console/inferences", "Inferences"],
    ["/graphql", "GraphQL explorer"],
  ],
};

function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | null | undefined>(mode === "node" ? null : undefined);
  useEffect(() => {
    whenSignedOut(() => {
      setMe(undefined);
      navigate("/console/login");
    });
    if (mode === "fleet" && me === undefined && !path.startsWith("/console/login")) {
      json<{ user: Me | null }>("GET", "/api/v2/session")
        .then(({ user }) => (user ? setMe(user) : navigate(`/console/login?next=${encodeURIComponent(location.pathname)}`)))
        .catch(() => navigate(`/console/login?next=${encodeURIComponent(location.pathname)}`));
    }
  }, [path, me]);

  if (mode === "fleet" && path.startsWith("/console/login")) {
    return <LoginPage onIn={(user) => setMe(user)} />;
  }
  if (me === undefined) return <p class="state" aria-busy="true">Loading…</p>;
  const routes = mode === "fleet" ? FLEET : NODE;
  let page: preact.JSX.Element = (
    <section class="page">
      <h1>Not found</h1>
      <p class="state empty">
        No page at {path}. <Link href="/console">Go to the start</Link>.
      </p>
    </section>
  );
  for (const [pattern, make] of routes) {
    const match = path.match(pattern);
    if (match) {
      page = make(match, me);
      break;
    }
  }
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <nav aria-label="Main">
        <div class="brand">modrun {mode === "node" ? "node" : "fleet"}</div>
        <ul>
          {NAV[mode]
            .filter(([, , adminOnly]) => !adminOnly || me?.admin)
            .map(([href, label]) =>
              href.endsWith("graphql") ? (
                <li>
                  <a href={href}>{label}</a>
                </li>
              ) : (
                <li>
                  <Link href={href} current={path === href || (href !== "/console" && path.startsWith(href))}>
                    {label}
                  </Link>
                </li>
              ),
            )}
        </ul>
        {me && (
          <div class="who">
            {me.username}
            {me.admin && " (admin)"}
            <button
              type="button"
              class="link"
              onClick={async () => {
                await json("DELETE", "/api/v2/session").catch(() => undefined);
                setMe(undefined);
                navigate("/console/login");
              }}
            >
              Sign out
            </button>
          </div>
        )}
      </nav>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
