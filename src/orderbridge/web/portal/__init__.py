"""The portal's screens: one router module per screen (mounted by ``web/app.py``)."""
