"""Single sign-on with OpenID Connect: people sign in with the company's identity provider.

Where to start reading:

- ``config`` checks the ``OIDC_*`` variables (bulletin/conf.py reads them; a bad value stops
  start-up naming the variable) and parses ``OIDC_GROUP_ROLES``, the table from the provider's
  groups to Bulletin's roles.
- ``discovery`` fetches ``<OIDC_ISSUER>/.well-known/openid-configuration`` when first needed
  (never at start-up, so an unreachable provider cannot stop Bulletin), checks it and keeps it
  an hour; a failure is kept half a minute, logged, and the login page says single sign-on is
  unavailable.
- ``views`` are mozilla-django-oidc's views with the endpoints taken from discovery: the login
  page with its "Sign in with <name>" button, ``/oidc/authenticate/`` (authorization code flow
  with PKCE S256, ``state`` and ``nonce`` kept in the session), ``/oidc/callback/``, and
  logout, which also ends the session at the provider when it offers ``end_session_endpoint``.
- ``backend`` checks what the library leaves unchecked (the ID token's ``aud``, ``iss``, the
  algorithm, the userinfo ``sub``), refuses unverified addresses and deactivated employees,
  finds or creates the Django user, and lets ``claims`` set the roles from the groups claim.
  It also holds the switch that keeps passwords for superusers only when
  ``BULLETIN_PASSWORD_LOGIN=false``.

A refused sign-in never raises past the callback: the person sees a page saying why, and the
reason is logged at WARNING. README, "Single sign-on (OpenID Connect)", is the operator's side.
"""
