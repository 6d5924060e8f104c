// The OpenID provider the identity tests run against: panva's oidc-provider
// (OpenID Certified), configured here, started with node on a free port.
//
//   node tests/oidc/provider.mjs --port 9000 --users users.json --keys keys.json \
//        --redirects http://127.0.0.1:8000/api/v2/session/oidc/callback
//
// Users (login name -> email, groups) come from the JSON file, read again on
// every lookup so a test can change them. Signing keys are private JWKs, the
// first one signs; restarting with another file rotates them. Clients (all
// public, code flow with PKCE): modrun-console and modrun-cli, and
// modrun-short, whose access tokens live 2 seconds. Access tokens are JWTs for
// the resource urn:modrun (or urn:other, for tests of a wrong audience) and
// carry the user's preferred_username, email and groups.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import Provider from "oidc-provider";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    issuer: { type: "string" },
    users: { type: "string" },
    keys: { type: "string" },
    redirects: { type: "string", default: "" },
  },
});
const port = Number(args.port);
const issuer = args.issuer || `http://127.0.0.1:${port}`;
const users = () => JSON.parse(readFileSync(args.users, "utf8"));
const redirects = ["http://127.0.0.1:1/callback", ...args.redirects.split(",").filter(Boolean)];
const RESOURCES = ["urn:modrun", "urn:other"];

function claimsOf(login) {
  const user = users()[login];
  if (!user) return undefined;
  return {
    sub: login,
    preferred_username: login,
    email: user.email,
    email_verified: true,
    groups: user.groups || [],
  };
}

const client = (id) => ({
  client_id: id,
  token_endpoint_auth_method: "none",
  redirect_uris: redirects,
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
});

const provider = new Provider(issuer, {
  clients: [client("modrun-console"), client("modrun-cli"), client("modrun-short")],
  jwks: { keys: JSON.parse(readFileSync(args.keys, "utf8")) },
  cookies: { keys: ["modrun-tests-only-cookie-key"] },
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile", "groups", "offline_access"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["preferred_username"],
    groups: ["groups"],
  },
  conformIdTokenClaims: false, // the id_token carries the scopes' claims (the console reads them)
  async findAccount(_ctx, id) {
    const claims = claimsOf(id);
    if (!claims) return undefined;
    return { accountId: id, claims: async () => claims };
  },
  features: {
    devInteractions: { enabled: true }, // a login form taking any password, then consent
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => "urn:modrun",
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (!RESOURCES.includes(indicator)) throw new Error(`unknown resource ${indicator}`);
        return { scope: "api", audience: indicator, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
      },
    },
  },
  async extraTokenClaims(_ctx, token) {
    if (token.kind !== "AccessToken") return undefined;
    const { sub, ...rest } = claimsOf(token.accountId) || {};
    return rest;
  },
  ttl: {
    AccessToken: (_ctx, _token, c) => (c && c.clientId === "modrun-short" ? 2 : 3600),
    AuthorizationCode: 60,
    IdToken: 3600,
    Grant: 3600,
    Interaction: 600,
    Session: 3600,
  },
});

provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider ${issuer} ready`);
});
