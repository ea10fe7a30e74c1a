"""The Dockerfile builder: parser, build context, executor and build cache.  It may use
``images``, ``content``, ``layers``, ``storage`` and ``runtime`` (RUN steps go through the
runtime, never a process of its own); it must not import ``api`` or ``daemon``."""
