"""The web console in a real browser: Debian's headless Chromium driven by
Playwright, against a real orchestrator, real nodes and a standalone node.

Every page visited is checked for browser console errors and with axe-core
(no serious or critical violations), and screenshotted (into
``MODRUN_SCREENSHOTS`` when set, for docs/console.md)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from control_support import ADMIN_PASSWORD, secured_fleet
from support import EXAMPLES, HELLO_AS, REPO, ModrunServer, chat_app, wait_until

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = REPO / "console" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() or not AXE.exists():
        message = "console tests need Debian's chromium and console/node_modules (make test installs both)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("console")
    secured = secured_fleet(root / "orch")
    try:
        yield secured, root
    finally:
        secured.stop()


def run_in_explorer(page, url: str, query: str) -> None:
    """Open the node's GraphQL explorer and run ``query`` in it."""
    page.goto(url + "/graphql")
    page.locator(".graphiql-container").wait_for()
    editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
    page.evaluate(f"{editor}.setValue({json.dumps(query)})")
    page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()


class Visitor:
    """A browser tab that records console errors and checks each page it shows."""

    def __init__(self, browser, shots: Path, width: int = 1280, height: int = 800) -> None:
        # bypass_csp only so axe-core can be injected; the page itself runs under its CSP
        self.context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.shots = shots

    def check(self, name: str) -> None:
        """No console errors so far, no serious accessibility violations, a screenshot."""
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        self.page.add_script_tag(path=str(AXE))
        found = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
        )
        assert found == [], f"{name}: accessibility violations {found}"
        assert self.errors == [], f"{name}: browser console errors {self.errors}"

    def login(self, base: str, username: str, password: str) -> None:
        self.page.goto(base + "/")
        self.page.wait_for_url("**/console/login**")
        self.check("login")
        self.page.get_by_label("Username or email").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/login" not in url)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("MODRUN_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_fleet_console_end_to_end(browser, fleet, shots, tmp_path: Path):
    secured, root = fleet
    orch, admin = secured.orch, secured.admin
    tab = Visitor(browser, shots)
    page = tab.page
    try:
        tab.login(orch.url, "admin", ADMIN_PASSWORD)
        page.get_by_role("heading", name="Overview").wait_for()
        # no token is readable by scripts: the session is an HttpOnly cookie
        assert page.evaluate("document.cookie") == ""
        assert page.evaluate("JSON.stringify(localStorage)") == "{}"
        tab.check("overview-empty")

        # a node joins: it appears on the nodes page without a reload
        page.get_by_role("link", name="Nodes").click()
        node = secured.node(root / "n1", "console-n1")
        row = page.get_by_role("row").filter(has_text="console-n1")
        row.locator("[data-node-state=alive]").wait_for(timeout=20_000)
        tab.check("nodes")

        # push a plugin through the upload form, deploy it from its page
        page.get_by_role("link", name="Artifacts").click()
        page.locator("input[type=file]").set_input_files(str(HELLO_AS))
        page.get_by_label("Name (a new name").fill("hello-console")
        page.get_by_role("button", name="Push").click()
        page.wait_for_url("**/console/artifacts/*")
        page.get_by_role("heading", name="Artifact hello-console").wait_for()
        tab.check("artifact")
        page.get_by_role("button", name="Deploy").click()
        page.wait_for_url("**/console/deployments/*")
        page.get_by_text("complete").first.wait_for(timeout=40_000)
        tab.check("deployment")

        # call it from the try-it form, then find the call in the overview's charts
        page.get_by_role("link", name="Functions").click()
        card = page.get_by_role("article").filter(has_text="greet")
        card.get_by_role("button", name="Try it").click()
        card.get_by_role("textbox").first.fill("Ada")
        card.get_by_role("button", name="Call").click()
        card.get_by_text("Hello, Ada!").wait_for()
        tab.check("functions")
        stats = httpx.get(
            orch.url + "/api/stats/calls?window=60&step=60", headers=admin.auth_headers()
        ).json()
        assert sum(p["calls_per_s"] for p in stats["points"]) > 0
        page.get_by_role("link", name="Overview").click()
        page.get_by_text("calls/s (gateway)").wait_for()
        wait_until(
            lambda: page.locator(".chart path.line.s0").first.get_attribute("d") not in (None, ""), timeout=20
        )
        tab.check("overview")

        # modules, a module's history and output, the audit log, keys
        page.get_by_role("link", name="Modules").click()
        page.get_by_role("link", name="hello-console").first.wait_for()
        # a page of modules at a time: one page here, so no next one
        assert page.get_by_role("button", name="Previous").is_disabled()
        assert page.get_by_role("button", name="Next").is_disabled()
        page.get_by_role("link", name="hello-console").first.click()
        page.get_by_role("heading", name="History").wait_for()
        tab.check("module")
        page.get_by_role("link", name="API keys").click()
        page.get_by_label("Name").fill("from-console")
        page.get_by_role("button", name="Create").click()
        shown = page.locator(".shown-once code").inner_text()
        assert shown.startswith("mrk_")
        tab.check("keys")
        page.get_by_role("link", name="Audit log").click()
        page.get_by_role("cell", name="api_key.create").first.wait_for()
        tab.check("audit")
        page.get_by_role("link", name="Users & teams").click()
        page.get_by_role("cell", name="admin", exact=True).wait_for()
        tab.check("users")

        # the node is killed: it turns dead on screen, no reload
        page.get_by_role("link", name="Nodes").click()
        row.locator("[data-node-state=alive]").wait_for()
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
        row.locator("[data-node-state=dead]").wait_for(timeout=15_000)
        tab.check("nodes-dead")
        # the phone-width layout works too
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("link", name="Overview").click()
        page.get_by_role("heading", name="Overview").wait_for()
        tab.check("overview-phone")
    finally:
        tab.close()


