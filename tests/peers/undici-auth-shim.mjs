// undici with `request` adding the Authorization header (see ./keygate-auth-hook.mjs).
import * as undici from 'undici';
export * from 'undici';

const value = process.env.KEYGATE_PEER_AUTHORIZATION;
const prefix = process.env.KEYGATE_PEER_AUTH_URL;

export function request(url, options = {}, ...rest) {
  if (value && prefix && String(url).startsWith(prefix)) {
    const headers = { ...(options.headers ?? {}) };
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
      headers.authorization = value;
    }
    return undici.request(url, { ...options, headers }, ...rest);
  }
  return undici.request(url, options, ...rest);
}
