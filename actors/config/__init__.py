"""Configuration: the ``REPORTS_*`` settings, and the start-up checks that they can work."""
