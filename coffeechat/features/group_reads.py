"""Read counts of group messages (an extension of groups): pushed to their senders as they
change, coalesced, across nodes.

A sender asks how many members have read one of their group messages (0x051C) and is told again
(0x051E) whenever that count changes, for ``ttl`` seconds after asking.  Reads are many and
notifies must not be: a read that passes a watched message only marks it dirty; once per
``interval`` the dirty ones are counted again (one query each) and a notify goes out for those
whose count changed.  So a message read by 2000 members in one second costs its sender one
frame, not 2000.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IGroupStore
from coffeechat.model import GroupChange, Message, Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.router import Router
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session
from coffeechat.timing import TimingWheel

log = Logger()

WATCH_TTL = 600.0
MAX_WATCHES_PER_USER = 100
READS_INTERVAL = 1.0  # how often reads made here are told to other nodes (coalesced)

_GROUP = int(SessionType.GROUP)


@dataclass(slots=True)
class ReadCountPush(Push):
    """GROUP_READ_COUNT_NOTIFY: how many members (the sender excepted) have read a group message,
    out of how many."""

    group_id: int
    seq: int
    read_count: int
    member_count: int


def read_count_notify(push: ReadCountPush) -> pb.CIMGroupReadCountNotify:
    return pb.CIMGroupReadCountNotify(
        group_id=push.group_id, msg_id=push.seq, read_count=push.read_count, member_count=push.member_count
    )


class _Watch:
    __slots__ = ("sender_id", "group_id", "seq", "counts", "expires_at")

    def __init__(self, sender_id: int, group_id: int, seq: int, counts: tuple[int, int], expires_at: float) -> None:
        self.sender_id = sender_id
        self.group_id = group_id
        self.seq = seq
        self.counts = counts
        self.expires_at = expires_at


class GroupReadCounter:
    """Watches (group, seq) pairs for their senders; see the module docstring."""

    def __init__(
        self,
        store: IGroupStore,
        router: Router,
        wheel: TimingWheel,
        clock: IReactorTime,
        interval: float = 1.0,
        ttl: float = WATCH_TTL,
        max_per_user: int = MAX_WATCHES_PER_USER,
        on_read: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.wheel = wheel
        self.clock = clock
        self.interval = interval
        self.ttl = ttl
        self.max_per_user = max_per_user
        self._watches: dict[int, dict[int, _Watch]] = {}  # group -> seq -> watch
        self._by_user: dict[int, OrderedDict[tuple[int, int], None]] = {}  # oldest first
        self._dirty: set[tuple[int, int]] = set()
        self._armed = False
        self.on_read = on_read  # reads made here (the feature tells the other nodes)
        self.notifies = 0  # pushes sent, for tests and metrics

    async def watch(self, sender_id: int, group_id: int, seq: int) -> tuple[int, int]:
        """Count now (``(read, members)``) and keep the sender told of changes for ``ttl``."""
        counts = tuple(await self.store.group_read_count(group_id, seq, sender_id))
        expires_at = self.clock.seconds() + self.ttl
        per_group = self._watches.setdefault(group_id, {})
        watch = per_group.get(seq)
        if watch is None:
            per_group[seq] = _Watch(sender_id, group_id, seq, counts, expires_at)
        else:
            watch.counts = counts
            watch.expires_at = expires_at
        mine = self._by_user.setdefault(sender_id, OrderedDict())
        mine[(group_id, seq)] = None
        mine.move_to_end((group_id, seq))
        while len(mine) > self.max_per_user:
            self._drop(*next(iter(mine)))
        return counts

    def _drop(self, group_id: int, seq: int) -> None:
        per_group = self._watches.get(group_id)
        watch = None if per_group is None else per_group.pop(seq, None)
        if watch is None:
            return
        if not per_group:
            del self._watches[group_id]
        self._dirty.discard((group_id, seq))
        mine = self._by_user.get(watch.sender_id)
        if mine is not None:
            mine.pop((group_id, seq), None)
            if not mine:
                del self._by_user[watch.sender_id]

    def __len__(self) -> int:
        return sum(len(w) for w in self._watches.values())

    def read_moved(self, group_id: int, reader_id: int, before: int, after: int) -> None:
        """A member's read position in a group went from ``before`` to ``after`` (``before`` 0
        when unknown: a member who sends a message has read everything before it).  Counts
        already complete (everyone read) cannot grow: they are not counted again."""
        if self.on_read is not None:
            self.on_read(group_id, before, after)
        self._mark(group_id, reader_id, before, after)

    def read_moved_elsewhere(self, group_id: int, before: int, after: int) -> None:
        """Members read the group on other nodes (coalesced: readers unknown)."""
        self._mark(group_id, 0, before, after)

    def _mark(self, group_id: int, reader_id: int, before: int, after: int) -> None:
        per_group = self._watches.get(group_id)
        if not per_group:
            return
        for seq, watch in per_group.items():
            if before < seq <= after and watch.sender_id != reader_id and watch.counts[0] < watch.counts[1]:
                self._dirty.add((group_id, seq))
        self._arm()

    def members_changed(self, group_id: int) -> None:
        """Members came or went: every watched count of the group may have changed."""
        for seq in self._watches.get(group_id, ()):
            self._dirty.add((group_id, seq))
        self._arm()

    def _arm(self) -> None:
        if self._dirty and not self._armed:
            self._armed = True
            self.wheel.schedule(self.clock.seconds() + self.interval, self._flush)

    def _flush(self, now: float) -> None:
        self._armed = False
        dirty, self._dirty = self._dirty, set()
        for group_id, seq in dirty:
            watch = self._watches.get(group_id, {}).get(seq)
            if watch is None:
                continue
            if watch.expires_at <= now:
                self._drop(group_id, seq)
                continue
            d = self.store.group_read_count(group_id, seq, watch.sender_id)
            d.addCallbacks(self._counted, self._failed, callbackArgs=(watch,))

    def _counted(self, counts: tuple[int, int], watch: _Watch) -> None:
        counts = tuple(counts)
        if counts == watch.counts:
            return
        watch.counts = counts
        self.notifies += 1
        self.router.push(watch.sender_id, ReadCountPush(watch.group_id, watch.seq, *counts))

    def _failed(self, failure: Failure) -> None:
        log.failure("counting group reads failed", failure)


class ReadsElsewhere:
    """Reads made on this node, told to the other nodes once a second per group (a span of seqs),
    so that their watched counts follow."""

    def __init__(self, api: ModuleAPI) -> None:
        self.api = api
        self._reads: dict[int, list[int]] = {}

    def read_moved(self, group_id: int, before: int, after: int) -> None:
        span = self._reads.get(group_id)
        if span is None:
            self._reads[group_id] = [before, after]
        else:
            span[0] = min(span[0], before)
            span[1] = max(span[1], after)

    def send(self) -> None:
        if self._reads:
            reads, self._reads = self._reads, {}
            self.api.broadcast("group-reads", {"r": [[group_id, b, a] for group_id, (b, a) in reads.items()]})


def setup(api: ModuleAPI) -> GroupReadCounter:
    """The read count command (0x051C), its notify, and the hooks that keep counts current."""
    groups = api.depends("groups")
    elsewhere = ReadsElsewhere(api)
    counter = GroupReadCounter(api.store, api.router, api.wheel, api.clock, on_read=elsewhere.read_moved)
    api.push_kind(ReadCountPush, name="read_count", cmd=Cmd.GROUP_READ_COUNT_NOTIFY, encode=read_count_notify)

    def stored(message: Message, sender: User, device: object) -> None:
        if message.session_type == _GROUP:  # the sender has read everything before it
            counter.read_moved(message.to_id, sender.user_id, 0, message.seq - 1)

    def changed(change: GroupChange) -> None:
        if change.added or change.removed:
            counter.members_changed(change.group.group_id)

    def reads_elsewhere(data: dict, sender: str) -> None:
        for group_id, before, after in data["r"]:
            counter.read_moved_elsewhere(int(group_id), int(before), int(after))

    api.hook("group/read", counter.read_moved)
    api.hook("message/stored", stored)
    api.hook("group/changed", changed)
    api.cluster_command("group-reads", reads_elsewhere)
    api.periodic(READS_INTERVAL, elsewhere.send)

    @api.request(Cmd.GROUP_READ_COUNT_REQ)
    async def read_count(session: Session, req: pb.CIMGroupReadCountReq) -> pb.CIMGroupReadCountRsp:
        """``(read, members)`` for one of the user's own group messages, and from now on a coalesced
        notify whenever it changes."""
        state, member = await groups.member(session.user_id, req.group_id)
        seq = req.msg_id
        found = await api.store.messages_by_seq(state.group.conv, [seq]) if seq >= member.joined_seq else []
        if not found:
            raise ChatError(ErrorCode.NOT_FOUND, f"no message {seq} in this group")
        if found[0].sender_id != session.user_id:
            raise ChatError(ErrorCode.FORBIDDEN, "only the sender of a message may ask who read it")
        read, members = await counter.watch(session.user_id, req.group_id, seq)
        return pb.CIMGroupReadCountRsp(
            user_id=session.user_id,
            group_id=req.group_id,
            result_code=int(ErrorCode.SUCCESS),
            msg_id=seq,
            read_count=read,
            member_count=members,
        )

    return counter
