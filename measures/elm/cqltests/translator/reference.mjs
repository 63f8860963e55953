// reference.mjs runs the CQL specification suite through the reference CQL
// engine that ships in @cqframework/cql (the Kotlin engine compiled to
// JavaScript) and records, per test, whether it agrees with the suite's
// expected output. The Go harness uses the record only to annotate failures:
// a test the reference engine fails too is more likely a suite or translator
// problem than an Equitas one.
//
// Usage (from this folder, after `npm ci` and translate.mjs):
//
//	node reference.mjs [path/to/testdata]
//
// Writes testdata/reference.json with the tests the reference engine does not
// pass: {"<family>/<group>.<name>": {"status": "fail"|"error", "got": "<its
// value or error>"}}. The engine is a beta port, and the translator-time UCUM
// stub gives it no unit conversion, so its failures are hints, not verdicts.
//
// The comparison is deliberately lenient (the values' printed forms with
// white space and trailing decimal zeros removed): the record is advisory.
import "./setup.mjs";

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  CqlCompilerOptions,
  DefaultModelInfoProvider,
  LibraryBuilder,
  LibraryManager,
  ModelManager,
  createLibrarySourceProvider,
  createUcumService,
  stringAsPath,
  stringAsSource,
} from "@cqframework/cql/cql-to-elm";
import { NamespaceManager } from "@cqframework/cql/cql";
import { CqlEngine, Environment, EvaluationParams } from "@cqframework/cql/engine";

const here = path.dirname(fileURLToPath(import.meta.url));

function repoRoot(dir) {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, "go.mod"))) return d;
    if (path.dirname(d) === d) throw new Error(`no go.mod above ${dir}`);
  }
}

const testdata = path.resolve(process.argv[2] ?? path.join(here, "..", "testdata"));
const modelsDir = path.join(repoRoot(here), "..", "shared", "cql-tests", "models");

const options = new CqlCompilerOptions()
  .withOptions([CqlCompilerOptions.Options.DisableListDemotion, CqlCompilerOptions.Options.DisableListPromotion])
  .withSignatureLevel(LibraryBuilder.SignatureLevel.Overloads)
  .withValidateUnits(false);
const modelManager = new ModelManager(new NamespaceManager());
modelManager.modelInfoLoader.registerModelInfoProvider(new DefaultModelInfoProvider(stringAsPath(modelsDir)));
const acceptAllUnits = createUcumService(
  () => {
    throw new Error("no unit conversion");
  },
  () => null,
  () => {
    throw new Error("no unit multiplication");
  },
  () => {
    throw new Error("no unit division");
  },
);
const libraryManager = new LibraryManager(modelManager, options, null, acceptAllUnits);
// Every test gets a library of its own name, so the manager's cache of
// compiled libraries never serves a stale one.
const sources = new Map();
libraryManager.librarySourceLoader.registerProvider(
  createLibrarySourceProvider((name) => (sources.has(name) ? stringAsSource(sources.get(name)) : null)),
);
const engine = new CqlEngine(new Environment(libraryManager));

function canonical(v) {
  if (v == null) return "null";
  return String(v)
    .replace(/\s+/g, "")
    .replace(/(\d+\.\d*?)0+(?=\D|$)/g, "$1")
    .replace(/(\d+)\.(?=\D|$)/g, "$1");
}

function evaluate(lib, expression, output) {
  const lines = [`library ${lib} version '1'`, `define T: ${expression}`];
  if (output !== undefined) lines.push(`define E: ${output}`);
  sources.set(lib, lines.join("\n") + "\n");
  const lp = new EvaluationParams.LibraryParams.Builder();
  lp.expressionsByName(output !== undefined ? ["T", "E"] : ["T"]);
  const b = new EvaluationParams.Builder();
  b.libraryByName(lib, lp.build());
  const results = engine.evaluate(b.build());
  const r = results.onlyResultOrThrow;
  return { got: r.getByName("T")?.value, want: output !== undefined ? r.getByName("E")?.value : undefined };
}

const manifest = JSON.parse(fs.readFileSync(path.join(testdata, "manifest.json"), "utf8"));
const record = {};
let n = 0;
for (const fam of manifest.families) {
  for (const t of fam.tests) {
    const key = `${fam.family}/${t.id}`;
    const lib = `Ref${n++}`;
    const invalid = t.invalid !== "";
    try {
      const { got, want } = evaluate(lib, t.expression, invalid ? undefined : t.outputs[0]);
      if (invalid) {
        record[key] = { status: "fail", got: canonical(got) };
      } else {
        const same = canonical(got) === canonical(want) && (got?.constructor?.name ?? "") === (want?.constructor?.name ?? "");
        record[key] = { status: same ? "pass" : "fail", got: String(got ?? "null").replace(/\s+/g, " ") };
      }
    } catch (e) {
      const msg = String(e?.message ?? e).split("\n")[0];
      record[key] = { status: invalid ? "pass" : "error", got: `error: ${msg}` };
    }
    sources.delete(lib);
  }
}
const counts = {};
for (const v of Object.values(record)) counts[v.status] = (counts[v.status] ?? 0) + 1;
// Only the tests the reference engine does not pass are kept; absent means pass.
const notPassing = Object.fromEntries(Object.entries(record).filter(([, v]) => v.status !== "pass"));
fs.writeFileSync(path.join(testdata, "reference.json"), JSON.stringify(notPassing, null, 1) + "\n");
console.log(`reference engine: ${JSON.stringify(counts)}`);
