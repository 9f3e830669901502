"""The rules of a node, free of HTTP: records and their history, alerts, peers and
sharing agreements, KYC checks and answers, disclosures, tokens, console accounts, the
audit chain, CSV import and export, backup and restore, key rotation, and the outbox
(sealing messages for peers in the caller's transaction).

Services never commit and never import the layers above them (federation, the web
surfaces, the CLI): the caller builds them from a ``UnitOfWork`` (``work``) and commits.
Errors a user can fix are ``errors.ServiceError``; who acts is an ``actors.Actor``.
"""
