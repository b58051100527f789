"""A connector kind defined entirely under tests/: proof that adding a connector is its package plus
one registry entry (issue #11 item 1, decision 74).

``tinyshop`` is a small REST shop (a channel: polled, fetched, audited, webhooks signed with
HMAC-SHA256 in hex — no fulfilment push) and ``tinybooks`` a small invoicing API (a destination:
invoices upserted by key, SKU mappings only, its own document key — no shipments). Each has its
sandbox (``sandbox.py``) served over real HTTP, its connector module, and is registered in
``conftest.py`` through ``orderbridge.connectors.registry.register``. Nothing outside ``tests/``
names either kind.
"""
