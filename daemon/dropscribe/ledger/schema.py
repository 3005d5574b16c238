"""The ledger's tables, once, for both backends; each renders its own DDL from them.

``LAYOUT`` lists every table with its columns (a type of this module's, rendered as
SQLite's or PostgreSQL's), its key and its indexes; a table marked ``shared`` exists
only where several hosts share the ledger (claims, leases). The layout carries one
version number, kept by both backends in the ``meta`` table (``name = 'schema'``);
SQLite also keeps it as ``user_version``, where dropscribes before the ``meta`` table
read it. ``LAYOUT.steps[n]`` turns a ledger of version n into n + 1: a new column is
added there *and* in its table below (the table is what a fresh ledger gets), never
by editing the table alone. How a backend applies it is ``migrations.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Type(enum.Enum):
    """A column's kind of value, as each backend names it."""

    TEXT = ("TEXT", "TEXT")
    INT = ("INTEGER", "INTEGER")
    BIG = ("INTEGER", "BIGINT")  # sizes, nanoseconds, inode numbers, tokens
    REAL = ("REAL", "DOUBLE PRECISION")
    BOOL = ("INTEGER", "BOOLEAN")
    TIME = ("TEXT", "TIMESTAMPTZ")  # the database's clock (shared tables only)
    TSV = ("TEXT", "TSVECTOR")  # PostgreSQL's full-text index of a text (shared tables only)

    def named(self, dialect: Dialect) -> str:
        return self.value[dialect is Dialect.POSTGRES]


