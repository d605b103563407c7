import Provider from 'oidc-provider';
const port = 8400;
const oidc = new Provider(`http://localhost:${port}`, {
  clients: [{
    client_id: 'sesame-std', client_secret: 'external-op-secret-0123456789abcdef0123',
    redirect_uris: ['http://localhost:8000/idp/callback'],
    post_logout_redirect_uris: ['http://localhost:8000/idp/logout/callback'],
    id_token_signed_response_alg: 'ES256',
  }],
  acrValues: ['eidas1'],
  claims: { openid: ['sub'], profile: ['given_name', 'family_name', 'birthdate', 'gender', 'preferred_username'], birth: ['birthplace', 'birthcountry'], email: ['email'], acr: null },
  scopes: ['openid', 'profile', 'birth', 'email'],
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  jwks: { keys: [ (await import('node:crypto')).generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) ] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, given_name: 'Angela Claire Louise', family_name: 'Dubois', birthdate: '1962-08-24', gender: 'female', birthplace: '75107', birthcountry: '99100', email: 'angela.dubois@example.org' }; } };
  },
});
oidc.proxy = false;
oidc.listen(port, () => console.log('oidc-provider on', port));
