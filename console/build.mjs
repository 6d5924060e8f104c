// Builds the console into src/modrun/console/static (committed for the quick start;
// CI rebuilds it and checks the committed copy is current).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = new URL("../src/modrun/console/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { console: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: out,
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync("src/index.html", out + "index.html");
