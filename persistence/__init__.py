"""Storage: the ``Database`` handle (:mod:`persistence.db`), the tables (:mod:`persistence.models`), column
types, upserts, and the Alembic migrations with the code that runs them (:mod:`persistence.migrate`).

The package itself exports nothing: import the module you need, so that loading the tables does not
open a database driver.
"""

__all__: list[str] = []
