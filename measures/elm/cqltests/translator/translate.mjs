// translate.mjs turns the HL7 CQL specification test suite (XML files of CQL
// expressions and expected outputs) into ELM JSON test data for the Go harness
// in measures/elm/cqltests.
//
// Usage (from this folder, after `npm ci`):
//
//	node translate.mjs [path/to/cql-tests] [path/to/testdata]
//
// Defaults: ../shared/cql-tests relative to the repository root (the folder
// holding go.mod) and ../testdata. `go generate ./measures/elm/cqltests` runs
// exactly this.
//
// Output:
//
//	testdata/manifest.json          every test: family, group, name, CQL, expected
//	                                output, invalid marker, define names, and the
//	                                translator's errors when translation failed
//	testdata/elm/<Family>.json.gz   one ELM library per test file holding a define
//	                                per test expression and per expected output
//
// The XML files in supplement/ (Equitas's own tests in the suite's format, for
// operators the published measures use and the HL7 suite does not exercise)
// are translated the same way and marked "supplement" in the manifest.
//
// Each expression and each expected output is first translated on its own, so
// one bad expression cannot spoil the others; the family library is then built
// from the defines that translated cleanly and must itself translate cleanly.
import "./setup.mjs";

import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { SaxesParser } from "saxes";
import {
  CqlCompilerOptions,
  CqlTranslator,
  DefaultModelInfoProvider,
  LibraryBuilder,
  LibraryManager,
  ModelManager,
  createUcumService,
  stringAsPath,
} from "@cqframework/cql/cql-to-elm";
import { NamespaceManager } from "@cqframework/cql/cql";

const here = path.dirname(fileURLToPath(import.meta.url));

function repoRoot(dir) {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, "go.mod"))) return d;
    if (path.dirname(d) === d) throw new Error(`no go.mod above ${dir}`);
  }
}

const srcDir = path.resolve(process.argv[2] ?? path.join(repoRoot(here), "..", "shared", "cql-tests"));
const outDir = path.resolve(process.argv[3] ?? path.join(here, "..", "testdata"));
const modelsDir = path.join(srcDir, "models");

// The options the published eCQM libraries were translated with (see their
// CqlToElmInfo annotation), minus annotations and locators, which only add size.
const compilerOptions = new CqlCompilerOptions()
  .withOptions([
    CqlCompilerOptions.Options.DisableListDemotion,
    CqlCompilerOptions.Options.DisableListPromotion,
  ])
  .withSignatureLevel(LibraryBuilder.SignatureLevel.Overloads)
  .withValidateUnits(false);

// The translator only asks UCUM whether a unit is valid (validateUnits=false
// still consults it for quantity literals); the npm package ships no UCUM
// service. Accept every unit: checking units is the engine's job, and several
// tests exercise invalid units on purpose.
const acceptAllUnits = createUcumService(
  () => {
    throw new Error("unit conversion is not available at translation time");
  },
  () => null,
  () => {
    throw new Error("unit multiplication is not available at translation time");
  },
  () => {
    throw new Error("unit division is not available at translation time");
  },
);

function newLibraryManager() {
  const modelManager = new ModelManager(new NamespaceManager());
  modelManager.modelInfoLoader.registerModelInfoProvider(new DefaultModelInfoProvider(stringAsPath(modelsDir)));
  return new LibraryManager(modelManager, compilerOptions, null, acceptAllUnits);
}

// One library manager for all translations keeps the model info parsed once.
const libraryManager = newLibraryManager();

function ktList(list) {
  if (list == null) return [];
  if (typeof list.asJsReadonlyArrayView === "function") return Array.from(list.asJsReadonlyArrayView());
  if (typeof list.toArray === "function") return Array.from(list.toArray());
  return Array.from(list);
}

function libraryText(name, defines) {
  const lines = [`library "${name}" version '1.0.0'`, ""];
  for (const [defName, cql] of defines) lines.push(`define "${defName}":\n  ${cql.trim().replace(/\n/g, "\n  ")}\n`);
  return lines.join("\n");
}

// translate returns {elm, errors}; errors are the translator's messages.
function translate(name, defines) {
  let translator;
  try {
    translator = CqlTranslator.fromText(libraryText(name, defines), libraryManager);
  } catch (e) {
    return { elm: null, errors: [`translator exception: ${e?.message ?? e}`] };
  }
  // Each probe library holds one define, so the message alone says enough.
  const errors = ktList(translator.errors).map((e) => e.message);
  let elm = null;
  if (errors.length === 0) elm = JSON.parse(translator.toJson(), dropEmptyAnnotations);
  return { elm, errors };
}

