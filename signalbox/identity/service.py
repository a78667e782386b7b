"""Deterministic stitching, merges (the one write path, with its log), reviews and unmerge.

Rules, in order:
1. Identifiers are normalized and junk values dropped before they get here.
2. A message's identifiers that are already known point at profile trees; the strongest
   (user_id > external ids > email > phone > anonymous_id) decides where the event lands.
3. Two trees reached by one message are merged, unless both carry a user_id and they
   differ: that goes to the review queue, never merged by a rule.
4. A user_id never seen before joins a tree that already has another user_id only by review;
   until then it gets a profile of its own.
5. A pair a person rejected (or unmerged) is never merged again automatically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from signalbox.changes import service as changes
from signalbox.changes.schemas import NewChange
from signalbox.consent import service as consent
from signalbox.consent.schemas import ConsentRecord
from signalbox.core.db import Database, advisory_xact_lock, bulk_insert, pg_array
from signalbox.core.errors import ConflictError, NotFoundError
from signalbox.core.ids import new_id
from signalbox.events import service as events
from signalbox.events.schemas import StoredEvent
from signalbox.identity import identifiers as ids
from signalbox.identity.models import Identifier, MergeLogEntry, MergeReview
from signalbox.identity.schemas import (
    IdentifierInfo,
    MergeInfo,
    ProfileDocument,
    ResolveStats,
    ReviewInfo,
)
from signalbox.profiles import service as profiles
from signalbox.profiles.schemas import ProfileNode

_CHUNK = 2000
IDENTIFIERS: Table = Identifier.__table__  # type: ignore[assignment]
MERGE_LOG: Table = MergeLogEntry.__table__  # type: ignore[assignment]
Pair = tuple[str, str]


class Resolvable(Protocol):
    """What the resolver needs of a message (ingestion's NormalizedMessage fits)."""

    user_id: str | None
    previous_id: str | None
    identifiers: list[Pair]
    profile_id: str


@dataclass
class _Graph:
    """The batch's view of the person graph; new rows are buffered and written in bulk."""

    session: Session
    workspace_id: str
    now: datetime
    owner: dict[Pair, str] = field(default_factory=dict)  # identifier -> node
    root: dict[str, str] = field(default_factory=dict)  # node -> root
    # root -> the nodes `root` maps to it: a merge re-points only the source's own members
    # (walking every node the batch knows cost more than the merge's writes).
    members: dict[str, list[str]] = field(default_factory=dict)
    tree_user: dict[str, str] = field(default_factory=dict)  # root -> user_id
    node_user: dict[str, str | None] = field(default_factory=dict)
    new_nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_identifiers: list[dict[str, Any]] = field(default_factory=list)
    node_user_updates: dict[str, str] = field(default_factory=dict)
    # Merges decided in this batch, written with the other buffered rows in `flush`.
    pending_merges: list[_MergeWrite] = field(default_factory=list)
    has_rejections: bool = False
    stats: ResolveStats = field(default_factory=ResolveStats)

    def load(self, pairs: set[Pair]) -> None:
        if self.session.get_bind().dialect.name == "postgresql":
            found = self._load_pg(sorted(pairs))
        else:
            self.owner.update(_owners(self.session, self.workspace_id, sorted(pairs)))
            found = profiles.nodes(self.session, self.workspace_id, set(self.owner.values()))
            roots = {info.canonical_id for info in found.values()}
            self.tree_user.update(profiles.tree_user_ids(self.session, self.workspace_id, roots))
        for info in found.values():
            self.root[info.id] = info.canonical_id
            self.members.setdefault(info.canonical_id, []).append(info.id)
            self.node_user[info.id] = info.user_id
        # Most workspaces have never rejected a pair; then no merge needs the (costly) check.
        self.has_rejections = (
            self.session.scalar(
                select(MergeReview.id)
                .where(MergeReview.workspace_id == self.workspace_id, MergeReview.status == "rejected")
                .limit(1)
            )
            is not None
        )

    def _load_pg(self, pairs: list[Pair]) -> dict[str, ProfileNode]:
        """What `_owners`, `profiles.nodes` and `profiles.tree_user_ids` read on SQLite, in one
        statement: the pairs as two array literals joined to the unique (workspace, type, value)
        index, then to the nodes. As three round trips and three plans it was a tenth of a
        served batch's time on PostgreSQL."""
        found: dict[str, ProfileNode] = {}
        if not pairs:
            return found
        params = {
            "types": pg_array([k for k, _ in pairs]),
            "vals": pg_array([v for _, v in pairs]),
            "workspace_id": self.workspace_id,
        }
        for kind, value, node, canonical, merged, user, created, tree_user in self.session.execute(_LOAD_PG, params):
            self.owner[(kind, value)] = node
            if canonical is not None:
                found[node] = ProfileNode(node, canonical, merged, user, created)
            if tree_user is not None:
                self.tree_user[canonical] = tree_user
        return found

    def create_node(self, user_id: str | None) -> str:
        node = new_id("prof")
        self.new_nodes[node] = profiles.node_row(self.workspace_id, node, user_id, self.now)
        self.root[node] = node
        self.members[node] = [node]
        self.node_user[node] = user_id
        if user_id:
            self.tree_user[node] = user_id
        self.stats.created += 1
        return node

    def attach(self, pair: Pair, node: str) -> None:
        if pair in self.owner:
            return
        self.owner[pair] = node
        self.new_identifiers.append(
            {
                "workspace_id": self.workspace_id,
                "type": pair[0],
                "value": pair[1],
                "profile_id": node,
                "created_at": self.now,
            }
        )
        if pair[0] == ids.USER_ID:
            if self.node_user.get(node) is None:
                self.node_user[node] = pair[1]
                if node in self.new_nodes:
                    self.new_nodes[node]["user_id"] = pair[1]
                else:
                    self.node_user_updates[node] = pair[1]
            self.tree_user.setdefault(self.root[node], pair[1])

    def merge(self, source: str, target: str, reason: str) -> None:
        """Hang root `source` under root `target`, in memory now and in the database at flush."""
        self.pending_merges.append(_MergeWrite(source, target, reason, "auto"))
        moved = self.members.pop(source, [])
        for member in moved:
            self.root[member] = target
        self.members.setdefault(target, []).extend(moved)
        if source in self.new_nodes:
            self.new_nodes[source]["merged_into_id"] = target
        if self.tree_user.get(source):
            self.tree_user.setdefault(target, self.tree_user[source])
        self.tree_user.pop(source, None)

    def flush(self) -> None:
        for node, row in self.new_nodes.items():
            row["canonical_id"] = self.root[node]
        profiles.insert_nodes(self.session, list(self.new_nodes.values()))
        if self.new_identifiers:
            bulk_insert(self.session, IDENTIFIERS, self.new_identifiers)
        profiles.set_node_users(self.session, self.workspace_id, self.node_user_updates)
        stored = [m for m in self.pending_merges if m.source not in self.new_nodes]
        _write_merges(self.session, self.workspace_id, self.pending_merges, self.now, self.root, stored)
        self.new_nodes, self.new_identifiers, self.node_user_updates, self.pending_merges = {}, [], {}, []


# For each known identifier: its node, and the user_id of the oldest node of the node's tree
# that has one (`profiles.tree_user_ids`), probed through (workspace_id, canonical_id).
_LOAD_PG = text(
    "SELECT i.type, i.value, i.profile_id, n.canonical_id, n.merged_into_id, n.user_id, n.created_at, tu.user_id "
    "FROM unnest(CAST(:types AS varchar[]), CAST(:vals AS varchar[])) AS w(type, value) "
    "JOIN identifiers AS i ON i.workspace_id = :workspace_id AND i.type = w.type AND i.value = w.value "
    "LEFT JOIN profiles AS n ON n.workspace_id = :workspace_id AND n.id = i.profile_id "
    "LEFT JOIN LATERAL (SELECT t.user_id FROM profiles AS t "
    "WHERE t.workspace_id = :workspace_id AND t.canonical_id = n.canonical_id AND t.user_id IS NOT NULL "
    "ORDER BY t.created_at, t.id LIMIT 1) AS tu ON true"
)


def _owners(session: Session, workspace_id: str, pairs: list[Pair]) -> dict[Pair, str]:
    """The node owning each of `pairs` that is known (SQLite; PostgreSQL reads the owners
    together with their nodes in `_Graph._load_pg`)."""
    found: dict[Pair, str] = {}
    by_type: dict[str, list[str]] = {}
    for kind, value in pairs:
        by_type.setdefault(kind, []).append(value)
    # One query per identifier type, so the unique (workspace, type, value) index serves it.
    for kind, values in by_type.items():
        for start in range(0, len(values), _CHUNK):
            rows = session.execute(
                select(Identifier.value, Identifier.profile_id).where(
                    Identifier.workspace_id == workspace_id,
                    Identifier.type == kind,
                    Identifier.value.in_(values[start : start + _CHUNK]),
                )
            )
            for value, node in rows:
                found[(kind, value)] = node
    return found


def resolve_batch(session: Session, workspace_id: str, messages: Sequence[Resolvable], now: datetime) -> ResolveStats:
    """Give every message a `profile_id` (the node its strongest identifier points at)."""
    graph = _Graph(session, workspace_id, now)
    wanted: set[Pair] = set()
    for msg in messages:
        wanted.update(msg.identifiers)
        if msg.previous_id:
            wanted.update({(ids.USER_ID, msg.previous_id), (ids.ANONYMOUS_ID, msg.previous_id)})
    graph.load(wanted)
    for msg in messages:
        _resolve_one(graph, msg)
        graph.stats.root_of[msg.profile_id] = graph.root[msg.profile_id]
    graph.flush()
    # Roots may have moved after a message was placed; report where each node ends up.
    graph.stats.root_of = {node: graph.root[node] for node in graph.stats.root_of}
    return graph.stats


def _message_pairs(graph: _Graph, msg: Resolvable) -> list[Pair]:
    pairs = list(msg.identifiers)
    if msg.previous_id:
        # alias: previousId is an old user_id if we know it as one, else an anonymous id.
        old_user = (ids.USER_ID, msg.previous_id)
        pairs.append(old_user if old_user in graph.owner else (ids.ANONYMOUS_ID, msg.previous_id))
    return pairs


def _resolve_one(graph: _Graph, msg: Resolvable) -> None:
    pairs = _message_pairs(graph, msg)
    matched = [(pair, graph.owner[pair]) for pair in pairs if pair in graph.owner]
    if not matched:
        node = graph.create_node(msg.user_id)
        for pair in pairs:
            graph.attach(pair, node)
        msg.profile_id = node
        return
    first_pair, node = matched[0]
    user_pair = (ids.USER_ID, msg.user_id) if msg.user_id else None
    tree_user = graph.tree_user.get(graph.root[node])
    if user_pair and user_pair not in graph.owner and tree_user not in (None, msg.user_id):
        # Rule 4: a new user_id reached another user's tree through a shared identifier.
        own = graph.create_node(msg.user_id)
        for pair in pairs:
            graph.attach(pair, own)
        _ask_review(graph, own, node, f"shares {first_pair[0]} with user_id {tree_user}")
        msg.profile_id = own
        return
    for pair, other in matched[1:]:
        if graph.root[other] != graph.root[node]:
            _join(graph, node, other, f"linked by {pair[0]}")
    for pair in pairs:
        graph.attach(pair, node)
    msg.profile_id = node


def _join(graph: _Graph, node_a: str, node_b: str, reason: str) -> None:
    root_a, root_b = graph.root[node_a], graph.root[node_b]
    user_a, user_b = graph.tree_user.get(root_a), graph.tree_user.get(root_b)
    if user_a and user_b and user_a != user_b:
        _ask_review(graph, node_a, node_b, f"{reason}, but user_ids {user_a} and {user_b} differ")
        return
    if graph.has_rejections:
        graph.flush()
        if _blocked(graph.session, graph.workspace_id, root_a, root_b):
            return
    # The tree that has a user_id keeps its root, so its id stays stable for callers.
    target, source = (root_b, root_a) if user_b and not user_a else (root_a, root_b)
    graph.merge(source, target, reason)
    graph.stats.merges += 1
    graph.stats.rebuild.add(target)
    graph.stats.rebuild.discard(source)


_MERGE_ARRAYS = "unnest(CAST(:src AS varchar[]), CAST(:dst AS varchar[])) AS v(src, dst)"
# Two statements, not one with a data-modifying CTE: a source root's row is matched by both
# (its id and its canonical_id), and PostgreSQL applies only one of two updates to a row made
# in one statement.
_POINT_PG = text(
    f"UPDATE profiles AS p SET merged_into_id = v.dst FROM {_MERGE_ARRAYS} "  # noqa: S608
    "WHERE p.workspace_id = :workspace_id AND p.id = v.src"
)
_REROOT_PG = text(
    f"UPDATE profiles AS p SET canonical_id = v.dst FROM {_MERGE_ARRAYS} "  # noqa: S608
    "WHERE p.workspace_id = :workspace_id AND p.canonical_id = v.src"
)


@dataclass(frozen=True, slots=True)
class _MergeWrite:
    source: str  # a root
    target: str  # a root
    reason: str
    actor: str


def _write_merges(
    session: Session,
    workspace_id: str,
    merges: Sequence[_MergeWrite],
    now: datetime,
    final_root: dict[str, str],
    stored_sources: Sequence[_MergeWrite],
) -> None:
    """The one write path for merges: pointers and their log rows together. `final_root`
    gives where each merged root ends up after all of `merges`; `stored_sources` are the
    merges whose source rows already exist in the database (new nodes were inserted with
    their pointers set)."""
    if not merges:
        return
    table = profiles.PROFILES
    if stored_sources and session.get_bind().dialect.name == "postgresql":
        # Two set-based UPDATEs over arrays: psycopg's executemany sends (and the server plans)
        # one statement per merge. Equivalent to the per-merge form because every source is a
        # distinct root and `final_root` is already where each tree ends up.
        src = pg_array([m.source for m in stored_sources])
        dst = pg_array([m.target for m in stored_sources])
        root = pg_array([final_root.get(m.target, m.target) for m in stored_sources])
        session.execute(_POINT_PG, {"workspace_id": workspace_id, "src": src, "dst": dst})
        session.execute(_REROOT_PG, {"workspace_id": workspace_id, "src": src, "dst": root})
    elif stored_sources:
        session.execute(
            update(table)
            .where(table.c.workspace_id == workspace_id, table.c.id == bindparam("src"))
            .values(merged_into_id=bindparam("dst")),
            [{"src": m.source, "dst": m.target} for m in stored_sources],
        )
        session.execute(
            update(table)
            .where(table.c.workspace_id == workspace_id, table.c.canonical_id == bindparam("src"))
            .values(canonical_id=bindparam("dst")),
            [{"src": m.source, "dst": final_root.get(m.target, m.target)} for m in stored_sources],
        )
    # COPY / a driver executemany (new rows only): the ORM insert rendered eight parameters a
    # merge, ~5,000 merges per 50,000 imported messages.
    bulk_insert(
        session,
        MERGE_LOG,
        [
            {
                "workspace_id": workspace_id,
                "action": "merge",
                "source_profile_id": m.source,
                "target_profile_id": m.target,
                "reason": m.reason[:500],
                "actor": m.actor,
                "undoes_id": None,
                "created_at": now,
            }
            for m in merges
        ],
    )
    changes.append(
        session,
        workspace_id,
        [NewChange("merge", final_root.get(m.target, m.target), data={"source": m.source}) for m in merges],
        now,
    )


def _tree_ids(session: Session, workspace_id: str, root: str) -> list[str]:
    return [n.id for n in profiles.tree(session, workspace_id, root)]


def _blocked(session: Session, workspace_id: str, root_a: str, root_b: str) -> bool:
    a, b = _tree_ids(session, workspace_id, root_a), _tree_ids(session, workspace_id, root_b)
    hit = session.scalar(
        select(func.count())
        .select_from(MergeReview)
        .where(
            MergeReview.workspace_id == workspace_id,
            MergeReview.status == "rejected",
            or_(
                MergeReview.profile_a_id.in_(a) & MergeReview.profile_b_id.in_(b),
                MergeReview.profile_a_id.in_(b) & MergeReview.profile_b_id.in_(a),
            ),
        )
    )
    return bool(hit)


def _ask_review(graph: _Graph, node_a: str, node_b: str, reason: str) -> None:
    graph.flush()
    session, ws = graph.session, graph.workspace_id
    a, b = _tree_ids(session, ws, graph.root[node_a]), _tree_ids(session, ws, graph.root[node_b])
    asked = session.scalar(
        select(func.count())
        .select_from(MergeReview)
        .where(
            MergeReview.workspace_id == ws,
            or_(
                MergeReview.profile_a_id.in_(a) & MergeReview.profile_b_id.in_(b),
                MergeReview.profile_a_id.in_(b) & MergeReview.profile_b_id.in_(a),
            ),
        )
    )
    if asked:
        return
    first, second = sorted((node_a, node_b))
    session.add(
        MergeReview(
            workspace_id=ws,
            profile_a_id=first,
            profile_b_id=second,
            reason=reason[:500],
            status="pending",
            created_at=graph.now,
        )
    )
    session.flush()
    graph.stats.reviews += 1


# ---- reads -----------------------------------------------------------------------------


def find_root(session: Session, workspace_id: str, pair: Pair) -> str | None:
    node = session.scalar(
        select(Identifier.profile_id).where(
            Identifier.workspace_id == workspace_id, Identifier.type == pair[0], Identifier.value == pair[1]
        )
    )
    if node is None:
        return None
    found = profiles.nodes(session, workspace_id, [node])
    return found[node].canonical_id if node in found else None


def _root_for_user(session: Session, workspace_id: str, user_id: str) -> str:
    root = find_root(session, workspace_id, (ids.USER_ID, user_id.strip()))
    if root is None:
        raise NotFoundError(f"no profile with user_id {user_id!r} in this workspace")
    return root


def profile_document(db: Database, workspace_id: str, user_id: str) -> ProfileDocument:
    with db.session() as session:
        return _document(session, workspace_id, _root_for_user(session, workspace_id, user_id))


def _document(session: Session, workspace_id: str, root: str) -> ProfileDocument:
    found = _documents(session, workspace_id, [root])
    if not found:
        raise NotFoundError(f"profile {root} does not exist")
    return found[0]


def _documents(session: Session, workspace_id: str, roots: Sequence[str]) -> list[ProfileDocument]:
    """Documents of several people in the order given, in three queries whatever their number
    (per 2,000 people): their trees, their read models, their identifiers."""
    members = profiles.trees(session, workspace_id, roots)
    found = profiles.states(session, workspace_id, roots)
    owner = {node.id: root for root, nodes in members.items() for node in nodes}
    identifiers: dict[str, list[IdentifierInfo]] = {root: [] for root in members}
    node_ids = list(owner)
    for start in range(0, len(node_ids), _CHUNK):
        rows = session.execute(
            select(Identifier.profile_id, Identifier.type, Identifier.value)
            .where(Identifier.workspace_id == workspace_id, Identifier.profile_id.in_(node_ids[start : start + _CHUNK]))
            .order_by(Identifier.id)
        )
        for node, kind, value in rows:
            identifiers[owner[node]].append(IdentifierInfo(kind, value))
    consents = consent.states(session, workspace_id, {root: [n.id for n in nodes] for root, nodes in members.items()})
    docs: list[ProfileDocument] = []
    for root in roots:
        state, nodes = found.get(root), members.get(root, [])
        if state is None:
            continue
        by_id = {n.id: n for n in nodes}
        own = by_id[root].user_id if root in by_id else None
        docs.append(
            ProfileDocument(
                id=root,
                user_id=own or next((n.user_id for n in nodes if n.user_id), None),
                traits=state.traits,
                identifiers=identifiers.get(root, []),
                consent={channel: state.to_dict() for channel, state in consents[root].items()},
                first_seen=state.first_seen,
                last_seen=state.last_seen,
                event_counts=state.event_counts,
                profile_ids=[n.id for n in nodes],
                signals=state.signals,
            )
        )
    return docs


def person(session: Session, workspace_id: str, node_id: str) -> ProfileDocument | None:
    """The document of the person a node belongs to today (merges move nodes under roots)."""
    roots = profiles.current_roots(session, workspace_id, [node_id])
    return _documents(session, workspace_id, roots)[0] if roots else None


def people(session: Session, workspace_id: str, node_ids: Sequence[str]) -> dict[str, ProfileDocument]:
    """`person` for many nodes at once: each node's person today, in a few queries."""
    found = profiles.nodes(session, workspace_id, node_ids)
    roots = sorted({node.canonical_id for node in found.values()})
    docs = {doc.id: doc for doc in _documents(session, workspace_id, roots)}
    return {nid: docs[node.canonical_id] for nid, node in found.items() if node.canonical_id in docs}


def list_profile_documents(
    db: Database, workspace_id: str, *, limit: int, after: tuple[datetime, str] | None = None
) -> list[ProfileDocument]:
    with db.session() as session:
        roots = profiles.list_roots(session, workspace_id, limit=limit, after=after)
        return _documents(session, workspace_id, roots)


def list_band_documents(
    db: Database, workspace_id: str, band: str, *, limit: int, after: tuple[int, str] | None = None
) -> list[ProfileDocument]:
    """One at-risk band's people, highest score first: the manager's call list."""
    with db.session() as session:
        found = profiles.list_band(session, workspace_id, band, limit=limit, after=after)
        return _documents(session, workspace_id, [root for root, _ in found])


def profile_events(
    db: Database,
    workspace_id: str,
    user_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> list[StoredEvent]:
    with db.session() as session:
        root = _root_for_user(session, workspace_id, user_id)
        members = _tree_ids(session, workspace_id, root)
        return events.list_events(session, workspace_id, members, since=since, until=until, limit=limit)


def merge_log(db: Database, workspace_id: str, limit: int = 100) -> list[MergeInfo]:
    with db.session() as session:
        rows = session.scalars(
            select(MergeLogEntry)
            .where(MergeLogEntry.workspace_id == workspace_id)
            .order_by(MergeLogEntry.id.desc())
            .limit(limit)
        )
        return [
            MergeInfo(
                r.id, r.action, r.source_profile_id, r.target_profile_id, r.reason, r.actor, r.undoes_id, r.created_at
            )
            for r in rows
        ]


def reviews(db: Database, workspace_id: str, status: str | None = "pending") -> list[ReviewInfo]:
    with db.session() as session:
        stmt = select(MergeReview).where(MergeReview.workspace_id == workspace_id)
        if status:
            stmt = stmt.where(MergeReview.status == status)
        rows = list(session.scalars(stmt.order_by(MergeReview.id)))
        users = _node_users(session, workspace_id, [r.profile_a_id for r in rows] + [r.profile_b_id for r in rows])
        return [
            ReviewInfo(
                r.id,
                r.profile_a_id,
                r.profile_b_id,
                users.get(r.profile_a_id),
                users.get(r.profile_b_id),
                r.reason,
                r.status,
                r.created_at,
                r.decided_at,
            )
            for r in rows
        ]


def _node_users(session: Session, workspace_id: str, node_ids: Iterable[str]) -> dict[str, str]:
    found = profiles.nodes(session, workspace_id, node_ids)
    roots = profiles.tree_user_ids(session, workspace_id, {n.canonical_id for n in found.values()})
    return {n.id: uid for n in found.values() if (uid := n.user_id or roots.get(n.canonical_id))}


# ---- decisions by a person -------------------------------------------------------------


def decide_review(db: Database, workspace_id: str, review_id: int, accept: bool, now: datetime) -> ReviewInfo:
    with db.transaction() as session:
        _lock_workspace(session, workspace_id)
        review = session.scalar(
            select(MergeReview).where(MergeReview.workspace_id == workspace_id, MergeReview.id == review_id)
        )
        if review is None:
            raise NotFoundError(f"no merge review {review_id} in this workspace")
        if review.status != "pending":
            raise ConflictError(f"merge review {review_id} was already {review.status}")
        review.status = "accepted" if accept else "rejected"
        review.decided_at = now
        if accept:
            found = profiles.nodes(session, workspace_id, [review.profile_a_id, review.profile_b_id])
            root_a, root_b = (found[n].canonical_id for n in (review.profile_a_id, review.profile_b_id))
            if root_a != root_b:
                target, source = sorted((root_a, root_b))  # older id (time-ordered) keeps its root
                merge = _MergeWrite(source, target, f"review {review_id}: {review.reason}", "review")
                _write_merges(session, workspace_id, [merge], now, {target: target}, [merge])
                profiles.recompute(session, workspace_id, [target], now)
        session.flush()
    return next(r for r in reviews(db, workspace_id, status=None) if r.id == review_id)


def unmerge(db: Database, workspace_id: str, merge_id: int, now: datetime) -> MergeInfo:
    """Undo one merge: the source subtree becomes a person of its own again, takes its
    identifiers and events with it, and the pair is never auto-merged again."""
    with db.transaction() as session:
        _lock_workspace(session, workspace_id)
        entry = session.scalar(
            select(MergeLogEntry).where(MergeLogEntry.workspace_id == workspace_id, MergeLogEntry.id == merge_id)
        )
        if entry is None or entry.action != "merge":
            raise NotFoundError(f"no merge {merge_id} in this workspace's merge log")
        undone = session.scalar(
            select(MergeLogEntry.id).where(
                MergeLogEntry.workspace_id == workspace_id, MergeLogEntry.undoes_id == merge_id
            )
        )
        if undone is not None:
            raise ConflictError(f"merge {merge_id} was already undone (log entry {undone})")
        old_root, new_root = profiles.detach(session, workspace_id, entry.source_profile_id)
        log = MergeLogEntry(
            workspace_id=workspace_id,
            action="unmerge",
            source_profile_id=entry.source_profile_id,
            target_profile_id=entry.target_profile_id,
            reason=f"undo of merge {merge_id}",
            actor="cli",
            undoes_id=merge_id,
            created_at=now,
        )
        session.add(log)
        _remember_rejection(session, workspace_id, entry.source_profile_id, entry.target_profile_id, now, merge_id)
        profiles.recompute(session, workspace_id, [old_root, new_root], now)
        session.flush()
        changes.append(
            session,
            workspace_id,
            [NewChange("unmerge", root, ref=str(log.id), data={"undoes": merge_id}) for root in (old_root, new_root)],
            now,
        )
        return MergeInfo(
            log.id,
            log.action,
            log.source_profile_id,
            log.target_profile_id,
            log.reason,
            log.actor,
            log.undoes_id,
            log.created_at,
        )


def _remember_rejection(session: Session, workspace_id: str, a: str, b: str, now: datetime, merge_id: int) -> None:
    first, second = sorted((a, b))
    existing = session.scalar(
        select(MergeReview).where(
            MergeReview.workspace_id == workspace_id,
            MergeReview.profile_a_id == first,
            MergeReview.profile_b_id == second,
        )
    )
    if existing is not None:
        session.execute(
            update(MergeReview).where(MergeReview.id == existing.id).values(status="rejected", decided_at=now)
        )
        return
    session.add(
        MergeReview(
            workspace_id=workspace_id,
            profile_a_id=first,
            profile_b_id=second,
            reason=f"unmerged (merge {merge_id})",
            status="rejected",
            created_at=now,
            decided_at=now,
        )
    )


def _lock_workspace(session: Session, workspace_id: str) -> None:
    """Serialize identity writes per workspace on PostgreSQL (SQLite has one writer anyway)."""
    advisory_xact_lock(session, workspace_id)


lock_workspace = _lock_workspace


# ---- consent -----------------------------------------------------------------------------


def change_consent(
    db: Database,
    workspace_id: str,
    user_id: str,
    channel: str,
    status: str,
    *,
    source: str,
    now: datetime,
    purpose: str = "all",
    evidence: dict[str, Any] | None = None,
) -> ProfileDocument:
    """Record a consent change for a person found by user_id (CLI, admin API)."""
    with db.transaction() as session:
        root = _root_for_user(session, workspace_id, user_id)
        consent.record(
            session,
            workspace_id,
            root,
            channel,
            status,
            source=source,
            at=now,
            now=now,
            purpose=purpose,
            evidence=evidence,
        )
    return profile_document(db, workspace_id, user_id)


def consent_history(db: Database, workspace_id: str, user_id: str) -> list[ConsentRecord]:
    with db.session() as session:
        root = _root_for_user(session, workspace_id, user_id)
        return consent.history(session, workspace_id, _tree_ids(session, workspace_id, root))
