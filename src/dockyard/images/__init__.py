"""Images: records and references/tags (SQLite), image configs and their layer chains,
import/export/save/load, commit's new image, tag and remove.  It may use ``content`` and
``layers``; it must not touch mounts, containers or the API.
"""
