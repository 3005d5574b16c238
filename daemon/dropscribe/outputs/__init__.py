"""A transcript made into sidecars (publish: rendered, written atomically) and the
recording's own fate: quarantine, after: move/delete, hooks."""
