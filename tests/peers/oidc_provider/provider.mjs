// The OpenID provider of the OIDC tests: oidc-provider (an OpenID-certified implementation)
// on 127.0.0.1, configured from the JSON file named by the first argument (written by
// tests/peers/oidc_provider.py):
//   { "port", "issuer", "jwks": {"keys": [private JWKs]}, "cookie_keys": [...],
//     "clients": [client metadata], "accounts": { username: { "sub", "password", "name",
//     "email", "groups": [...], "scopes": [extra scopes this user may be granted] } },
//     "id_token_ttl", "access_token_ttl" }
// PKCE (S256) is required of every client. The development login pages are replaced by a
// login form that checks the password table, and a consent step that grants the requested
// OpenID scopes, and of the extra scopes only those the account may have. Refresh tokens are
// issued to clients allowed the refresh_token grant and rotated at every use; revocation and introspection are on.
// Prints "READY <issuer>" once it listens.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { timingSafeEqual, createHash } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;
const bySub = new Map(Object.entries(accounts).map(([name, a]) => [a.sub, { name, ...a }]));
const extraScopes = config.extra_scopes ?? [];

const claims = {
  openid: ['sub'],
  profile: ['name', 'preferred_username'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
};
for (const scope of extraScopes) claims[scope] = [];

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: config.cookie_keys },
  claims,
  scopes: ['openid', 'offline_access', ...Object.keys(claims)],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  ttl: {
    IdToken: config.id_token_ttl ?? 3600,
    AccessToken: config.access_token_ttl ?? 3600,
    AuthorizationCode: 60,
    RefreshToken: 86400,
    Interaction: 600,
    Session: 3600,
    Grant: 86400,
  },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (_ctx, sub) => {
    const account = bySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        name: account.display_name,
        preferred_username: account.name,
        email: account.email,
        email_verified: true,
        groups: account.groups,
      }),
    };
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><title>error</title><pre id="error">${escape(out.error)}: ${escape(out.error_description ?? '')}</pre>`;
  },
});

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sameSecret(given, expected) {
  const a = createHash('sha256').update(String(given)).digest();
  const b = createHash('sha256').update(String(expected)).digest();
  return timingSafeEqual(a, b);
}

function page(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html><body>${body}</body></html>`);
}

function loginForm(uid, error) {
  return `<h1>Sign in</h1>${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<input name="username"><input name="password" type="password"><button>Sign in</button></form>`;
}

async function form(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function consent(details) {
  const { prompt, params, session, grantId } = details;
  const account = bySub.get(session.accountId);
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details.missingOIDCScope ?? [];
  const allowed = missing.filter(
    (scope) => !extraScopes.includes(scope) || (account?.scopes ?? []).includes(scope),
  );
  if (allowed.length) grant.addOIDCScope(allowed.join(' '));
  const refused = missing.filter((scope) => !allowed.includes(scope));
  if (refused.length) grant.rejectOIDCScope(refused.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  return grant.save();
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, '<p id="error">interaction mismatch</p>');
  if (req.method === 'GET' && action === undefined) {
    if (details.prompt.name === 'login') return page(res, 200, loginForm(uid));
    return page(
      res,
      200,
      `<h1>Allow ${escape(details.params.client_id)}?</h1>
<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>`,
    );
  }
  if (req.method === 'POST' && action === 'login' && details.prompt.name === 'login') {
    const body = await form(req);
    const account = accounts[body.get('username') ?? ''];
    const ok = account !== undefined && sameSecret(body.get('password') ?? '', account.password);
    if (!ok) return page(res, 401, loginForm(uid, 'the user name or password is not valid'));
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (req.method === 'POST' && action === 'confirm' && details.prompt.name === 'consent') {
    const grantId = await consent(details);
    return provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
  }
  return page(res, 400, '<p id="error">unexpected interaction step</p>');
}

const handle = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm))?$/;

const server = createServer(async (req, res) => {
  const path = new URL(req.url, config.issuer).pathname;
  const match = INTERACTION.exec(path);
  if (!match) return handle(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    page(res, 400, `<p id="error">${escape(err.name)}: ${escape(err.message)}</p>`);
  }
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`READY ${config.issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