// The translator writes "annotation": [] on every node; it carries nothing.
function dropEmptyAnnotations(key, value) {
  if (key === "annotation" && Array.isArray(value) && value.length === 0) return undefined;
  return value;
}

function parseTests(file) {
  const xml = fs.readFileSync(file, "utf8");
  const parser = new SaxesParser({ xmlns: false });
  const family = path.basename(file, ".xml");
  const tests = [];
  let suite = null;
  let group = null;
  let test = null;
  let text = null;
  parser.on("opentag", (tag) => {
    const a = tag.attributes;
    switch (tag.name) {
      case "tests":
        suite = a.name ?? family;
        break;
      case "group":
        group = a.name;
        break;
      case "test":
        test = { family, suite, group, name: a.name, expression: "", outputs: [], capabilities: [] };
        break;
      case "expression":
        if (test) test.invalid = a.invalid && a.invalid !== "false" ? a.invalid : "";
        text = "";
        break;
      case "output":
        text = "";
        break;
      case "capability":
        if (test) test.capabilities.push(a.value ? `${a.code}=${a.value}` : a.code);
        break;
    }
  });
  parser.on("text", (t) => {
    if (text !== null) text += t;
  });
  parser.on("closetag", (tag) => {
    switch (tag.name) {
      case "expression":
        test.expression = text.trim();
        text = null;
        break;
      case "output":
        test.outputs.push(text.trim());
        text = null;
        break;
      case "test":
        tests.push(test);
        test = null;
        break;
      case "group":
        group = null;
        break;
    }
  });
  parser.write(xml).close();
  return tests;
}

// Equitas's own tests in the suite's format, for operators the published
// measures use and the HL7 suite does not exercise.
const supplementDir = path.join(here, "supplement");

function xmlFiles(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".xml"))
    .sort()
    .map((f) => path.join(dir, f));
}

function main() {
  const files = [...xmlFiles(srcDir), ...xmlFiles(supplementDir)];
  fs.mkdirSync(path.join(outDir, "elm"), { recursive: true });
  const manifest = { source: "cqframework/cql-tests", translator: "@cqframework/cql 5.3.0", families: [] };
  for (const f of files) {
    const tests = parseTests(f);
    if (tests.length === 0) continue;
    const family = path.basename(f, ".xml");
    const libName = family;
    const defines = [];
    const seen = new Set();
    for (const t of tests) {
      let id = `${t.group}.${t.name}`;
      for (let n = 2; seen.has(id); n++) id = `${t.group}.${t.name}#${n}`;
      seen.add(id);
      t.id = id;
      const one = translate(`${libName}_probe`, [[id, t.expression]]);
      if (one.errors.length > 0) {
        t.translationErrors = one.errors;
      } else {
        t.define = id;
        defines.push([id, t.expression]);
      }
      if (t.outputs.length > 0) {
        // The suite's outputs are CQL literals; more than one output never
        // occurs for CQL (it is a FHIRPath collection feature).
        const exp = translate(`${libName}_probe`, [[`${id} expected`, t.outputs[0]]]);
        if (exp.errors.length > 0) {
          t.expectedTranslationErrors = exp.errors;
        } else {
          t.expectedDefine = `${id} expected`;
          defines.push([t.expectedDefine, t.outputs[0]]);
        }
      }
      delete t.suite;
      delete t.family;
    }
    const lib = translate(libName, defines);
    if (lib.errors.length > 0) {
      throw new Error(`${family}: combined library failed to translate:\n${lib.errors.join("\n")}`);
    }
    const elmFile = `elm/${family}.json.gz`;
    fs.writeFileSync(path.join(outDir, elmFile), zlib.gzipSync(JSON.stringify(lib.elm), { level: 9 }));
    const failed = tests.filter((t) => t.translationErrors || t.expectedTranslationErrors).length;
    const entry = { family, library: libName, elm: elmFile, tests };
    if (path.dirname(f) === supplementDir) entry.supplement = true;
    manifest.families.push(entry);
    console.log(`${family}: ${tests.length} tests, ${failed} with translation errors`);
  }
  fs.writeFileSync(path.join(outDir, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
}

main();
