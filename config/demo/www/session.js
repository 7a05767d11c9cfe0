// Who is signed in: a bearer token kept in sessionStorage (this tab only, gone when it closes),
// and its claims decoded for display. The page never checks the signature: the gateway does, on
// every request, against its JWK Set.

const STORAGE_KEY = 'streamgate-demo-token';

// Returns {token, claims} of the one signed in, or null.
export function signedIn() {
  const token = sessionStorage.getItem(STORAGE_KEY);
  return token === null ? null : { token, claims: claimsOf(token) };
}

export function signIn(token) {
  claimsOf(token); // throws on something that is not a JWT
  sessionStorage.setItem(STORAGE_KEY, token);
}

export function signOut() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// The headers that send the credential: Authorization: Bearer, or none when signed out.
export function authHeaders() {
  const token = sessionStorage.getItem(STORAGE_KEY);
  return token === null ? {} : { Authorization: `Bearer ${token}` };
}

// A JWT's claims: the middle of header.claims.signature, base64url-encoded JSON.
export function claimsOf(token) {
  const part = token.split('.')[1];
  if (part === undefined) throw new Error('not a JWT');
  const bytes = Uint8Array.from(atob(part.replaceAll('-', '+').replaceAll('_', '/')), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}