def test_a_reader_sees_no_admin_pages_and_no_deploy_button(browser, fleet, shots):
    secured, _root = fleet
    orch, admin = secured.orch, secured.admin
    name = f"reader{uuid.uuid4().hex[:6]}"
    admin.create_user(name, f"{name}@example.com", "reader-password-1")
    artifact = admin.push(HELLO_AS, name=f"public-{name}")["artifact_id"]
    admin.set_access(artifact, "public")
    tab = Visitor(browser, shots)
    page = tab.page
    try:
        tab.login(orch.url, name, "reader-password-1")
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Overview").wait_for()
        assert nav.get_by_role("link", name="Audit log").count() == 0
        assert nav.get_by_role("link", name="Users & teams").count() == 0
        page.goto(orch.url + "/console/audit")
        page.get_by_text("Only global admins may see this page.").wait_for()
        page.goto(orch.url + f"/console/artifacts/{artifact}")
        page.get_by_role("heading", name=f"Artifact public-{name}").wait_for()
        page.get_by_text("read", exact=True).first.wait_for()
        assert page.get_by_role("button", name="Deploy").count() == 0
        # the API refuses what the page does not offer, and cookies alone change nothing (CSRF)
        cookie = {c["name"]: c["value"] for c in tab.context.cookies()}["modrun_session"]
        forged = httpx.post(
            orch.url + f"/api/v2/deploy/{artifact}", json={"replicas": 1}, cookies={"modrun_session": cookie}
        )
        assert forged.status_code == 401
        with_header = httpx.post(
            orch.url + f"/api/v2/deploy/{artifact}",
            json={"replicas": 1},
            cookies={"modrun_session": cookie},
            headers={"x-modrun-console": "1"},
        )
        assert with_header.status_code == 403
        tab.check("reader-artifact")
    finally:
        tab.close()


def test_node_console_functions_models_and_inference_history(browser, shots, tmp_path: Path):
    app = tmp_path / "app"
    shutil.copytree(EXAMPLES, app, ignore=shutil.ignore_patterns("node_modules", "assembly", "src"))
    (tmp_path / "state").mkdir()
    node = ModrunServer(app, tmp_path / "state", "--noreload").start()
    tab = Visitor(browser, shots)
    page = tab.page
    try:
        page.goto(node.url + "/")
        page.wait_for_url("**/console")
        page.get_by_role("heading", name="Functions").wait_for()
        card = page.get_by_role("article").filter(has_text="mood")
        card.get_by_role("button", name="Try it").click()
        card.get_by_label("text").fill("What a wonderful, lovely day")
        card.get_by_role("button", name="Call").click()
        card.get_by_text("compound").wait_for()
        tab.check("node-functions")
        page.get_by_role("link", name="Models").click()
        page.get_by_role("heading", name="sentiment").wait_for()
        tab.check("node-models")
        page.get_by_role("link", name="Inferences").click()
        page.get_by_role("cell", name="sentiment").first.wait_for(timeout=15_000)
        page.get_by_role("button", name="Details").first.click()
        page.get_by_role("heading", name="Input").wait_for()
        assert "wonderful" in page.locator(".detail").inner_text()
        tab.check("node-inferences")
        # the GraphQL explorer is served from the node itself (no CDN) and runs a query
        explorer = httpx.get(node.url + "/graphql", headers={"accept": "text/html"}).text
        assert "unpkg.com" not in explorer and "https://" not in explorer
        outside: list[str] = []
        page.on("request", lambda r: r.url.startswith(node.url) or outside.append(r.url))
        run_in_explorer(page, node.url, '{ greet(name: "Ada") }')
        page.locator(".graphiql-response").get_by_text("Hello, Ada!").wait_for()
        page.screenshot(path=str(shots / "node-explorer.png"))
        assert outside == [] and [e for e in tab.errors if "favicon" not in e] == []
    finally:
        tab.close()
        node.stop()


