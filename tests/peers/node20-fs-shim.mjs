// `node:fs` plus `globSync` for Node 20 (see ./node20-fs-hook.mjs). Only `**/<name>` patterns.
import fs from 'node:fs';
import path from 'node:path';
export * from 'node:fs';
export default fs;
export function globSync(pattern, options = {}) {
  if (fs.globSync) return fs.globSync(pattern, options);
  const m = /^\*\*\/([^*?/[\]{}]+)$/.exec(pattern);
  if (!m) throw new Error(`globSync shim supports only **/<name>, not ${pattern}`);
  const cwd = options.cwd ?? process.cwd();
  const out = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(cwd, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) walk(r); else if (e.name === m[1]) out.push(r);
    }
  };
  walk('');
  return out;
}
