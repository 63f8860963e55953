// The translator is a Kotlin/JS ES module that loads model info files through
// CommonJS require; it must find a global require before it is imported.
import { createRequire } from "node:module";

global.require = createRequire(import.meta.url);
