"""DMARC aggregate reporting (RFC 9990, RFC 7489 appendix C), both sides of it.

Receiver side: every DMARC evaluation the gateway makes is recorded (``evaluations``), and once
per period one report per policy domain is built in SQL, rendered as XML (``feedback``) and sent
gzip'd to the domain's verified ``rua`` mailboxes (``rua``, ``sending``), exactly once across
nodes. Domain-owner side: the reports other receivers send about our domains are read safely
(``ingest``) and summarised per sender for the console, the API and CSV (``senders``).

Failure reports (``ruf``, RFC 9991) are out of scope: neither sent nor read.
"""
