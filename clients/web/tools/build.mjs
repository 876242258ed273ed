// npm run build: bundle + minify src/form.js and src/form.css into dist/.
// Deterministic: no source maps, no timestamps, pinned esbuild (package-lock),
// so CI can rebuild and `git diff --exit-code clients/web/dist`.
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

mkdirSync("dist", { recursive: true });
const common = { bundle: true, minify: true, logLevel: "warning", charset: "utf8", legalComments: "eof" };
await build({
  ...common,
  entryPoints: ["src/form.js"],
  outfile: "dist/form.js",
  format: "iife",
  // Browsers with BigInt (the crypto needs it); anything older keeps the
  // plain no-JS form, because the script fails before touching the page.
  target: ["chrome67", "firefox68", "safari14.1", "edge79"],
});
await build({
  ...common,
  entryPoints: ["src/form.css"],
  outfile: "dist/form.css",
  target: ["chrome67", "firefox68", "safari14.1", "edge79"],
});

// Pre-compressed copies the gateway serves to browsers that accept gzip
// (nearly all; it matters on 2G). gzip -9 through node's zlib: no name, no
// time in the header, so the output is reproducible.
for (const f of ["dist/form.js", "dist/form.css"]) {
  writeFileSync(f + ".gz", gzipSync(readFileSync(f), { level: 9 }));
}
