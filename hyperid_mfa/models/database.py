"""What the models share: the database's clock, result codes that fit their column,
and UPDATE ... RETURNING compiled by the ORM."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from django.apps import apps
from django.db import connections, models, router
from django.db.models.functions import Now
from django.db.models.sql import Query, UpdateQuery

#: The range of the SmallIntegerField columns that hold HyperID's result codes.
SMALLINT_RANGE = range(-32768, 32768)


def storable_result(result: int | None) -> int | None:
    """``result`` if the ``last_result`` column can hold it, else None.

    HyperID's codes are small; a value outside the column (an answer outside the
    protocol) is kept in ``last_error``'s text instead of failing the write.
    """
    return result if result is not None and result in SMALLINT_RANGE else None


def database_now(using: str | None = None) -> datetime:
    """The database's clock: the one clock that decides expiry, approval age and
    claim windows, however far the app servers' clocks drift apart. By default, that
    of the database the app's requests are written to."""
    # By name: the models' modules import this one.
    request_model = apps.get_model("hyperid_mfa", "MFARequest")
    alias = using or router.db_for_write(request_model)
    connection = connections[alias]
    query = Query(request_model)
    expression = Now().resolve_expression(query)
    sql, params = query.get_compiler(using=alias).compile(expression)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", list(params))
        row = cursor.fetchone()
    value = row[0]
    for converter in connection.ops.get_db_converters(expression):
        value = converter(value, expression, connection)
    return value


def can_update_returning(using: str) -> bool:
    """Whether the database answers ``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+)."""
    connection = connections[using]
    return connection.vendor in ("postgresql", "sqlite") and bool(
        connection.features.can_return_columns_from_insert
    )


def seconds_ago(seconds: float | timedelta) -> Any:
    """``Now() - seconds`` as a database expression."""
    delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
    return Now() - delta


class ReturningUpdate:
    """An ``UPDATE ... RETURNING`` compiled by the ORM: run it, with its parameters or
    with others in their places (the statement is compiled once, bound per call)."""

    def __init__(self, model: Any, using: str, compiler: Any, sql: str, params: list[Any]) -> None:
        connection = connections[using]
        self.model, self.using, self.compiler = model, using, compiler
        self.fields = model._meta.concrete_fields
        columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in self.fields)
        self.sql = f"{sql} RETURNING {columns}" if sql else ""
        self.params = params
        self.converters = compiler.get_converters(
            [field.get_col(model._meta.db_table) for field in self.fields]
        )

    def run(self, params: list[Any] | None = None) -> list[Any]:
        if not self.sql:
            return []
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, self.params if params is None else params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        names = [field.attname for field in self.fields]
        return [self.model.from_db(self.using, names, tuple(row)) for row in rows]


_M = TypeVar("_M", bound=models.Model)


class ReturningQuerySet(models.QuerySet[_M]):
    """A QuerySet that can change rows and return them in one statement."""

    def update_returning(self, **values: Any) -> list[_M]:
        """``update(**values)``, returning the rows it changed, in one statement
        (``UPDATE ... RETURNING``). Raises ``NotImplementedError`` on a database
        without it (see :func:`can_update_returning`).

        For the hot paths of the gate: one round trip finds a row and changes it, so
        that the conditions of the UPDATE decide who wins.
        """
        return self.compile_update_returning(**values).run()

    def compile_update_returning(self, **values: Any) -> ReturningUpdate:
        """The statement of :meth:`update_returning`, compiled, to run now or again."""
        if not can_update_returning(self.db):
            raise NotImplementedError("this database has no UPDATE ... RETURNING")
        query = cast(UpdateQuery, self.query.chain(UpdateQuery))
        query.add_update_values(values)
        compiler = query.get_compiler(self.db)
        compiler.pre_sql_setup()
        sql, params = compiler.as_sql()
        return ReturningUpdate(self.model, self.db, compiler, sql, list(params))
