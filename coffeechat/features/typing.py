"""Typing indicators: "Alice is typing…" in 1:1 chats and groups, across nodes.

Ephemeral: nothing is stored.  A device sends MSG_TYPING_REQ (0x030E) while its user types;
the others in the conversation get MSG_TYPING_NOTIFY (0x030F) at most once per ``interval``
seconds per typer and conversation, however often the device sends it, and show it for ``ttl``
seconds, until a message from the typer arrives, or until a notify with ``typing`` false (sent
only when a "typing" went out and has not expired).  Groups larger than ``max_group_members`` get
none: a hundred people typing would be noise, and a frame per member per keystroke.

This module is the example of docs/extending.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.model import Message, Push, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session

MAX_TRACKED = 100_000  # (typer, conversation) pairs remembered at once: bounded memory


@dataclass
class Config:
    """[typing]: how often a typer's notice goes out, how long it shows, and up to which group size."""

    interval: float = 3.0
    ttl: float = 6.0
    max_group_members: int = 100

    def validate(self) -> None:
        if self.interval <= 0 or self.ttl < self.interval:
            raise ConfigError("typing.interval must be positive and typing.ttl at least typing.interval")
        if self.max_group_members < 0:
            raise ConfigError("typing.max_group_members must be >= 0 (0: no typing notices in groups)")


@dataclass(slots=True)
class TypingPush(Push):
    """``user_id`` is typing (or stopped) in the conversation the recipient files as ``session_id``."""

    user_id: int
    session_type: int
    session_id: int
    typing: bool
    ttl: int


def typing_notify(push: TypingPush) -> pb.CIMTypingNotify:
    return pb.CIMTypingNotify(
        user_id=push.user_id,
        session_type=push.session_type,
        session_id=push.session_id,
        typing=push.typing,
        ttl=push.ttl,
    )


class Typing:
    """Relays and coalesces typing notices (see the module docstring)."""

    def __init__(self, api: ModuleAPI, messages: object, config: Config) -> None:
        self.api = api
        self.messages = messages
        self.config = config
        self.clock = api.clock
        # (typer, conv) -> (when the last "typing" went out, session type, session id, audience)
        self._active: dict[tuple[int, str], tuple[float, int, int, tuple[int, ...]]] = {}
        self.relayed = 0  # notices pushed (per conversation, not per device), for tests and metrics

    async def typed(self, user: User, session_type: int, session_id: int, typing: bool) -> None:
        where = await self.messages.locate(user.user_id, session_type, session_id)
        key = (user.user_id, where.conv)
        now = self.clock.seconds()
        if not typing:
            active = self._active.pop(key, None)
            if active is not None and now - active[0] < self.config.ttl:
                self._relay(user.user_id, session_type, session_id, active[3], False)
            return
        active = self._active.get(key)
        if active is not None and now - active[0] < self.config.interval:
            return  # coalesced: the others were told moments ago
        if session_type == SessionType.SINGLE:
            if not await self.messages.users.exists(session_id):
                raise ChatError(ErrorCode.USER_NOT_EXIST, f"no user {session_id}")
        elif len(where.members) > self.config.max_group_members:
            raise ChatError(
                ErrorCode.NOT_SUPPORTED,
                f"typing notices go to groups of at most {self.config.max_group_members} members",
            )
        audience = tuple(m for m in where.members if m != user.user_id)
        if key not in self._active and len(self._active) >= MAX_TRACKED:
            self.sweep()
            if len(self._active) >= MAX_TRACKED:
                del self._active[next(iter(self._active))]
        self._active[key] = (now, session_type, session_id, audience)
        self._relay(user.user_id, session_type, session_id, audience, True)

    def _relay(self, user_id: int, session_type: int, session_id: int, audience: tuple[int, ...], typing: bool) -> None:
        # The recipients of a 1:1 notice file the conversation under the typer.
        filed_as = user_id if session_type == SessionType.SINGLE else session_id
        push = TypingPush(user_id, session_type, filed_as, typing, int(round(self.config.ttl)))
        self.messages.fan_out(push, audience)
        self.relayed += 1

    def message_stored(self, message: Message, sender: User, device: object) -> None:
        """A message from the typer ends its typing there (receivers clear it when it arrives)."""
        if self._active:
            self._active.pop((sender.user_id, message.conv), None)

    def sweep(self) -> None:
        """Forget notices that have expired."""
        cutoff = self.clock.seconds() - self.config.ttl
        self._active = {k: v for k, v in self._active.items() if v[0] >= cutoff}

    def __len__(self) -> int:
        return len(self._active)


def setup(api: ModuleAPI) -> Typing:
    """MSG_TYPING_REQ in, MSG_TYPING_NOTIFY out; the typer's messages end its typing."""
    config: Config = api.config
    typing = Typing(api, api.depends("messages"), config)
    api.push_kind(TypingPush, name="typing", cmd=Cmd.MSG_TYPING_NOTIFY, encode=typing_notify)
    api.hook("message/stored", typing.message_stored)
    api.periodic(config.ttl, typing.sweep)

    @api.request(Cmd.MSG_TYPING_REQ)
    async def typed(session: Session, req: pb.CIMTypingReq) -> None:
        """No answer on success (a keystroke wants none); a refusal is answered."""
        await typing.typed(session.user, req.session_type, req.session_id, req.typing)

    return typing
