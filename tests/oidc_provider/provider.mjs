// A real OpenID provider on loopback for Bulletin's single sign-on tests (tests/oidc.py starts it).
//
// It is the certified `oidc-provider` package with one client, accounts read from a JSON file at
// every use (so a test changes someone's groups between two sign-ins), small sign-in and logout
// pages of its own (the package's development pages pull a web font from the internet), and one
// test-only control, POST /__test__/mode, that spoils the next ID tokens on purpose:
//   normal          tokens as issued
//   tampered        one byte of the signature changed
//   expired         re-signed with the provider's own key, exp and iat an hour and two ago
//   wrong-audience  re-signed, aud another application's client id
//   wrong-issuer    re-signed, iss another issuer
//   rotated         a key rotation (OpenID Connect Core 10.1.1): /jwks publishes a second key
//                   beside the first, and ID tokens are re-signed with it (its own kid)
// and GET /__test__/jwks-fetches, {"count": N}: how many times /jwks was read.
//
// Environment: ACCOUNTS_FILE (JSON: {"<login>": {"sub", "email", "email_verified", "name",
// "groups"}}), CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS and POST_LOGOUT_REDIRECT_URIS (space-
// separated). It listens on 127.0.0.1, port 0 (a free one), and prints one JSON line,
// {"issuer": "http://127.0.0.1:<port>"}, once it answers.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import {
  SignJWT, decodeJwt, exportJWK, generateKeyPair, importJWK,
} from 'jose';
import Provider from 'oidc-provider';

const MODES = new Set(['normal', 'tampered', 'expired', 'wrong-audience', 'wrong-issuer', 'rotated']);
let mode = 'normal';
let jwksFetches = 0;

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};

function accounts() {
  return JSON.parse(readFileSync(env('ACCOUNTS_FILE'), 'utf8'));
}

function accountBySub(sub) {
  return Object.values(accounts()).find((account) => account.sub === sub);
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>`
    + `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

async function signingKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function publicPart(jwk) {
  const { d, p, q, dp, dq, qi, ...publicMembers } = jwk;
  return publicMembers;
}

function flipSignatureByte(token) {
  const [header, payload, signature] = token.split('.');
  // A character from the middle: the last one may carry only padding bits.
  const middle = Math.floor(signature.length / 2);
  const flipped = signature[middle] === 'A' ? 'B' : 'A';
  return `${header}.${payload}.${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`;
}

async function spoil(token, jwk) {
  if (mode === 'tampered') return flipSignatureByte(token);
  const claims = decodeJwt(token);
  const now = Math.floor(Date.now() / 1000);
  if (mode === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  if (mode === 'wrong-audience') claims.aud = 'another-application';
  if (mode === 'wrong-issuer') claims.iss = 'http://127.0.0.1:9/another-issuer';
  const key = await importJWK(jwk, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid }).sign(key);
}

async function readBody(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function interaction(ctx, provider) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = page('Test identity provider', `<form method="post">
      <label>Account <input name="login" autofocus></label>
      <button type="submit">Sign in</button></form>`);
    return;
  }
  const login = new URLSearchParams(await readBody(ctx)).get('login');
  const account = accounts()[login];
  if (!account) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Test identity provider', `<p>No account ${escapeHtml(login)}.</p>`);
    return;
  }
  // Sign-in and consent at once: the test client asks for nothing a person would refuse.
  const grant = new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, {
    login: { accountId: account.sub },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

function configuration(jwk) {
  const clientId = env('CLIENT_ID');
  return {
    clients: [{
      client_id: clientId,
      client_secret: env('CLIENT_SECRET'),
      redirect_uris: env('REDIRECT_URIS').split(' '),
      post_logout_redirect_uris: env('POST_LOGOUT_REDIRECT_URIS').split(' '),
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['test-only-cookie-key'] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // `groups` travels with the profile scope, as Okta's groups claim filter and Entra's
    // optional claim put it in every token without a scope of its own.
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups'],
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = page('Sign out of the test identity provider?', `${form}
            <button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
    },
    interactions: { url: (ctx, details) => `/interaction/${details.uid}` },
    findAccount: async (ctx, sub) => {
      if (!accountBySub(sub)) return undefined;
      return {
        accountId: sub,
        claims: async () => {
          const { email, email_verified: emailVerified, name, groups } = accountBySub(sub);
          return { sub, email, email_verified: emailVerified, name, groups: groups || [] };
        },
      };
    },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
  };
}

function testControls(provider, jwk, nextJwk) {
  return async (ctx, next) => {
    if (ctx.path === '/__test__/jwks-fetches') {
      ctx.body = { count: jwksFetches };
      return;
    }
    if (ctx.path === '/__test__/mode' && ctx.method === 'POST') {
      const wanted = (await readBody(ctx)).trim();
      if (!MODES.has(wanted)) {
        ctx.status = 400;
        ctx.body = `mode must be one of ${[...MODES].join(', ')}`;
        return;
      }
      mode = wanted;
      ctx.status = 204;
      return;
    }
    if (ctx.path.startsWith('/interaction/')) {
      await interaction(ctx, provider);
      return;
    }
    await next();
    if (ctx.path === '/jwks') {
      jwksFetches += 1;
      if (mode === 'rotated') ctx.body = { keys: [...ctx.body.keys, publicPart(nextJwk)] };
    }
    if (ctx.path === '/token' && mode !== 'normal' && ctx.body?.id_token) {
      const signer = mode === 'rotated' ? nextJwk : jwk;
      ctx.body = { ...ctx.body, id_token: await spoil(ctx.body.id_token, signer) };
    }
  };
}

async function main() {
  const jwk = await signingKey('test-key-1');
  const nextJwk = await signingKey('test-key-2');
  const server = createServer();
  await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration(jwk));
  provider.use(testControls(provider, jwk, nextJwk));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
}

process.on('SIGTERM', () => process.exit(0));
main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
