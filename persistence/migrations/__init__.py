"""The Alembic environment (``env.py``) and the schema's revisions (``versions/``), run by
:mod:`persistence.migrate` and ``tradectl db upgrade``. Nothing imports it as a package.
"""

__all__: list[str] = []