def test_the_try_it_form_shows_a_stream_as_it_comes(browser, shots, tmp_path: Path, api_server: str):
    """A streaming function's output appears token by token in the form (the
    model sends one every 150 ms), then its chunk count once it is done; the
    GraphQL explorer runs it as a subscription."""
    app = chat_app(tmp_path / "app", api_server, "delay-150")
    (tmp_path / "state").mkdir()
    node = ModrunServer(app, tmp_path / "state", "--noreload").start()
    tab = Visitor(browser, shots)
    page = tab.page
    try:
        page.goto(node.url + "/console")
        card = page.get_by_role("article").filter(has_text="chatUpper")
        card.get_by_role("button", name="Try it").click()
        card.get_by_label("prompt").fill("count:8")
        card.get_by_role("button", name="Call").click()
        output = card.locator("pre.output").first
        card.get_by_text("streaming…").wait_for()
        wait_until(lambda: output.inner_text().startswith("1 2"), what="the first tokens")
        partial = output.inner_text()
        assert "8" not in partial, partial  # shown before the answer was complete
        card.get_by_text("8 chunks").wait_for(timeout=10_000)
        assert output.inner_text() == "1 2 3 4 5 6 7 8"
        tab.check("node-try-stream")
        # the explorer runs the same function as a subscription, over a WebSocket
        frames: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame))))
        run_in_explorer(page, node.url, 'subscription { chatUpper(prompt: "count:4") }')
        page.locator(".graphiql-response").get_by_text('"4"').wait_for(timeout=10_000)  # the last event shown
        events = [json.loads(f)["payload"]["data"]["chatUpper"] for f in frames if '"next"' in f]
        assert events == ["1 ", "2 ", "3 ", "4"], frames  # each as its own event, over the WebSocket
        assert [e for e in tab.errors if "favicon" not in e] == []
    finally:
        tab.close()
        node.stop()


def test_sign_in_through_the_identity_provider(browser, shots, tmp_path: Path):
    """With --auth oidc the login page offers the provider (a real, certified
    one: oidc-provider): the authorization code flow with PKCE through its
    login and consent pages, back to the console signed in as its user."""
    from oidc_support import oidc_fleet

    provider, orch = oidc_fleet(tmp_path)
    tab = Visitor(browser, shots)
    page = tab.page
    try:
        page.goto(orch.url + "/console/nodes")
        page.wait_for_url("**/console/login**")
        page.get_by_role("link", name="Sign in with your organization's account").wait_for()
        tab.check("login-oidc")
        page.get_by_role("link", name="Sign in with your organization's account").click()
        page.locator("input[name=login]").fill("alice")  # the provider's own pages
        page.locator("input[name=password]").fill("any")
        page.get_by_role("button", name="Sign-in").click()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/console/nodes")
        page.get_by_text("alice").first.wait_for()
        assert page.evaluate("document.cookie") == ""
        me = httpx.get(
            orch.url + "/api/v2/session",
            cookies={c["name"]: c["value"] for c in tab.context.cookies(orch.url)},
        ).json()["user"]
        assert me["username"] == "alice" and me["email"] == "alice@corp.example"
        # a callback not started in this browser is refused, and said so on the login page
        page.goto(orch.url + "/api/v2/session/oidc/callback?code=forged&state=forged")
        page.wait_for_url("**/console/login**")
        page.get_by_text("state mismatch").wait_for()
    finally:
        tab.close()
        orch.stop()
        provider.stop()
