"""Settings, the app factory, the auth middleware, the scheduler and the ``watchkeep`` CLI."""
