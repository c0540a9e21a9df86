"""Rows of the domain tables (catalog.Table) in each store's SQL: the small unit of work the domain uses.

Select, insert, update and delete by equality on declared columns (a list or tuple means IN; None means IS
NULL; the key ANY holds alternatives, each such a dict, of which one must hold), with values converted to and from each store's column types. Column names come from the declaration
only, so no request text becomes SQL; values are always parameters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from psycopg.types.json import Jsonb

from geoserver.catalog import Property, Table
from geoserver.errors import BadInput
from geoserver.store.sqlite_dialect import format_datetime, parse_datetime

Row = dict[str, Any]
ANY = "$any"  # where[ANY] = [{...}, {...}]: at least one of these conditions holds


def q(name: str) -> str:
    """A double-quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


class RowsSQL:
    """Statements for one table in one dialect (`pg` or `sqlite`)."""

    def __init__(self, table: Table, dialect: str) -> None:
        self.table = table
        self.pg = dialect == "pg"
        self.p = "%s" if self.pg else "?"
        self.names = table.column_names

    # -- values ---------------------------------------------------------------------------------------------
    def to_db(self, col: Property, value: Any) -> Any:
        """A Python value as the column stores it."""
        if value is None:
            return None
        if col.type == "json":
            return Jsonb(value) if self.pg else json.dumps(value, ensure_ascii=False, default=str)
        if self.pg:
            return value
        if col.type == "datetime":
            return format_datetime(value) if isinstance(value, datetime) else value
        if col.type == "date":
            return value.isoformat() if isinstance(value, date) else value
        if col.type == "boolean":
            return int(bool(value))
        return value

    def from_db(self, col: Property, value: Any) -> Any:
        """A stored cell as Python."""
        if value is None:
            return None
        if col.type == "json":
            return json.loads(value) if isinstance(value, str) else value
        if col.type == "binary":
            return bytes(value)
        if col.type == "datetime" and isinstance(value, str):
            return parse_datetime(value)
        if col.type == "date" and isinstance(value, str):
            return date.fromisoformat(value[:10])
        if col.type == "boolean":
            return bool(value)
        return value

    def row(self, cells: Sequence[Any]) -> Row:
        """A row dict from a SELECT of every column."""
        return {name: self.from_db(self.table.column(name), v) for name, v in zip(self.names, cells, strict=True)}

    # -- statements ----------------------------------------------------------------------------------------
    def where(self, where: Row | None) -> tuple[str, list[Any]]:
        """WHERE text and parameters from {column: value | list of values | None}."""
        clauses, params = [], []
        for name, value in (where or {}).items():
            if name == ANY:
                true, false = ("TRUE", "FALSE") if self.pg else ("1", "0")
                alternatives = [self.where(w) for w in value]
                texts = [f"({t.removeprefix(' WHERE ') or true})" for t, _ in alternatives]
                clauses.append(f"({' OR '.join(texts)})" if texts else false)
                params += [p for _, ps in alternatives for p in ps]
                continue
            col = self.table.column(name)
            if value is None:
                clauses.append(f"{q(name)} IS NULL")
            elif isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                if not values:
                    clauses.append("FALSE" if self.pg else "0")
                    continue
                clauses.append(f"{q(name)} IN ({', '.join([self.p] * len(values))})")
                params += [self.to_db(col, v) for v in values]
            else:
                clauses.append(f"{q(name)} = {self.p}")
                params.append(self.to_db(col, value))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def select(self, where: Row | None, order_by: Sequence[str], limit: int | None, offset: int,
               for_update: bool) -> tuple[str, list[Any]]:
        """SELECT every column."""
        text, params = self.where(where)
        order = ", ".join(_order(self.table, o) for o in (*order_by, "id"))
        sql = f"SELECT {', '.join(q(n) for n in self.names)} FROM {q(self.table.id)}{text} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if offset:
            sql += f" OFFSET {int(offset)}"
        if for_update and self.pg:
            sql += " FOR UPDATE"
        return sql, params

    def count(self, where: Row | None) -> tuple[str, list[Any]]:
        """SELECT count(*)."""
        text, params = self.where(where)
        return f"SELECT count(*) FROM {q(self.table.id)}{text}", params

    def insert(self, row: Row, unless: Sequence[str] = ()) -> tuple[str, list[Any]]:
        """INSERT one row, returning every column; with `unless` (unique columns), nothing when such a row
        exists (waiting for a concurrent insert of the same key to commit or roll back)."""
        unknown = set(row) - set(self.names)
        if unknown:
            raise BadInput(f"unknown column(s) {', '.join(sorted(unknown))} of {self.table.id!r}",
                           parameter=sorted(unknown)[0])
        names = [n for n in self.names if n in row]
        cols = ", ".join(q(n) for n in names)
        values = ", ".join([self.p] * len(names))
        sql = f"INSERT INTO {q(self.table.id)} ({cols}) VALUES ({values})" if names else \
            f"INSERT INTO {q(self.table.id)} DEFAULT VALUES"
        if unless:
            sql += f" ON CONFLICT ({', '.join(q(self.table.column(n).name) for n in unless)}) DO NOTHING"
        sql += f" RETURNING {', '.join(q(n) for n in self.names)}"
        return sql, [self.to_db(self.table.column(n), row[n]) for n in names]

    def insert_many(self, rows: Sequence[Row], unless: Sequence[str] = ()) -> list[tuple[str, list[list[Any]]]]:
        """INSERT statements for many rows (nothing returned): one statement per set of columns given, with the
        parameters of each of its rows (for executemany); `unless` as in `insert`."""
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for row in rows:
            unknown = set(row) - set(self.names)
            if unknown:
                raise BadInput(f"unknown column(s) {', '.join(sorted(unknown))} of {self.table.id!r}",
                               parameter=sorted(unknown)[0])
            names = tuple(n for n in self.names if n in row)
            groups.setdefault(names, []).append([self.to_db(self.table.column(n), row[n]) for n in names])
        out = []
        for names, params in groups.items():
            sql = (f"INSERT INTO {q(self.table.id)} ({', '.join(q(n) for n in names)}) "
                   f"VALUES ({', '.join([self.p] * len(names))})") if names else \
                f"INSERT INTO {q(self.table.id)} DEFAULT VALUES"
            if unless:
                sql += f" ON CONFLICT ({', '.join(q(self.table.column(n).name) for n in unless)}) DO NOTHING"
            out.append((sql, params))
        return out

    def update_by_id(self, values: dict[int, Row]) -> list[tuple[str, list[list[Any]]]]:
        """UPDATE statements setting each row's own values (id -> {column: value}): one statement per set of
        columns, with the parameters of each of its rows (for executemany)."""
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for rid, row in values.items():
            if not row:
                continue
            names = tuple(row)
            groups.setdefault(names, []).append([*(self.to_db(self.table.column(n), row[n]) for n in names),
                                                 int(rid)])
        return [(f"UPDATE {q(self.table.id)} SET {', '.join(f'{q(n)} = {self.p}' for n in names)} "
                 f"WHERE {q('id')} = {self.p}", params) for names, params in groups.items()]

    def update(self, where: Row, values: Row) -> tuple[str, list[Any]]:
        """UPDATE the rows matching `where`."""
        if not values:
            raise ValueError("nothing to update")
        sets = ", ".join(f"{q(n)} = {self.p}" for n in values)
        params = [self.to_db(self.table.column(n), v) for n, v in values.items()]
        text, wparams = self.where(where)
        return f"UPDATE {q(self.table.id)} SET {sets}{text}", params + wparams

    def delete(self, where: Row) -> tuple[str, list[Any]]:
        """DELETE the rows matching `where`."""
        text, params = self.where(where)
        return f"DELETE FROM {q(self.table.id)}{text}", params


def _order(table: Table, term: str) -> str:
    desc = term.startswith("-")
    name = term.lstrip("-")
    table.column(name)
    return f"{q(name)} {'DESC' if desc else 'ASC'}"
