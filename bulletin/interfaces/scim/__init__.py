"""SCIM 2.0 provisioning (RFC 7643, RFC 7644) at ``/scim/v2/``: the company's identity provider
(Okta, Microsoft Entra ID, or any SCIM client) keeps Bulletin's employee list in step by itself.

Start here:

- ``urls`` — the endpoints: ``Users`` (create, read, replace, PATCH, DELETE, list with
  ``filter``/``startIndex``/``count``, ``/.search``), ``ServiceProviderConfig``,
  ``ResourceTypes``, ``Schemas``; anything else (``Groups`` included) is a SCIM 404.
- ``views`` — authentication (an API token with the scope ``scim`` whose user may add and change
  employees) and the request handling, with scim2-models parsing, validating and patching.
- ``resources`` — the User Bulletin publishes (core attributes it keeps, the enterprise
  extension's department, Bulletin's extension with location, timeZone and slackMemberId) and
  the mapping to and from an ``Employee``.
- ``provisioning`` — the writes: one upsert path with the CSV import
  (``roster.validate_rows`` + ``roster.upsert``), userName uniqueness, email renames, audit.
- ``filters`` — a SCIM filter as a Django ``Q``.
- ``errors`` — every answer in ``application/scim+json``, every error in SCIM's error schema.

Deactivation never deletes: ``active: false`` and ``DELETE`` both deactivate the employee (their
deliveries and history stay, fan-out skips them); after a DELETE, SCIM answers 404 for them until
the provider creates them again, which brings the same employee back. README: "SCIM
provisioning".
"""
