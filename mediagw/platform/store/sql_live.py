"""``SqlStore``'s live-stream half: sessions starting and ending, atomic counter increments, the
clean-up after an unclean stop, and multistream targets.

Counters only ever grow through ``UPDATE ... SET x = x + :delta`` (never read-modify-write), so
two writers (a second node, a late flush) cannot lose each other's increments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...errors import StoreNotFound
from .engine import check_limit, one_statement, transaction
from .rows import COUNTERS, Counters, MultistreamTarget, Session, Stream, from_row, from_values
from .schema import multistream_targets, sessions, streams

__all__ = ["LiveStore"]

R = TypeVar("R")


def _adding(table: sa.Table, row: str = "row") -> sa.Update:
    """``UPDATE table SET last_seen = :at, x = x + :d_x ... WHERE id = :row``, built once: run
    with one parameter set per row (executemany), every counter added, zeros included."""
    return (
        table.update()
        .where(table.c.id == sa.bindparam(row))
        .values(
            last_seen=sa.bindparam("at"),
            **{name: table.c[name] + sa.bindparam(f"d_{name}") for name in COUNTERS},
        )
    )


_ADD_STREAMS, _ADD_SESSIONS = _adding(streams), _adding(sessions)


def _ending(recorded: bool) -> sa.Update:
    """A session's end (``WHERE id = :session``): its last counters, ended if it is open (else
    it returns no row), with its recording's URL (``:url``) when ``recorded``."""
    ending = _adding(sessions, "session").where(sessions.c.ended_at.is_(None))
    ending = ending.values(ended_at=sa.bindparam("at"))
    if recorded:
        ending = ending.values(recording_url=sa.bindparam("url"))
    return ending.returning(*sessions.c)


_END_SESSION, _END_RECORDED = _ending(False), _ending(True)
# the last counters of a session that had been ended already (a takeover)
_COUNT_ENDED = _adding(sessions, "session").where(sessions.c.ended_at.is_not(None))
# a session's end, for its stream (``:stream``): the last counters, and inactive unless another
# of its sessions is open (``:session`` left out by its id: it is ending, whether the statement
# sees it ended or, in one statement with its end, still open)
_FINISH_STREAM = (
    _adding(streams, "stream")
    .values(
        is_active=sa.case(
            (
                sa.exists().where(
                    sessions.c.stream_id == sa.bindparam("stream"),
                    sessions.c.ended_at.is_(None),
                    sessions.c.id != sa.bindparam("session"),
                ),
                streams.c.is_active,
            ),
            else_=False,
        )
    )
    .returning(*streams.c)
)


def _finishing(ending: sa.Update) -> sa.Select[Any]:
    """A session's end in one statement (PostgreSQL: data-modifying CTEs, one round trip):
    ``ended`` (``ending``), ``counted`` (``_COUNT_ENDED``) and ``stream`` (``_FINISH_STREAM``),
    each seeing the snapshot from before the statement. One row: the stream's columns as
    ``t_*``, the ended session's as ``s_*`` (NULL when it had been ended already)."""
    ended, stream = ending.cte("ended"), _FINISH_STREAM.cte("stream")
    columns = [c.label(f"t_{c.name}") for c in stream.c] + [c.label(f"s_{c.name}") for c in ended.c]
    joined = stream.outerjoin(ended, sa.true())
    return sa.select(*columns).select_from(joined).add_cte(_COUNT_ENDED.cte("counted"))


_FINISH_ONE, _FINISH_RECORDED_ONE = _finishing(_END_SESSION), _finishing(_END_RECORDED)


def _deltas(deltas: Counters, at: int) -> dict[str, Any]:
    """``_adding``'s parameters but the row: the time and every counter's delta."""
    return {"at": at, **{f"d_{n}": getattr(deltas, n) for n in COUNTERS}}


def _counting(row: str, deltas: Counters, at: int) -> dict[str, Any]:
    """The parameters of ``_adding``'s statement for one row."""
    return {"row": row, **_deltas(deltas, at)}


