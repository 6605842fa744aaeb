// A real OpenID Provider on loopback for the social-login tests: panva/oidc-provider with its
// development login screens (any login name is accepted; the login becomes the subject and the
// email, verified unless it starts with "unverified"). Two clients, both native applications so that
// their loopback redirect URIs work on any port (RFC 8252 section 7.3), both with PKCE:
// - `amanar-test` / `amanar-test-secret`: the confidential client of the local OpenID relying party;
// - `amanar-hosted-ui` / `amanar-hosted-ui-secret`: a confidential client with refresh tokens that
//   authenticates with HTTP Basic, shaped like the Cognito app client of template.yaml.
// The authorization and token endpoints sit at Cognito's hosted-UI paths (/oauth2/authorize,
// /oauth2/token), so the same provider also exercises the hosted-UI flow; discovery advertises them.
// Usage: node provider.mjs PORT
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 4010);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'amanar-test',
    client_secret: 'amanar-test-secret',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/v1/auth/social/callback'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }, {
    client_id: 'amanar-hosted-ui',
    client_secret: 'amanar-hosted-ui-secret',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/v1/auth/social/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  routes: { authorization: '/oauth2/authorize', token: '/oauth2/token' },
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: !id.startsWith('unverified'), name: id.split('@')[0] };
      },
    };
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['amanar-test-cookie-key'] },
});
provider.proxy = false;
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
