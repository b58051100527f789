"""A test-only POS destination kind, ``tinypos`` (issue #17): proof that the hub's pre-flight is
generic over any destination declaring ``Capability.PREFLIGHT``.

TinyPOS reproduces each trap of seed 001 as a switch of its sandbox (``sandbox.py``, real HTTP):
the acting employee archived, helper items missing, the location closed, custom fields required
on every sale, a percentage tax that cannot reproduce the channel's cents, and sales left
``pending`` (no stock moved) until someone completes them. The connector (``tinypos.py``) checks
them; the hub (``services/preflight.py``) turns each failure into a hold and releases it. The
channel is the ``tinyshop`` test kind of ``tests/connectors/extra_kind``.
"""