class Dialect(enum.Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgresql"


@dataclass(frozen=True)
class Column:
    name: str
    type: Type
    required: bool = False  # NOT NULL
    default: str | None = None  # an SQL literal both backends read alike

    def ddl(self, dialect: Dialect) -> str:
        text = f'"{self.name}" {self.type.named(dialect)}'
        if self.required:
            text += " NOT NULL"
        if self.default is not None:
            text += f" DEFAULT {self.default}"
        return text


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    shared: bool = False  # only in a ledger several hosts share

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self, dialect: Dialect) -> list[str]:
        """CREATE statements for this table and its indexes (each if missing)."""
        parts = [c.ddl(dialect) for c in self.columns]
        parts.append(f"PRIMARY KEY ({_listed(self.key)})")
        body = ",\n    ".join(parts)
        made = [f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"]
        made += [
            f"CREATE INDEX IF NOT EXISTS {i.name} ON {self.name} ({_listed(i.columns)})"
            for i in self.indexes
        ]
        return made


@dataclass(frozen=True)
class AddColumn:
    """A step: ``column`` of ``table`` (as the table lists it) added to an older ledger."""

    table: str
    column: str


@dataclass(frozen=True)
class AddIndex:
    table: str
    index: str


@dataclass(frozen=True)
class AddTable:
    table: str


Step = AddColumn | AddIndex | AddTable


@dataclass(frozen=True)
class Layout:
    version: int
    tables: tuple[Table, ...]
    sequences: tuple[str, ...] = ()  # shared only: claim tokens
    steps: dict[int, tuple[Step, ...]] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    def in_(self, dialect: Dialect) -> tuple[Table, ...]:
        """The tables a backend keeps (a SQLite ledger is one host's: no shared ones)."""
        return tuple(t for t in self.tables if dialect is Dialect.POSTGRES or not t.shared)

    def ddl(self, dialect: Dialect) -> list[str]:
        """Every statement that makes what is missing of the current layout."""
        made: list[str] = []
        if dialect is Dialect.POSTGRES:
            made += [f"CREATE SEQUENCE IF NOT EXISTS {name}" for name in self.sequences]
        for table in self.in_(dialect):
            made += table.ddl(dialect)
        return made

    def step_ddl(self, step: Step, dialect: Dialect) -> list[str]:
        """The statements of one step, or none where it touches a table this backend
        does not keep."""
        table = self.table(step.table)
        if table.shared and dialect is not Dialect.POSTGRES:
            return []
        match step:
            case AddColumn(column=name):
                return [f"ALTER TABLE {table.name} ADD COLUMN {table.column(name).ddl(dialect)}"]
            case AddIndex(index=name):
                index = next(i for i in table.indexes if i.name == name)
                cols = _listed(index.columns)
                return [f"CREATE INDEX IF NOT EXISTS {index.name} ON {table.name} ({cols})"]
            case AddTable():
                return table.ddl(dialect)


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def columns(spec: str) -> tuple[Column, ...]:
    """Columns from ``"name type, name type?, name type =default"``: a type is this
    module's (text, int, big, real, bool, time), ``?`` lets it be NULL."""
    made = []
    for part in spec.split(","):
        name, kind, *default = part.split()
        null = kind.endswith("?")
        made.append(
            Column(
                name,
                Type[kind.rstrip("?").upper()],
                required=not null,
                default=default[0].removeprefix("=") if default else None,
            )
        )
    return tuple(made)


LAYOUT = Layout(
    version=3,
    tables=(
        # the layout's version (name 'schema'), in both backends
        Table("meta", columns("name text, value text"), key=("name",)),
        # one transcript: content fingerprint plus the settings that shape it
        Table(
            "jobs",
            columns(
                "key text, fingerprint text, settings text, state text, attempts int =0,"
                " last_error text?, status int?, request_id text?, result text?,"
                " created real, updated real"
            ),
            key=("key",),
        ),
        # one path in an inbox, its identity, state and sidecars; next_try (until16): the
        # moment (epoch seconds) a waiting file is tried again, when one is known (wake15)
        Table(
            "files",
            columns(
                "path text, inbox text, size big, mtime_ns big, inode big, fingerprint text,"
                " key text, state text, formats text ='', outputs text ='[]', error text?,"
                " updated real, next_try real?"
            ),
            key=("path",),
            indexes=(Index("files_state", ("state", "updated")), Index("files_key", ("key",))),
        ),
        # which source owns each sidecar path
        Table("sidecars", columns("path text, source text"), key=("path",)),
        # a long recording's plan and its checkpoints
        Table(
            "chunks",
            columns(
                "key text, idx int, start real, end real, cut real, pause bool,"
                " result text?, request_id text?"
            ),
            key=("key", "idx"),
        ),
        # what each (endpoint, model) pair took or refused
        Table(
            "capabilities",
            columns(
                "endpoint text, model text, param text, value text, verdict text,"
                " reason text?, updated real"
            ),
            key=("endpoint", "model", "param", "value"),
        ),
        # chat33: a step after the transcript (steps/): its result, attempts and tokens
        Table(
            "steps",
            columns(
                "key text, step text, shaping text, endpoint text, path text, state text,"
                " attempts int =0, error text?, next_at real =0, result text?,"
                " tokens_in big =0, tokens_out big =0, updated real"
            ),
            key=("key", "step", "shaping"),
            indexes=(Index("steps_due", ("state", "next_at")),),
        ),
        # chat33: which step result each source's step sidecars show now
        Table(
            "step_outputs",
            columns("path text, step text, key text, shaping text, outputs text, updated real"),
            key=("path", "step"),
            indexes=(Index("step_outputs_key", ("key",)),),  # search35b: a result's sidecars
        ),
        # stepsfence: the hook after a source's steps, claimed for what they showed then
        Table(
            "step_hooks", columns("path text, shown text, token text, claimed real"), key=("path",)
        ),
        # fallback34: which endpoint each job was sent to, and why others were passed over
        Table(
            "sends",
            columns(
                "key text, endpoint text, model text, path text, state text, reason text?,"
                " updated real"
            ),
            key=("key", "endpoint"),
        ),
        # budget34: what each request to an endpoint cost (ledger/spend.py): reserved before
        # it is sent (estimate), settled after (cost); the periods in local time
        Table(
            "spend",
            columns(
                "id text, key text, endpoint text, folder text, day text, month text,"
                " estimate real, cost real, state text, path text, updated real,"
                " seconds real =0, elapsed real =0"
            ),
            key=("id",),
            indexes=(
                Index("spend_endpoint", ("endpoint", "month", "day")),
                Index("spend_folder", ("folder", "month", "day")),
            ),
        ),
        # lang32b: what language detection heard in each (content, audio track), and
        # the detector that heard it (heard.py): a waiting file is not heard again
        Table(
            "heard",
            columns("key text, track int, detector text, found text, updated real"),
            key=("key", "track"),
        ),
        # bounds17: what each waiting file's wait is for (waits.py): a restarted daemon
        # does not honour a wait whose reason (a budget, the endpoint) changed since
        Table("waits", columns("path text, reason text, updated real"), key=("path",)),
        # done17: a done file's after: (move, delete) that failed, tried again (afters.py)
        Table(
            "afters",
            columns(
                "path text, inbox text, action text, error text, tries int, since real,"
                " updated real"
            ),
            key=("path",),
        ),
        # hooks20: a folder's hook owed, from the write that records its file's outcome
        # until it has run (owed.py); run: the process owing it; held: waits for an after:
        Table(
            "hooks",
            columns(
                "path text, outcome text, inbox text, body text, held bool, run text, owed real"
            ),
            key=("path", "outcome"),
        ),
        # a job in some host's hands (leases.py); previous: the run it was taken from
        Table(
            "claims",
            columns(
                "key text, host text, run text, token big, path text, claimed time,"
                " expires time, previous text?"
            ),
            key=("key",),
            indexes=(Index("claims_run", ("run",)),),
            shared=True,
        ),
        # every daemon sharing the ledger, and its heartbeat
        Table(
            "hosts",
            columns("run text, host text, pid int, version text, started time, beat time"),
            key=("run",),
            shared=True,
        ),
        # search (fulltext.py): each transcript indexed, the jobs table's triggers keep it;
        # id numbers its segments in SQLite's FTS5 table (search_text), made beside it
        Table(
            "search_docs",
            columns("key text, id int?, language text?, config text, transcribed real"),
            key=("key",),
            indexes=(Index("search_docs_id", ("id",)),),
        ),
        # PostgreSQL's index of each passage (fulltext_pg.py; a SQLite ledger: search_text)
        Table(
            "search_segments",
            columns(
                "key text, idx int, start real?, end real?, speaker text?, body text,"
                " config text, tsv tsv"
            ),
            key=("key", "idx"),
            shared=True,
        ),
        # search35b: each step result (summary, translation) indexed as a transcript is, by
        # the steps table's triggers; id (negative) numbers its entries in search_text
        Table(
            "search_steps",
            columns(
                "key text, step text, shaping text, id int?, language text?, config text,"
                " transcribed real"
            ),
            key=("key", "step", "shaping"),
            indexes=(Index("search_steps_id", ("id",)),),
        ),
        # search35b: PostgreSQL's index of each step result's entries (SQLite: search_text)
        Table(
            "search_step_segments",
            columns(
                "key text, step text, shaping text, idx int, start real?, end real?,"
                " speaker text?, body text, config text, tsv tsv"
            ),
            key=("key", "step", "shaping", "idx"),
            shared=True,
        ),
    ),
    sequences=("claim_tokens",),
    steps={
        0: (),  # 0: a SQLite ledger from before versions were kept, laid out as 1
        1: (AddColumn("files", "next_try"),),  # until16
        # hooks20: the hooks owed. A pending after: of a ledger before it gets no held hook:
        # its hook ran at done before paras19 (a second call was the bug), and one held
        # by a paras19 dropscribe, the hours before hooks20, is not told from it
        2: (AddTable("hooks"),),
    },
)

# The tables a SQLite ledger's rows are copied from into a shared one (ledger migrate).
COPIED = ("jobs", "files", "sidecars", "chunks", "capabilities")
