"""The REST API under ``/api/v1``: the portal's operations for programs (one router per resource)."""
