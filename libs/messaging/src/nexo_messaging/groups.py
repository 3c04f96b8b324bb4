"""Consumer groups coordinated inside one process, with the semantics of Kafka's coordinator.

Shared by the in-memory broker (:mod:`nexo_messaging.memory`) and the durable local event log
(:mod:`nexo_messaging.locallog`): each is a :class:`GroupCoordinator`, each of their consumers a
:class:`GroupMember`.

* range assignment: a topic's partitions are spread over the members subscribed to it, in
  member-id order;
* eager rebalance: a join, a leave or a new subscribed topic starts a generation in which
  every member holding partitions first revokes them (its listener's
  ``on_partitions_revoked``); the new assignment takes effect once all have;
* a commit is refused (``CommitFailed``) unless the member holds those partitions in the
  current generation;
* a member starts each assigned partition at the group's committed offset (0 when none), so
  what was not committed is delivered again.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nexo_messaging.errors import CommitFailed
from nexo_messaging.transport import TP, Consumer, RebalanceListener


@dataclass
class Group:
    members: list[AnyMember] = field(default_factory=list)
    generation: int = 0
    committed: dict[TP, int] | None = None
    """Committed offsets; None until read from where they are stored (the local log's file)."""
    assignments: dict[int, set[TP]] = field(default_factory=dict)  # member id -> partitions
    pending_revoke: set[int] = field(default_factory=set)


class GroupCoordinator(abc.ABC):
    """The groups of one broker (or log) and their assignments."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self._member_ids = itertools.count(1)

    @abc.abstractmethod
    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (what assignment spreads)."""

    def new_group(self) -> Group:
        """A group seen for the first time (committed offsets known: none)."""
        return Group(committed={})

    def next_member_id(self) -> int:
        return next(self._member_ids)

    def rebalance(self, group: Group) -> None:
        """Start an eager rebalance: members revoke everything, then get new assignments."""
        group.generation += 1
        group.pending_revoke = {
            m.member_id for m in group.members if group.assignments.get(m.member_id)
        }
        for m in group.members:
            m.needs_rebalance = True
        if not group.pending_revoke:
            self.assign(group)

    def rebalance_subscribers(self, topics: Set[str]) -> None:
        """New ``topics`` exist: rebalance every group with a member subscribed to one."""
        for group in self.groups.values():
            if any(not topics.isdisjoint(m.topics) for m in group.members):
                self.rebalance(group)

    def assign(self, group: Group) -> None:
        members = sorted(group.members, key=lambda m: m.member_id)
        group.assignments = {m.member_id: set() for m in members}
        if not members:
            return
        topics = sorted({t for m in members for t in m.topics})
        for topic in topics:
            subscribers = [m for m in members if topic in m.topics]
            n = self.partition_count(topic)
            for p in range(n):
                owner = subscribers[p * len(subscribers) // n]
                group.assignments[owner.member_id].add(TP(topic, p))

    def join(self, group_id: str, member: AnyMember) -> None:
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = self.new_group()
        group.members.append(member)
        self.rebalance(group)

    def leave(self, group_id: str, member: AnyMember) -> None:
        group = self.groups.get(group_id)
        if group is None or member not in group.members:
            return
        group.members.remove(member)
        group.assignments.pop(member.member_id, None)
        group.pending_revoke.discard(member.member_id)
        self.rebalance(group)

    def revoked(self, group_id: str, member: AnyMember) -> None:
        group = self.groups[group_id]
        group.assignments[member.member_id] = set()
        group.pending_revoke.discard(member.member_id)
        if not group.pending_revoke:
            self.assign(group)

    def check_commit(self, group_id: str, member: AnyMember, offsets: Mapping[TP, int]) -> Group:
        """The member's group, if ``member`` may commit ``offsets`` now; else ``CommitFailed``."""
        group = self.groups.get(group_id)
        if group is None or member not in group.members:
            raise CommitFailed("member is not in the group")
        owned = group.assignments.get(member.member_id, set())
        if member.generation != group.generation or not set(offsets) <= owned:
            raise CommitFailed("partitions not assigned to this member (rebalance)")
        return group


C = TypeVar("C", bound=GroupCoordinator)


class GroupMember(Consumer, Generic[C]):
    """A consumer in a :class:`GroupCoordinator`'s group: its assignment and positions."""

    def __init__(
        self,
        coordinator: C,
        group_id: str,
        topics: Sequence[str],
        listener: RebalanceListener | None,
    ) -> None:
        self.coordinator = coordinator
        self.group_id = group_id
        self.topics = tuple(topics)
        self.listener = listener
        self.member_id = coordinator.next_member_id()
        self.generation = -1
        self.needs_rebalance = True
        self.assigned: set[TP] = set()
        self.positions: dict[TP, int] = {}  # next offset to read per assigned partition
        self.started = False

    async def stored_offsets(self) -> dict[TP, int]:
        """The group's committed offsets where a coordinator keeps them outside memory."""
        return {}

    async def sync_group(self) -> None:
        """Take part in a pending rebalance: revoke (listener first), then take the new
        assignment once every member has revoked, starting at the committed offsets."""
        group = self.coordinator.groups[self.group_id]
        if group.committed is None:
            group.committed = await self.stored_offsets()
        if self.needs_rebalance:
            if self.assigned and self.listener is not None:
                await self.listener.on_partitions_revoked(set(self.assigned))
            self.assigned = set()
            self.positions = {}
            self.needs_rebalance = False
            self.coordinator.revoked(self.group_id, self)
        if self.generation != group.generation and not group.pending_revoke:
            self.generation = group.generation
            self.assigned = set(group.assignments.get(self.member_id, set()))
            committed = group.committed or {}
            self.positions = {tp: committed.get(tp, 0) for tp in self.assigned}
            if self.listener is not None:
                await self.listener.on_partitions_assigned(set(self.assigned))

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def seek(self, tp: TP, offset: int) -> None:
        if tp in self.assigned:
            self.positions[tp] = offset

    def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)


AnyMember = GroupMember[Any]
