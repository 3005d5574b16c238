"""The ground floor: the types every other folder shares, importing nothing of the
package but ``errors`` and ``names``. Settings (``settings``, ``endpoints``, ``config``),
and what a job is known by and where it stands (``states``)."""
