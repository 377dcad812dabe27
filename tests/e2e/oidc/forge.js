// Makes tokens for tests/e2e/test_oidc.sh, valid or deliberately broken.
//   node forge.js genkeys OUT KID...          private JWKS of fresh P-256 keys
//   node forge.js public IN OUT               the public part of a JWKS
//   node forge.js sign KEYS CASE ISS AUD SUB  a token for one case (below)
// Cases: valid-ec valid-rsa valid-ed none hs256 confusion expired leeway nbf
// wrong-aud unknown-kid wrong-key alg-mismatch tampered kid=KID
import fs from 'node:fs';
import crypto from 'node:crypto';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const enc = (obj) => b64u(JSON.stringify(obj));
const [, , cmd, ...args] = process.argv;

function sign(alg, key, header, payload) {
  const input = `${enc(header)}.${enc(payload)}`;
  let sig;
  if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), key);
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'EdDSA') sig = crypto.sign(null, Buffer.from(input), key);
  else if (alg.startsWith('HS')) sig = crypto.createHmac('sha256', key).update(input).digest();
  else sig = Buffer.alloc(0);
  return `${input}.${b64u(sig)}`;
}

if (cmd === 'genkeys') {
  const [out, ...kids] = args;
  const keys = kids.map((kid) => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  });
  fs.writeFileSync(out, JSON.stringify({ keys }));
} else if (cmd === 'public') {
  const [inp, out] = args;
  const { keys } = JSON.parse(fs.readFileSync(inp, 'utf8'));
  const pub = keys.map(({ d, p, q, dp, dq, qi, ...rest }) => rest);
  fs.writeFileSync(out, JSON.stringify({ keys: pub }));
} else if (cmd === 'sign') {
  const [keysFile, kase, iss, aud, sub] = args;
  const { keys } = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
  const byKid = (kid) => crypto.createPrivateKey({ key: keys.find((k) => k.kid === kid), format: 'jwk' });
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss, aud, sub, iat: now, exp: now + 300, groups: ['ml-engineers'] };
  const fresh = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  let tok;
  switch (kase) {
    case 'valid-ec': tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1', typ: 'at+jwt' }, payload); break;
    case 'valid-rsa': tok = sign('RS256', byKid('rsa-1'), { alg: 'RS256', kid: 'rsa-1' }, payload); break;
    case 'valid-ed': tok = sign('EdDSA', byKid('ed-1'), { alg: 'EdDSA', kid: 'ed-1' }, payload); break;
    case 'none': tok = sign('none', null, { alg: 'none', kid: 'ec-1' }, payload); break;
    case 'hs256': tok = sign('HS256', 'secret', { alg: 'HS256', kid: 'ec-1' }, payload); break;
    case 'confusion': {
      // HMAC keyed with the issuer's public RSA key: classic algorithm confusion.
      const pem = crypto.createPublicKey(byKid('rsa-1')).export({ format: 'pem', type: 'spki' });
      tok = sign('HS256', pem, { alg: 'HS256', kid: 'rsa-1' }, payload);
      break;
    }
    case 'expired': tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, { ...payload, iat: now - 7200, exp: now - 3600 }); break;
    case 'leeway': tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, { ...payload, iat: now - 600, exp: now - 20 }); break;
    case 'nbf': tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, { ...payload, nbf: now + 3600 }); break;
    case 'future-iat': tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, { ...payload, iat: now + 3600, exp: now + 7200 }); break;
    case 'wrong-aud': tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, { ...payload, aud: 'urn:someone-else' }); break;
    case 'no-exp': { const { exp, ...p } = payload; tok = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, p); break; }
    case 'unknown-kid': tok = sign('ES256', fresh(), { alg: 'ES256', kid: 'ec-unknown' }, payload); break;
    case 'wrong-key': tok = sign('ES256', fresh(), { alg: 'ES256', kid: 'ec-1' }, payload); break;
    case 'alg-mismatch': tok = sign('ES256', byKid('ec-1'), { alg: 'RS256', kid: 'ec-1' }, payload); break;
    case 'tampered': {
      const good = sign('ES256', byKid('ec-1'), { alg: 'ES256', kid: 'ec-1' }, payload);
      const [h, , s] = good.split('.');
      tok = `${h}.${enc({ ...payload, sub: 'admin' })}.${s}`;
      break;
    }
    default:
      if (kase.startsWith('kid=')) {
        const kid = kase.slice(4);
        tok = sign('ES256', byKid(kid), { alg: 'ES256', kid }, payload);
        break;
      }
      console.error(`unknown case ${kase}`);
      process.exit(2);
  }
  process.stdout.write(tok);
} else {
  console.error('usage: forge.js genkeys|public|sign ...');
  process.exit(2);
}
