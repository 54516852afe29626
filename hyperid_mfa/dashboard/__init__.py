"""The admin's dashboard of MFA requests: what the last 24 hours or 7 days looked
like, computed from the database (``MFA requests`` -> Dashboard).

- ``figures``: the numbers, from MFARequest and the hourly counts of
  :mod:`hyperid_mfa.models.activity`, with finished hours kept in the cache;
- ``charts``: the SVG charts, drawn on the server;
- ``views``: the admin view (``admin:hyperid_mfa_mfarequest_dashboard``);
- ``tallies``: the receivers that keep the hourly counts.
"""
