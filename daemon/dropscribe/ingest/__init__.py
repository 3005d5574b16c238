"""A dropped file noticed (watcher), waited for until it stops changing (settle), and
opened once (source)."""
