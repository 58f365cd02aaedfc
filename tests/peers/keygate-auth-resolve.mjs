// Resolve hook registered by ./keygate-auth-hook.mjs: the conformance package's
// `undici` import becomes ./undici-auth-shim.mjs.
const shim = new URL('./undici-auth-shim.mjs', import.meta.url).href;
export async function resolve(specifier, context, next) {
  if (
    specifier === 'undici' &&
    context.parentURL &&
    context.parentURL.includes('/@modelcontextprotocol/conformance/')
  ) {
    return { url: shim, shortCircuit: true };
  }
  return next(specifier, context);
}
