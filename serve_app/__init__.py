"""The HTTP layer: authentication, validation, rate limiting, publishing, status, downloads."""
