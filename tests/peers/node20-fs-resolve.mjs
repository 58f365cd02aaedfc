// Resolve hook registered by ./node20-fs-hook.mjs (see there for why).
const shim = new URL('./node20-fs-shim.mjs', import.meta.url).href;
export async function resolve(specifier, context, next) {
  if (
    (specifier === 'fs' || specifier === 'node:fs') &&
    context.parentURL &&
    context.parentURL.includes('/@modelcontextprotocol/conformance/')
  ) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
