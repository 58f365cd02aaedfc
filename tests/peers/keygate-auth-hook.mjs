// Gives the conformance suite a keygate key, the way any configured MCP client has one.
//
// The suite's server scenarios connect with a bare URL: `conformance server` has no
// option or environment variable for request headers, so against keygated every request
// would be 401. With KEYGATE_PEER_AUTHORIZATION (a whole header value, `Bearer kg_…`)
// and KEYGATE_PEER_AUTH_URL (the URL under test) set, this hook adds that Authorization
// header to requests for URLs under KEYGATE_PEER_AUTH_URL that carry none: through
// `fetch` (the SDK client and the raw SSE scenarios) and through undici's `request`
// (the DNS-rebinding scenario), whose import it redirects for the conformance package
// only. Nothing else about a request changes; without the variables this does nothing.
//
// Use: node --import ./node20-fs-hook.mjs --import ./keygate-auth-hook.mjs …
import { register } from 'node:module';

const value = process.env.KEYGATE_PEER_AUTHORIZATION;
const prefix = process.env.KEYGATE_PEER_AUTH_URL;

if (value && prefix) {
  register(new URL('./keygate-auth-resolve.mjs', import.meta.url));
  const original = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith(prefix)) return original(input, init);
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    if (!headers.has('authorization')) headers.set('authorization', value);
    return original(input, { ...init, headers });
  };
}
