"""Migration 2: the change feed, one total order over every committed version (`changes.pos`).

Why a table and not `versions.seq`: on PostgreSQL, BIGSERIAL values are taken when a row is inserted, not when its
transaction commits, so a reader can see seq 11 committed while seq 10 is still in flight and later commits; a
consumer that resumed after 11 would miss 10 forever. The feed position must follow commit order.

- PostgreSQL: a deferred constraint trigger on `versions` runs at commit time, takes one transaction-level advisory
  lock (FEED_LOCK) and numbers the transaction's versions from the `changes_pos` sequence. The lock is held until
  the commit is visible, so positions are handed out in commit order and a transaction's versions get consecutive
  positions: a reader that sees position N has also seen every position below it. The cost is that commits
  serialise for the few microseconds of that numbering; the body of the transactions still runs in parallel.
  Positions may have gaps (a transaction that fails after numbering); consumers only ever ask for `pos > since`.
- SQLite: writers are already serialised (`BEGIN IMMEDIATE`), so `versions.seq` is commit-ordered and a plain
  trigger copies it: pos = seq.

The trigger lives in the database, so every writer (REST, bundles, bulk import, the replica) feeds it without
having to remember to. `meta.feed_epoch` names the numbering: it changes whenever positions could be reassigned
(this migration, a restore), so a follower can tell that its saved position no longer means anything.
"""

from __future__ import annotations

from sharedcare.store.migrations.base import Migration
from sharedcare.store.schema import Dialect

FEED_LOCK = 7426002


def up(d: Dialect) -> list[str]:
    if d.name == "postgresql":
        return [
            "LOCK TABLE versions IN SHARE ROW EXCLUSIVE MODE",  # no writer inserts while positions are backfilled
            "CREATE SEQUENCE IF NOT EXISTS changes_pos",
            "CREATE TABLE IF NOT EXISTS changes (pos BIGINT PRIMARY KEY, seq BIGINT NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS changes_seq ON changes (seq)",
            "INSERT INTO changes (pos, seq) SELECT ROW_NUMBER() OVER (ORDER BY seq), seq FROM versions",
            "SELECT setval('changes_pos', (SELECT COALESCE(MAX(pos), 0) + 1 FROM changes), false)",
            f"""CREATE OR REPLACE FUNCTION sharedcare_feed_position() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock({FEED_LOCK});
                INSERT INTO changes (pos, seq) VALUES (nextval('changes_pos'), NEW.seq);
                RETURN NULL;
            END $$""",
            "DROP TRIGGER IF EXISTS versions_feed ON versions",
            "CREATE CONSTRAINT TRIGGER versions_feed AFTER INSERT ON versions DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION sharedcare_feed_position()",
            "INSERT INTO meta (key, value) VALUES ('feed_epoch', md5(random()::text || clock_timestamp()::text)) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ]
    return [
        "CREATE TABLE IF NOT EXISTS changes (pos INTEGER PRIMARY KEY, seq BIGINT NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS changes_seq ON changes (seq)",
        "INSERT INTO changes (pos, seq) SELECT seq, seq FROM versions WHERE seq NOT IN (SELECT seq FROM changes)",
        """CREATE TRIGGER IF NOT EXISTS versions_feed AFTER INSERT ON versions BEGIN
            INSERT INTO changes (pos, seq) VALUES (new.seq, new.seq); END""",
        "INSERT INTO meta (key, value) VALUES ('feed_epoch', lower(hex(randomblob(16)))) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ]


def down(d: Dialect) -> list[str]:
    if d.name == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS versions_feed ON versions",
            "DROP FUNCTION IF EXISTS sharedcare_feed_position()",
            "DROP TABLE IF EXISTS changes",
            "DROP SEQUENCE IF EXISTS changes_pos",
            "DELETE FROM meta WHERE key = 'feed_epoch'",
        ]
    return [
        "DROP TRIGGER IF EXISTS versions_feed",
        "DROP TABLE IF EXISTS changes",
        "DELETE FROM meta WHERE key = 'feed_epoch'",
    ]


MIGRATION = Migration(2, "change feed: commit-ordered positions for every version", up, down)
