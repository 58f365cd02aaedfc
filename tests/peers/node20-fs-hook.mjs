// Loader hook for @modelcontextprotocol/conformance 0.1.16 on Node 20.
//
// The suite's dist imports `globSync` from `fs`, which Node added in 22; on Node 20 the
// import fails before any scenario runs. This hook resolves `fs` / `node:fs` for modules
// of the conformance package only (nothing else is touched) to ./node20-fs-shim.mjs,
// which re-exports `node:fs` and adds a `globSync` good enough for the one pattern the
// suite uses (`**/<name>`, in its `tier-check` report, which keygate's tests never run).
// On Node 22+ the shim hands over to the real `fs.globSync`.
//
// Use: node --import ./node20-fs-hook.mjs node_modules/@modelcontextprotocol/conformance/dist/index.js …
import { register } from 'node:module';
register(new URL('./node20-fs-resolve.mjs', import.meta.url));
