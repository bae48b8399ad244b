"""Alembic environment of the chartreuse demo project.

Deliberately bare: it imports nothing from an application, so `alembic current` and
`alembic upgrade head` start fast and the project can be migrated from any image that has
Alembic, SQLAlchemy and a PostgreSQL driver.

Database URL, first found wins:
  1. the environment variable CHARTREUSE_ALEMBIC_URL (what `chartreuse migrate` sets);
  2. `sqlalchemy.url` in the selected section of alembic.ini (`alembic -n <section>`).

`-x key=value` arguments are all optional; the ones understood here:
  -x patroni_postgresql=yes   the database is managed by the Zalando postgres-operator:
                              run the migration as the database owner role
                              (`SET ROLE "<database>_owner"`) so that the operator's default
                              privileges give the writer/reader roles access to new tables.
  -x patroni_owner_role=NAME  owner role to use instead of "<database>_owner".
  -x sqlalchemy_echo=yes      log every SQL statement (the URL is never logged).
Any other `-x` argument (e.g. `-x env=staging`) is accepted and ignored.
"""

import os
from logging.config import fileConfig
from typing import Dict, Optional

from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection, make_url

from alembic import context

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# No autogenerate support: this project has no application models to compare against.
target_metadata = None

TRUE_STRINGS = {"1", "y", "yes", "true", "on"}


def x_arguments() -> Dict[str, str]:
    """The `-x key=value` arguments; a bare `-x flag` counts as `flag=yes`."""
    result: Dict[str, str] = {}
    for arg in context.get_x_argument(as_dictionary=False):
        key, sep, value = arg.partition("=")
        result[key.strip()] = value.strip() if sep else "yes"
    return result


def database_url() -> str:
    url: Optional[str] = os.environ.get("CHARTREUSE_ALEMBIC_URL")
    if not url:
        url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database URL: set CHARTREUSE_ALEMBIC_URL or sqlalchemy.url in section "
            f"[{config.config_ini_section}] of {config.config_file_name}"
        )
    return url


def owner_role(url: str, xargs: Dict[str, str]) -> Optional[str]:
    """Role to switch to before migrating, or None."""
    if xargs.get("patroni_postgresql", "").lower() not in TRUE_STRINGS:
        return None
    role = xargs.get("patroni_owner_role")
    if role:
        return role
    database = make_url(url).database
    if not database:
        raise RuntimeError("patroni_postgresql=yes needs a database name in the URL")
    return f"{database}_owner"


def run_migrations_offline() -> None:
    """Emit the SQL script instead of running it (`alembic upgrade head --sql`)."""
    url = database_url()
    role = owner_role(url, x_arguments())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        if role is not None:
            quoted = role.replace('"', '""')
            context.execute(f'SET ROLE "{quoted}"')
        context.run_migrations()


def run_migrations_online() -> None:
    """Connect to the database and run the migrations."""
    xargs = x_arguments()
    url = database_url()
    role = owner_role(url, xargs)

    # The URL goes straight to SQLAlchemy, never through the ini file, so that a password
    # holding '%' or other special characters is not mangled by configparser interpolation.
    section = dict(config.get_section(config.config_ini_section, {}))
    section["sqlalchemy.url"] = url
    connectable = engine_from_config(
        section,
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        echo=xargs.get("sqlalchemy_echo", "").lower() in TRUE_STRINGS,
        hide_parameters=True,
    )

    with connectable.connect() as connection:
        configure_and_run(connection, role)


def configure_and_run(connection: Connection, role: Optional[str]) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        if role is not None:
            # Role names cannot be bound parameters; quote it as an identifier.
            quoted = connection.dialect.identifier_preparer.quote_identifier(role)
            connection.exec_driver_sql(f"SET ROLE {quoted}")
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
