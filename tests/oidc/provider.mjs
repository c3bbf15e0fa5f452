// A real OpenID provider (oidc-provider, OpenID Certified) on loopback for the security tests.
//
// Usage: node provider.mjs <port> <clients.json>
// clients.json: {"audiences": ["urn:pacsflow", ...], "scopes": [...], "clients": [{"client_id":
//   "...", "client_secret": "...", "claims": {...extra access-token claims...}}],
//   "browser_clients": [{"client_id": "...", "redirect_uris": ["http://127.0.0.1:N/callback"]}]}
// Each client may use the client_credentials grant; a token request names its audience as a
// resource indicator (RFC 8707, `resource=`, default: the first audience) and gets a JWT access
// token (RFC 9068) signed RS256 with the current key, carrying the scopes asked for and the
// client's extra claims (the shape of Keycloak's realm_access or Entra ID's roles). A browser
// client (a viewer) uses the authorization code flow with PKCE: the provider's development
// login and consent pages accept any user name; its access tokens are JWTs for the first
// audience with the scopes asked for.
//
// Test controls beside the provider (loopback only, for the tests to drive):
//   POST /_test/rotate            a new signing key; the previous one stays published
//   POST /_test/rotate?retire=1   a new signing key; the previous ones are no longer published
//   POST /_test/sign  {"claims": {...}, "header": {...}}  a JWT signed by the current key, for
//        tokens the provider would not issue on its own (expired, another issuer, ...)
// The provider is rebuilt with the new key set on rotation; the HTTP server and port stay.
// Prints "ready <issuer>" once it listens.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';

const [port, clientsFile] = process.argv.slice(2);
if (!port || !clientsFile) {
  process.stderr.write('usage: node provider.mjs <port> <clients.json>\n');
  process.exit(2);
}
const setup = JSON.parse(readFileSync(clientsFile, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;
const audiences = setup.audiences;
const claimsOf = new Map(setup.clients.map((c) => [c.client_id, c.claims ?? {}]));

async function newKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function build(keys) {
  const provider = new Provider(issuer, {
    clients: [
      ...setup.clients.map((c) => ({
        client_id: c.client_id,
        client_secret: c.client_secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      })),
      ...(setup.browser_clients ?? []).map((c) => ({
        client_id: c.client_id,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: c.redirect_uris,
        token_endpoint_auth_method: 'none',
      })),
    ],
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    clientBasedCORS: () => true,
    jwks: { keys },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audiences[0],
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (!audiences.includes(resource)) throw new errors.InvalidTarget();
          return {
            scope: setup.scopes.join(' '),
            audience: resource,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: (ctx, token) => claimsOf.get(token.clientId) ?? {},
    cookies: { keys: [randomUUID()] },
  });
  provider.on('server_error', (ctx, error) => process.stderr.write(`${error.stack}\n`));
  return provider;
}

let keys = [await newKey()];
let handler = build(keys).callback();

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

function reply(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function control(req, res, url) {
  if (url.pathname === '/_test/rotate') {
    const key = await newKey();
    keys = url.searchParams.get('retire') ? [key] : [key, ...keys];
    handler = build(keys).callback();
    return reply(res, 200, { kid: key.kid, published: keys.map((k) => k.kid) });
  }
  if (url.pathname === '/_test/sign') {
    const { claims = {}, header = {} } = await body(req);
    const key = keys[0];
    const signer = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header });
    return reply(res, 200, { token: await signer.sign(await importJWK(key, 'RS256')) });
  }
  return reply(res, 404, { error: 'no such test control' });
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/_test/')) {
    control(req, res, url).catch((error) => reply(res, 500, { error: String(error) }));
    return;
  }
  handler(req, res);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`ready ${issuer}\n`));