class LiveStore:
    """Mixed into ``SqlStore`` (which provides the engine and the row helpers)."""

    _engine: AsyncEngine
    _single: AsyncEngine  # one statement at a time (autocommit on PostgreSQL)

    async def _one(self, cls: type[R], query: sa.Select[Any]) -> R | None:
        raise NotImplementedError

    async def _all(self, cls: type[R], query: sa.Select[Any]) -> tuple[R, ...]:
        raise NotImplementedError

    async def _insert(self, table: sa.Table, entity: str, values: dict[str, Any]) -> None:
        raise NotImplementedError

    # a stream's live sessions

    async def start_session(self, session: Session) -> Stream:
        """Store a new session and mark its stream active, seen at the session's start (at once:
        on PostgreSQL one statement, the insert in a CTE, so one round trip; on SQLite one
        transaction); the stream after (as the update returns it: no read after);
        StoreNotFound if the stream is gone."""
        values = {f.name: getattr(session, f.name) for f in dataclasses.fields(session)}
        activate = streams.update().values(
            is_active=True, last_seen=session.last_seen or session.created_at
        )
        if self._engine.dialect.name == "postgresql":
            added = sessions.insert().values(**values).returning(sessions.c.stream_id).cte("added")
            both = activate.where(
                streams.c.id == sa.select(added.c.stream_id).scalar_subquery()
            ).returning(*streams.c)
            async with one_statement(self._single, "session") as connection:
                row = (await connection.execute(both)).first()
        else:
            async with transaction(self._engine, "session") as connection:
                await connection.execute(sessions.insert().values(**values))
                update = activate.where(streams.c.id == session.stream_id)
                row = (await connection.execute(update.returning(*streams.c))).first()
        if row is None:  # the session's foreign key makes this a race with a delete
            raise StoreNotFound("the session's stream does not exist: create it first")
        return from_row(Stream, row)

    async def add_counters(
        self, stream_id: str, session_id: str | None, deltas: Counters, at: int
    ) -> None:
        """Add ``deltas`` to a stream's counters and its session's, and mark both seen at
        ``at``: one atomic increment per row."""
        await self.add_counters_many([(stream_id, session_id, deltas)], at)

    async def add_counters_many(
        self, updates: Sequence[tuple[str, str | None, Counters]], at: int
    ) -> None:
        """``add_counters`` for many streams in one transaction and two statements (the
        periodic flush of every live session: one round trip per statement, not per stream)."""
        if updates:
            async with transaction(self._engine, "session") as connection:
                await _add(connection, updates, at)

    async def finish_session(
        self,
        stream_id: str,
        session_id: str,
        deltas: Counters,
        at: int,
        recording_url: str | None = None,
    ) -> tuple[Session, Stream] | None:
        """The last counters, then the session ended at ``at`` and its stream inactive unless
        another of its sessions is open (PostgreSQL: one statement, ``_finishing``; SQLite: one
        transaction, two statements, three for a session ended already; the updates return the
        rows); the session and its stream after, or None if the session is gone or had been
        ended already (by another node that took the stream over)."""
        params = {"stream": stream_id, "session": session_id, "url": recording_url}
        params.update(_deltas(deltas, at))
        recorded = recording_url is not None
        if self._engine.dialect.name == "postgresql":
            query = _FINISH_RECORDED_ONE if recorded else _FINISH_ONE
            async with one_statement(self._single, "session") as connection:
                row = (await connection.execute(query, params)).first()
            if row is None or row.s_id is None:
                return None
            values = row._mapping
            ended = {c.name: values[f"s_{c.name}"] for c in sessions.c}
            stream = {c.name: values[f"t_{c.name}"] for c in streams.c}
            return from_values(Session, ended), from_values(Stream, stream)
        async with transaction(self._engine, "session") as connection:
            ending = _END_RECORDED if recorded else _END_SESSION
            ended_row = (await connection.execute(ending, params)).first()
            if ended_row is None:  # gone, or ended already (a takeover): its counters all the same
                await connection.execute(_COUNT_ENDED, params)
            stream_row = (await connection.execute(_FINISH_STREAM, params)).first()
        if ended_row is None or stream_row is None:
            return None
        return from_row(Session, ended_row), from_row(Stream, stream_row)

    async def end_stale_sessions(self) -> tuple[str, ...]:
        """After an unclean stop: every active stream becomes inactive and every open session
        ends when it was last seen. The ids of the streams that were active."""
        async with transaction(self._engine, "session") as connection:
            found = await connection.execute(sa.select(streams.c.id).where(streams.c.is_active))
            ids = tuple(str(row[0]) for row in found)
            await connection.execute(
                sessions.update()
                .where(sessions.c.ended_at.is_(None))
                .values(ended_at=sa.func.coalesce(sessions.c.last_seen, sessions.c.created_at))
            )
            await connection.execute(
                streams.update().where(streams.c.is_active).values(is_active=False)
            )
        return ids

    async def open_sessions(self, stream_id: str | None = None) -> tuple[Session, ...]:
        """The sessions not ended (of one stream, or all), oldest first."""
        query = sessions.select().where(sessions.c.ended_at.is_(None))
        if stream_id is not None:
            query = query.where(sessions.c.stream_id == stream_id)
        return await self._all(Session, query.order_by(sessions.c.created_at))

    async def end_open_session(self, session: Session) -> bool:
        """End a session its node left open (it stopped uncleanly) when it was last seen, and
        its stream inactive unless another of its sessions is open; False if it had ended
        already (whoever ended it told the webhooks: nobody tells them twice)."""
        open_ = sessions.c.ended_at.is_(None)
        async with transaction(self._engine, "session") as connection:
            result = await connection.execute(
                sessions.update()
                .where(sessions.c.id == session.id, open_)
                .values(ended_at=sa.func.coalesce(sessions.c.last_seen, sessions.c.created_at))
            )
            if not result.rowcount:
                return False
            others = sa.exists().where(sessions.c.stream_id == session.stream_id, open_)
            await connection.execute(
                streams.update()
                .where(streams.c.id == session.stream_id, ~others)
                .values(is_active=False)
            )
        return True

    # multistream targets

    async def create_multistream_target(self, target: MultistreamTarget) -> MultistreamTarget:
        """Store a new multistream target; StoreConflict if its id is taken."""
        values = {f.name: getattr(target, f.name) for f in dataclasses.fields(target)}
        await self._insert(multistream_targets, "multistream target", values)
        return target

    async def get_multistream_target(self, target_id: str) -> MultistreamTarget | None:
        """The multistream target with this id, or None."""
        query = multistream_targets.select().where(multistream_targets.c.id == target_id)
        return await self._one(MultistreamTarget, query)

    async def list_multistream_targets(
        self, *, limit: int = 100, owner_key_id: str | None = None
    ) -> tuple[MultistreamTarget, ...]:
        """Multistream targets, newest first; with ``owner_key_id``, only that key's."""
        table = multistream_targets
        query = table.select()
        if owner_key_id is not None:
            query = query.where(table.c.owner_key_id == owner_key_id)
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc())
        return await self._all(MultistreamTarget, query.limit(check_limit(limit)))

    async def delete_multistream_target(self, target_id: str) -> bool:
        """Delete a multistream target; False if there was none."""
        table = multistream_targets
        async with transaction(self._engine, "multistream target") as connection:
            result = await connection.execute(table.delete().where(table.c.id == target_id))
        return bool(result.rowcount)


async def _add(
    connection: AsyncConnection, updates: Sequence[tuple[str, str | None, Counters]], at: int
) -> None:
    """Add each (stream id, session id or None, deltas) to its stream's counters and its
    session's, both seen at ``at``: the statements built once, run once each (executemany)."""

    rows = [_counting(stream_id, d, at) for stream_id, _, d in updates]
    await connection.execute(_ADD_STREAMS, rows)
    session_rows = [_counting(sid, d, at) for _, sid, d in updates if sid is not None]
    if session_rows:
        await connection.execute(_ADD_SESSIONS, session_rows)
