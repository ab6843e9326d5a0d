"""Authentication: OAuth 2.0 with SMART on FHIR v2 (https://hl7.org/fhir/smart-app-launch/).

schema.py      the auth tables (keys, clients, users, replay and code stores)
keys.py        the server's signing key and pseudonymisation secret, generated on first start
passwords.py   scrypt password hashes for local accounts
registry.py    registered clients (backend services, apps) and user accounts
tokens.py      access tokens, client assertions (private_key_jwt), codes and refresh tokens
oidc.py        an external OpenID Connect provider (e.g. NHS CIS2) by configuration
endpoints.py   /.well-known/smart-configuration, /auth/authorize (login form), /auth/token
middleware.py  bearer-token authentication, rate limiting, security headers, request ids
ratelimit.py   per-client token buckets
hygiene.py     a log filter that keeps tokens and personal data out of logs
cli.py         `sharedcare client ...`, `sharedcare user ...`, `sharedcare token`
"""
