"""The REST API under /api/v1/ (django-ninja)."""
