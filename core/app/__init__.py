"""The composition root and the command line: builds every component from the settings (the only place
that imports ``bot``), runs the service, and offers the ``tradectl`` commands. Nothing imports it.
"""

__all__: list[str] = []
