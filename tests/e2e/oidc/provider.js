// A throw-away OpenID provider for tests/e2e/test_oidc.sh: oidc-provider on
// 127.0.0.1 (random port) with client-credentials clients whose access tokens
// are JWTs for the resource "urn:coffer", signed RS256, ES256 or EdDSA
// depending on the client. Writes the port to the file named by argv[2],
// and the provider's private JWKS to argv[3] (the test uses the keys to
// forge tokens for the rejection cases).
import http from 'node:http';
import fs from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const portFile = process.argv[2];
const keysFile = process.argv[3];

function jwk(type, opts, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, opts);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const keys = [
  jwk('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'),
  jwk('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256'),
  jwk('ed25519', {}, 'ed-1', 'EdDSA'),
];

const clientAlg = { 'ci-rsa': 'RS256', 'ci-ec': 'ES256', 'ci-ed': 'EdDSA', 'ci-mfa': 'ES256' };
const clients = Object.keys(clientAlg).map((id) => ({
  client_id: id,
  client_secret: `${id}-secret-0123456789`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
}));

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients,
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:coffer',
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => ({
          scope: 'registry',
          audience: 'urn:coffer',
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: clientAlg[client.clientId] } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => {
      if (token.clientId === 'ci-mfa') return { groups: ['ml-engineers'], amr: ['hwk', 'pwd'] };
      return { groups: ['ml-engineers', 'unmapped-team'] };
    },
  });
  server.on('request', provider.callback());
  fs.writeFileSync(keysFile, JSON.stringify({ keys }), { mode: 0o600 });
  fs.writeFileSync(portFile, String(port));
});
