"""Groups, driven frame by frame on a memory reactor: permissions, limits, notifications, unread
counts, history visibility, mentions, read counts, resends and a message racing a kick."""

from __future__ import annotations

import json
import uuid

import pytest

from coffeechat.errors import ErrorCode
from coffeechat.model import GroupRole
from coffeechat.schema import RESPONSE_OF, Cmd, pb

from .memory_node import MemoryNode

OK = 200
ADD = pb.kCIM_GROUP_MEMBER_CHANGED_TYPE_ADD
DEL = pb.kCIM_GROUP_MEMBER_CHANGED_TYPE_DEL
ROLE = pb.kCIM_GROUP_MEMBER_CHANGED_TYPE_DEFAULT
NOTIFICATION = pb.kCIM_MSG_TYPE_NOTIFACATION


class Device:
    """One logged-in connection that keeps whatever is not the answer it waits for."""

    def __init__(self, node: MemoryNode, name: str) -> None:
        self.node = node
        self.conn = node.connect()
        self.conn.login(name)
        self.user_id = self.conn.user_id
        self.inbox: list[tuple[int, int, object]] = []

    def _frames(self) -> list[tuple[int, int, object]]:
        frames = self.conn.frames()
        for cmd, seq, msg in frames:
            if cmd == Cmd.MSG_DATA:  # a real client acknowledges every delivery
                ack = pb.CIMMsgDataAck(
                    client_msg_id=msg.client_msg_id,
                    server_msg_id=msg.server_msg_id,
                    session_type=msg.session_type,
                    from_user_id=msg.from_user_id,
                    to_session_id=msg.to_session_id,
                )
                self.conn.send(Cmd.MSG_DATA_ACK, ack, seq=seq)
        return frames

    def call(self, cmd: int, msg) -> object:
        """Send a request and return its answer (its own response type or ERROR_RSP)."""
        seq = self.conn.send(cmd, msg)
        answer = None
        for frame in self._frames():
            if answer is None and frame[1] == seq and frame[0] in (RESPONSE_OF[cmd], Cmd.ERROR_RSP):
                answer = frame
            else:
                self.inbox.append(frame)
        assert answer is not None, f"no answer to 0x{cmd:04x}"
        return answer[2]

    def pushes(self, cmd: int | None = None) -> list:
        """Take the pushes received so far (of command ``cmd``)."""
        self.inbox.extend(self._frames())
        taken = [f for f in self.inbox if cmd is None or f[0] == cmd]
        self.inbox = [f for f in self.inbox if f not in taken]
        return [msg for _, _, msg in taken]

    def send(self, group_id: int, text: str = "hi", client_msg_id: str | None = None, **fields) -> pb.CIMMsgDataAck:
        msg = pb.CIMMsgData(
            to_session_id=group_id,
            client_msg_id=client_msg_id or str(uuid.uuid4()),
            msg_type=1,
            session_type=2,
            msg_data=text.encode(),
            **fields,
        )
        return self.call(Cmd.MSG_DATA, msg)

    # group commands

    def create(self, members: list[int], name: str = "", **fields) -> pb.CIMGroupCreateRsp:
        return self.call(
            Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name=name, member_id_list=members, **fields)
        )

    def invite(self, group_id: int, members: list[int]) -> pb.CIMGroupInviteMemberRsp:
        return self.call(
            Cmd.GROUP_INVITE_MEMBER_REQ, pb.CIMGroupInviteMemberReq(group_id=group_id, member_id_list=members)
        )

    def kick(self, group_id: int, members: list[int]) -> pb.CIMGroupKickOutMemberRsp:
        return self.call(
            Cmd.GROUP_KICK_OUT_MEMBER_REQ, pb.CIMGroupKickOutMemberReq(group_id=group_id, member_id_list=members)
        )

    def exit(self, group_id: int) -> pb.CIMGroupExitRsp:
        return self.call(Cmd.GROUP_EXIT_REQ, pb.CIMGroupExitReq(group_id=group_id))

    def dismiss(self, group_id: int) -> pb.CIMGroupDisbandingRsp:
        return self.call(Cmd.GROUP_DISBINGDING_REQ, pb.CIMGroupDisbandingReq(group_id=group_id))

    def members(self, group_id: int) -> pb.CIMGroupMemberListRsp:
        return self.call(Cmd.GROUP_LIST_MEMBER_REQ, pb.CIMGroupMemberListReq(group_id=group_id))

    def groups(self) -> pb.CIMGroupListRsp:
        return self.call(Cmd.GROUP_LIST_REQ, pb.CIMGroupListReq())

    def info(self, versions: list[tuple[int, int]]) -> pb.CIMGroupInfoRsp:
        req = pb.CIMGroupInfoReq(
            group_version_list=[pb.CIMGroupVersionInfo(group_id=g, group_version=v) for g, v in versions]
        )
        return self.call(Cmd.GROUP_INFO_REQ, req)

    def update(self, group_id: int, **fields) -> pb.CIMGroupUpdateRsp:
        return self.call(Cmd.GROUP_UPDATE_REQ, pb.CIMGroupUpdateReq(group_id=group_id, **fields))

    def set_admin(self, group_id: int, members: list[int], is_admin: bool = True) -> pb.CIMGroupSetAdminRsp:
        req = pb.CIMGroupSetAdminReq(group_id=group_id, member_id_list=members, is_admin=is_admin)
        return self.call(Cmd.GROUP_SET_ADMIN_REQ, req)

    def read_count(self, group_id: int, msg_id: int) -> pb.CIMGroupReadCountRsp:
        return self.call(Cmd.GROUP_READ_COUNT_REQ, pb.CIMGroupReadCountReq(group_id=group_id, msg_id=msg_id))

    def read(self, group_id: int, msg_id: int) -> list:
        """Read ack (no answer on success; an ERROR_RSP otherwise, returned)."""
        self.conn.send(Cmd.MSG_READ_ACK, pb.CIMMsgDataReadAck(session_id=group_id, msg_id=msg_id, session_type=2))
        return self.pushes(Cmd.ERROR_RSP)

    def history(self, group_id: int, end: int = 0, limit: int = 100):
        req = pb.CIMGetMsgListReq(session_type=2, session_id=group_id, end_msg_id=end, limit_count=limit)
        return self.call(Cmd.LIST_MSG_REQ, req)

    def sessions(self) -> pb.CIMRecentContactSessionRsp:
        return self.call(Cmd.LIST_RECENT_CONTACT_SESSION_REQ, pb.CIMRecentContactSessionReq())

    def group_session(self, group_id: int):
        found = [s for s in self.sessions().contact_session_list if s.session_type == 2 and s.session_id == group_id]
        return found[0] if found else None


def notice(msg) -> dict:
    """The JSON of a NOTIFICATION message (a MSG_DATA push or an attach_notificatino_msg)."""
    if isinstance(msg, bytes):
        msg = pb.CIMMsgData.FromString(msg)
    assert msg.msg_type == NOTIFICATION and msg.session_type == 2
    return json.loads(msg.msg_data)


def changes(note: pb.CIMGroupMemberChangedNotify) -> list[tuple[int, int, int]]:
    return [(c.user_id, c.type, c.role) for c in note.changed_list]


@pytest.fixture
def node() -> MemoryNode:
    return MemoryNode()


class World:
    """A group with an owner, an admin, a member, a target member, a kicked user and an
    outsider (plus a spare user nobody added), everyone online once."""

    ROLES = ("owner", "admin", "member", "kicked", "outsider")

    def __init__(self, node: MemoryNode) -> None:
        self.node = node
        names = ("owner", "admin", "member", "target", "kicked", "outsider", "spare")
        self.ids = {n: node.user(f"{n}1", nick=n.title()) for n in names}
        self.dev = {n: Device(node, f"{n}1") for n in names}
        ids = self.ids
        rsp = self.dev["owner"].create([ids["admin"], ids["member"], ids["target"], ids["kicked"]], name="World")
        assert rsp.result_code == OK
        self.gid = rsp.group_info.group_id
        assert self.dev["owner"].set_admin(self.gid, [ids["admin"]]).result_code == OK
        assert self.dev["owner"].kick(self.gid, [ids["kicked"]]).result_code == OK
        self.first = self.dev["owner"].send(self.gid, "from the owner").server_msg_id
        for device in self.dev.values():
            device.pushes()


@pytest.fixture
def world(node) -> World:
    return World(node)


# -- create, notifications, fan-out


def test_create_answers_and_tells_every_device(node):
    alice, bob, carol = node.user("alice"), node.user("bobby"), node.user("carol")
    phone, desktop, bob_dev = Device(node, "alice"), Device(node, "alice"), Device(node, "bobby")
    rsp = phone.create([bob, carol, bob, alice])
    assert rsp.result_code == OK
    info = rsp.group_info
    gid = info.group_id
    assert (info.group_name, info.group_owner_id, info.group_type, info.member_count, info.group_version) == (
        "Alice, Bobby, Carol",
        alice,
        pb.kCIM_GROUP_TYPE_GROUP_NORMAL,
        3,
        1,
    )
    assert list(rsp.member_id_list) == [alice, bob, carol]
    created = notice(rsp.attach_notificatino_msg)
    assert created == {
        "notificationType": 1,
        "data": {
            "groupId": str(gid),
            "groupName": "Alice, Bobby, Carol",
            "owner": str(alice),
            "ownerNick": "Alice",
            "ids": [str(bob), str(carol)],
            "nickNames": ["Bobby", "Carol"],
        },
    }
    expected = [(alice, ADD, GroupRole.OWNER), (bob, ADD, GroupRole.MEMBER), (carol, ADD, GroupRole.MEMBER)]
    for device in (phone, desktop, bob_dev):
        (note,) = device.pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
        assert (note.user_id, note.group_id, note.group_version) == (alice, gid, 1)
        assert changes(note) == expected
    assert phone.pushes(Cmd.MSG_DATA) == []  # the requesting device has it in the answer
    for device in (desktop, bob_dev):
        (pushed,) = device.pushes(Cmd.MSG_DATA)
        assert notice(pushed) == created and pushed.server_msg_id == 1 and pushed.from_user_id == alice
    carol_dev = Device(node, "carol")  # offline until now: the group is in her list, unread 1
    entry = carol_dev.group_session(gid)
    assert (entry.unread_cnt, entry.server_msg_id, entry.msg_type) == (1, 1, NOTIFICATION)
    assert phone.group_session(gid).unread_cnt == 0
    named = phone.create([bob], name="  Coffee  ")
    assert named.group_info.group_name == "Coffee"
    assert [(g.group_id, g.group_version) for g in phone.groups().group_version_list] == [
        (gid, 1),
        (named.group_info.group_id, 1),
    ]


def test_create_refusals(node):
    node.user("alice")
    alice = Device(node, "alice")
    assert alice.create([999]).result_code == ErrorCode.USER_NOT_EXIST
    assert alice.create([0]).result_code == ErrorCode.INVALID_ARGUMENT
    assert alice.create([], group_type=7).result_code == ErrorCode.INVALID_ARGUMENT
    assert alice.create([], name="x" * 65).result_code == ErrorCode.INVALID_ARGUMENT
    alone = alice.create([])
    assert alone.result_code == OK and alone.group_info.member_count == 1


def test_group_message_fans_out_once_per_device(node, monkeypatch):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david")]
    alice, alice2 = Device(node, "alice"), Device(node, "alice")
    bob, bob2, carol = Device(node, "bobby"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create(ids[1:]).group_info.group_id
    for d in (alice, alice2, bob, bob2, carol):
        d.pushes()
    loads = []
    original = node.store.group_members
    monkeypatch.setattr(node.store, "group_members", lambda g: loads.append(g) or original(g))
    pushed = []
    route = node.core.router.push_many
    monkeypatch.setattr(
        node.core.router,
        "push_many",
        lambda users, p, except_device=None: pushed.append(p) or route(users, p, except_device),
    )
    for i in range(3):
        ack = alice.send(gid, f"m{i}")
        assert (ack.res_code, ack.server_msg_id, ack.session_type, ack.to_session_id) == (1, i + 2, 2, gid)
    assert loads == []  # members come from the cache, not one query per message
    assert len({id(p) for p in pushed}) == 3  # one Push per message, whatever the fan-out
    for device in (alice2, bob, bob2, carol):
        got = device.pushes(Cmd.MSG_DATA)
        assert [(m.server_msg_id, m.msg_data, m.from_user_id) for m in got] == [
            (2, b"m0", ids[0]),
            (3, b"m1", ids[0]),
            (4, b"m2", ids[0]),
        ]
        assert device.pushes() == []
    assert alice.pushes() == []
    assert pushed[0].cache["bin"] is not None  # encoded once, shared by every device


def test_unread_counts_per_member_after_partial_reads(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david")]
    alice, bob, bob2 = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby")
    gid = alice.create(ids[1:]).group_info.group_id  # seq 1: the create notice
    for i in range(5):
        alice.send(gid, f"m{i}")  # seqs 2..6
    bob.pushes(), bob2.pushes(), alice.pushes()
    assert bob.read(gid, 3) == []
    (note,) = bob2.pushes(Cmd.MSG_READ_NOTIFY)  # the reader's other device clears its badge
    assert (note.user_id, note.session_id, note.msg_id, note.session_type) == (ids[1], gid, 3, 2)
    assert alice.pushes() == [] and bob.pushes() == []  # no frame per member per read
    carol = Device(node, "carol")
    carol.read(gid, 5)
    assert bob.group_session(gid).unread_cnt == 3
    assert carol.group_session(gid).unread_cnt == 1
    assert alice.group_session(gid).unread_cnt == 0
    david = Device(node, "david")
    sessions = david.sessions()
    assert sessions.unread_counts == 6 and sessions.contact_session_list[0].unread_cnt == 6
    bob.read(gid, 2)  # never backwards
    assert bob.group_session(gid).unread_cnt == 3
    bob.send(gid, "reply")  # writing means having read
    assert bob.group_session(gid).unread_cnt == 0 and carol.group_session(gid).unread_cnt == 2


def test_resend_keeps_its_seq_and_pushes_nothing_again(node):
    ids = [node.user(n) for n in ("alice", "bobby")]
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    gid = alice.create(ids[1:]).group_info.group_id
    bob.pushes()
    first = alice.send(gid, "once", client_msg_id="same")
    assert len(bob.pushes(Cmd.MSG_DATA)) == 1
    again = alice.send(gid, "once", client_msg_id="same")
    assert again.server_msg_id == first.server_msg_id == 2 and again.res_code == 1
    assert bob.pushes(Cmd.MSG_DATA) == []
    assert alice.send(gid, "next").server_msg_id == 3


# -- permissions


def _expect(answer, code: int) -> None:
    got = getattr(answer, "result_code", None)
    if got is None:
        got = answer.error_code if hasattr(answer, "error_code") else answer.res_code
    assert got == code, answer


MEMBERS = {"owner": OK, "admin": OK, "member": OK, "kicked": ErrorCode.FORBIDDEN, "outsider": ErrorCode.FORBIDDEN}
MANAGERS = {**MEMBERS, "member": ErrorCode.FORBIDDEN}
OWNER = {**MANAGERS, "admin": ErrorCode.FORBIDDEN}


@pytest.mark.parametrize("role", World.ROLES)
@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("invite", MEMBERS),
        ("kick", MANAGERS),
        ("dismiss", OWNER),
        ("update", MANAGERS),
        ("set_admin", OWNER),
        ("members", MEMBERS),
        ("exit", MEMBERS),
        ("send", MEMBERS),
        ("history", MEMBERS),
        ("latest", MEMBERS),
        ("by_id", MEMBERS),
        ("read_count", {**OWNER, "admin": ErrorCode.FORBIDDEN}),  # the sender of the message only
    ],
)
def test_permissions(world, role, command, allowed):
    me = world.dev[role]
    gid, ids = world.gid, world.ids
    answer = {
        "invite": lambda: me.invite(gid, [ids["spare"]]),
        "kick": lambda: me.kick(gid, [ids["target"]]),
        "dismiss": lambda: me.dismiss(gid),
        "update": lambda: me.update(gid, group_name="Renamed"),
        "set_admin": lambda: me.set_admin(gid, [ids["target"]]),
        "members": lambda: me.members(gid),
        "exit": lambda: me.exit(gid),
        "send": lambda: me.send(gid, "may I?"),
        "history": lambda: me.history(gid),
        "latest": lambda: me.call(
            Cmd.MSG_GET_LATEST_MSG_ID_REQ, pb.CIMGetLatestMsgIdReq(session_type=2, session_id=gid)
        ),
        "by_id": lambda: me.call(
            Cmd.MSG_GET_BY_MSG_ID_REQ,
            pb.CIMGetMsgByIdReq(session_type=2, session_id=gid, msg_id_list=[str(world.first)]),
        ),
        "read_count": lambda: me.read_count(gid, world.first),
    }[command]()
    code = allowed[role]
    if command in ("send",):
        assert (answer.error_code or OK) == code, answer
    elif command in ("history", "latest", "by_id"):
        if code == OK:
            assert answer.DESCRIPTOR.name != "CIMErrorRsp", answer
        else:
            assert answer.error_code == code and answer.cmd_id in RESPONSE_OF, answer
    else:
        _expect(answer, code)
        if hasattr(answer, "group_id"):
            assert answer.group_id == gid  # refusals too are answered for the group asked about


def test_read_ack_and_info_for_non_members(world):
    for role in ("kicked", "outsider"):
        (err,) = world.dev[role].read(world.gid, 1)
        assert (err.error_code, err.cmd_id) == (ErrorCode.NOT_FOUND, Cmd.MSG_READ_ACK)
        rsp = world.dev[role].info([(world.gid, 0)])
        assert rsp.result_code == OK and list(rsp.group_info_list) == []
        assert world.dev[role].group_session(world.gid) is None
    assert [g.group_id for g in world.dev["member"].info([(world.gid, 0)]).group_info_list] == [world.gid]


def test_admins_cannot_remove_owner_or_admins(world):
    gid, ids, dev = world.gid, world.ids, world.dev
    dev["owner"].set_admin(gid, [ids["member"]])
    assert dev["admin"].kick(gid, [ids["owner"]]).result_code == ErrorCode.FORBIDDEN
    assert dev["admin"].kick(gid, [ids["member"]]).result_code == ErrorCode.FORBIDDEN
    assert dev["admin"].kick(gid, [ids["target"], ids["member"]]).result_code == ErrorCode.FORBIDDEN
    assert dev["admin"].kick(gid, [ids["admin"]]).result_code == ErrorCode.INVALID_ARGUMENT  # exit instead
    assert [m for m in dev["owner"].members(gid).member_id_list] == [
        ids["owner"],
        ids["admin"],
        ids["member"],
        ids["target"],
    ]
    rsp = dev["owner"].kick(gid, [ids["admin"]])
    assert rsp.result_code == OK and notice(rsp.attach_notificatino_msg)["data"]["ids"] == [str(ids["admin"])]
    assert dev["owner"].kick(gid, [ids["spare"]]).result_code == OK  # not a member: nothing to do
    assert dev["owner"].set_admin(gid, [ids["member"]], is_admin=False).result_code == OK
    assert dev["member"].kick(gid, [ids["target"]]).result_code == ErrorCode.FORBIDDEN


def test_unknown_or_dismissed_group_is_not_found(world):
    gid, dev = world.gid, world.dev
    for answer in (dev["owner"].members(gid + 50), dev["owner"].invite(gid + 50, [1]), dev["owner"].exit(gid + 50)):
        assert answer.result_code == ErrorCode.NOT_FOUND
    rsp = dev["owner"].dismiss(gid)
    assert rsp.result_code == OK and notice(rsp.attach_notificatino_msg) == {
        "notificationType": 6,
        "data": {"groupId": str(gid)},
    }
    assert dev["owner"].members(gid).result_code == ErrorCode.NOT_FOUND
    assert dev["member"].send(gid).error_code == ErrorCode.NOT_FOUND
    assert dev["owner"].dismiss(gid).result_code == ErrorCode.NOT_FOUND
    for name in ("owner", "admin", "member", "target"):
        assert dev[name].groups().group_version_list == []
        assert dev[name].group_session(gid) is None


def test_invite_models(world):
    gid, ids, dev = world.gid, world.ids, world.dev
    assert dev["admin"].update(gid, join_model=pb.kCIM_GROUP_JOIN_MODEL_NEED_AUTH).result_code == OK
    assert dev["member"].invite(gid, [ids["spare"]]).result_code == ErrorCode.FORBIDDEN
    assert dev["admin"].invite(gid, [ids["spare"]]).result_code == OK
    assert dev["owner"].update(gid, join_model=pb.kCIM_GROUP_JOIN_MODEL_REJECT).result_code == OK
    for name in ("owner", "admin", "member"):
        assert dev[name].invite(gid, [ids["outsider"]]).result_code == ErrorCode.FORBIDDEN
    dev["owner"].update(gid, join_model=0, be_invite_model=pb.kCIM_GROUP_BE_INVITE_MODEL_NEED_AGREE)
    # the invitee must agree first (tests/test_group_requests.py): nobody is added yet
    rsp = dev["owner"].invite(gid, [ids["outsider"]])
    assert (rsp.result_code, rsp.attach_notificatino_msg) == (OK, b"")
    assert ids["outsider"] not in dev["owner"].members(gid).member_id_list
    dev["owner"].update(gid, be_invite_model=0)
    assert dev["member"].invite(gid, [ids["outsider"], 9999]).result_code == ErrorCode.USER_NOT_EXIST
    assert dev["member"].invite(gid, []).result_code == ErrorCode.INVALID_ARGUMENT
    rsp = dev["member"].invite(gid, [ids["outsider"], ids["admin"]])  # members already in are ignored
    assert notice(rsp.attach_notificatino_msg)["data"] == {
        "groupId": str(gid),
        "userId": str(ids["member"]),
        "ids": [str(ids["outsider"])],
        "nickNames": ["Outsider"],
    }
    again = dev["member"].invite(gid, [ids["outsider"]])
    assert again.result_code == OK and again.attach_notificatino_msg == b""


def test_update_and_group_versions(world):
    gid, dev = world.gid, world.dev
    version = dev["member"].groups().group_version_list[0].group_version
    assert dev["member"].info([(gid, version)]).group_info_list == []  # unchanged: nothing to send
    rsp = dev["admin"].update(
        gid,
        group_name="New name",
        announcement="Be nice",
        group_intro="About",
        group_avatar="https://x/a.png",
        mute_model=1,
    )
    assert rsp.result_code == OK
    info = rsp.group_info
    assert (info.group_name, info.announcement, info.group_intro, info.group_avatar, info.mute_model) == (
        "New name",
        "Be nice",
        "About",
        "https://x/a.png",
        1,
    )
    assert info.group_version == version + 1
    assert notice(rsp.attach_notificatino_msg) == {
        "notificationType": 5,
        "data": {
            "groupId": str(gid),
            "userId": str(world.ids["admin"]),
            "groupName": "New name",
            "announcement": "Be nice",
            "groupIntro": "About",
            "groupAvatar": "https://x/a.png",
            "muteModel": 1,
        },
    }
    (note,) = dev["member"].pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
    assert (note.group_version, list(note.changed_list)) == (version + 1, [])
    (got,) = dev["member"].info([(gid, version)]).group_info_list
    assert got == info
    assert dev["owner"].update(gid).result_code == ErrorCode.INVALID_ARGUMENT
    assert dev["owner"].update(gid, group_name=" ").result_code == ErrorCode.INVALID_ARGUMENT
    assert dev["owner"].update(gid, mute_model=5).result_code == ErrorCode.INVALID_ARGUMENT
    assert dev["owner"].update(gid, announcement="x" * 2049).result_code == ErrorCode.INVALID_ARGUMENT
    assert dev["owner"].update(gid, announcement="").group_info.announcement == ""


def test_mute_lets_only_owner_and_admins_write(world):
    gid, dev = world.gid, world.dev
    dev["owner"].update(gid, mute_model=pb.kCIM_GROUP_MUTE_MODEL_ALL)
    ack = dev["member"].send(gid, "hello?")
    assert (ack.res_code, ack.error_code) == (0, ErrorCode.FORBIDDEN)
    assert dev["admin"].send(gid, "admins may").res_code == 1
    assert dev["owner"].send(gid, "owners may").res_code == 1
    dev["owner"].update(gid, mute_model=pb.kCIM_GROUP_MUTE_MODEL_DEFAULT)
    assert dev["member"].send(gid, "free again").res_code == 1


def test_members_list_with_roles(world):
    rsp = world.dev["member"].members(world.gid)
    ids = world.ids
    assert rsp.result_code == OK and list(rsp.member_id_list) == [
        ids["owner"],
        ids["admin"],
        ids["member"],
        ids["target"],
    ]
    assert [(m.user_id, m.role) for m in rsp.member_list] == [
        (ids["owner"], GroupRole.OWNER),
        (ids["admin"], GroupRole.ADMIN),
        (ids["member"], GroupRole.MEMBER),
        (ids["target"], GroupRole.MEMBER),
    ]


# -- limits


def test_member_limit_small():
    node = MemoryNode(**{"groups.max_normal_members": 5, "groups.max_super_members": 7})
    ids = [node.user(f"user{i:02d}") for i in range(9)]
    owner = Device(node, "user00")
    assert owner.create(ids[1:6]).result_code == ErrorCode.GROUP_FULL  # 6 with the owner
    gid = owner.create(ids[1:4]).group_info.group_id  # 4
    assert owner.invite(gid, ids[4:6]).result_code == ErrorCode.GROUP_FULL  # 6: all or nothing
    assert list(owner.members(gid).member_id_list) == ids[:4]
    assert owner.invite(gid, ids[4:5]).result_code == OK  # 5
    assert owner.invite(gid, ids[5:6]).result_code == ErrorCode.GROUP_FULL
    super_group = owner.create(ids[1:7], group_type=pb.kCIM_GROUP_TYPE_GROUP_SUPER)
    assert super_group.result_code == OK and super_group.group_info.group_type == 2
    assert owner.invite(super_group.group_info.group_id, ids[7:9]).result_code == ErrorCode.GROUP_FULL


def test_member_limit_default_200_at_199_200_201(node):
    ids = [node.user(f"user{i:03d}") for i in range(202)]
    owner = Device(node, "user000")
    assert owner.create(ids[1:201]).result_code == ErrorCode.GROUP_FULL  # 201 members
    rsp = owner.create(ids[1:199])  # 199 members
    assert rsp.result_code == OK and rsp.group_info.member_count == 199
    gid = rsp.group_info.group_id
    assert owner.invite(gid, [ids[199]]).result_code == OK  # 200
    assert owner.info([]).group_info_list[0].member_count == 200
    assert owner.invite(gid, [ids[200]]).result_code == ErrorCode.GROUP_FULL  # 201
    owner.kick(gid, [ids[1]])
    assert owner.invite(gid, [ids[200]]).result_code == OK


def test_groups_per_user_limit():
    node = MemoryNode(**{"groups.max_groups_per_user": 2})
    a, b, c = node.user("alice"), node.user("bobby"), node.user("carol")
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    alice.create([b])
    g2 = alice.create([]).group_info.group_id
    assert alice.create([]).result_code == ErrorCode.TOO_MANY_GROUPS
    assert bob.create([a]).result_code == ErrorCode.TOO_MANY_GROUPS  # alice is in two already
    bob.create([c])
    assert alice.invite(g2, [b]).result_code == ErrorCode.TOO_MANY_GROUPS
    assert alice.invite(g2, [c]).result_code == OK


# -- leaving, kicking, ownership


def test_owner_exit_hands_over_to_the_longest_standing_member(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david")]
    alice, bob, carol, david = (Device(node, n) for n in ("alice", "bobby", "carol", "david"))
    gid = alice.create([ids[2], ids[1]]).group_info.group_id  # carol joined before bob
    alice.invite(gid, [ids[3]])
    for d in (alice, bob, carol, david):
        d.pushes()
    rsp = alice.exit(gid)
    assert rsp.result_code == OK
    left = notice(rsp.attach_notificatino_msg)
    assert left == {
        "notificationType": 4,
        "data": {"groupId": str(gid), "ids": [str(ids[0])], "nickNames": ["Alice"], "owner": str(ids[2])},
    }
    for device in (alice, bob, carol, david):
        (note,) = device.pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
        assert changes(note) == [(ids[0], DEL, 0), (ids[2], ROLE, GroupRole.OWNER)]
    for device in (bob, carol, david):
        (pushed,) = device.pushes(Cmd.MSG_DATA)
        assert notice(pushed) == left
    assert alice.groups().group_version_list == [] and alice.group_session(gid) is None
    assert bob.info([]).group_info_list[0].group_owner_id == ids[2]
    assert carol.set_admin(gid, [ids[1]]).result_code == OK  # the new owner has the owner's rights
    # the last one out dismisses the group
    gid = bob.create([ids[3]]).group_info.group_id
    bob.exit(gid)
    assert david.members(gid).member_list[0].role == GroupRole.OWNER
    assert david.exit(gid).result_code == OK
    assert david.members(gid).result_code == ErrorCode.NOT_FOUND
    assert node.result(node.store.group_by_id(gid)).dismissed


def test_kick_tells_everyone_including_the_kicked_devices(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob, bob2, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create(ids[1:]).group_info.group_id
    bob.send(gid, "before")
    for d in (alice, bob, bob2, carol):
        d.pushes()
    rsp = alice.kick(gid, [ids[1]])
    assert rsp.result_code == OK and rsp.group_id == gid
    kicked = notice(rsp.attach_notificatino_msg)
    assert kicked == {
        "notificationType": 3,
        "data": {"groupId": str(gid), "ownerUserId": str(ids[0]), "ids": [str(ids[1])], "nickNames": ["Bobby"]},
    }
    for device in (alice, bob, bob2, carol):
        (note,) = device.pushes(Cmd.GROUP_MEMBER_CHANGED_NOTIFY)
        assert changes(note) == [(ids[1], DEL, 0)] and note.user_id == ids[0]
    for device in (bob, bob2, carol):
        (pushed,) = device.pushes(Cmd.MSG_DATA)
        assert notice(pushed) == kicked
    assert bob.group_session(gid) is None  # the group leaves the kicked user's list
    assert bob.history(gid).error_code == ErrorCode.FORBIDDEN
    assert bob.send(gid, "after").error_code == ErrorCode.FORBIDDEN
    carol.send(gid, "bob is gone")
    assert bob.pushes(Cmd.MSG_DATA) == [] and bob2.pushes(Cmd.MSG_DATA) == []


def test_history_visibility_for_late_joiners_and_the_kicked(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob = Device(node, "alice"), Device(node, "bobby")
    gid = alice.create([ids[1]]).group_info.group_id  # seq 1
    for i in range(3):
        alice.send(gid, f"early{i}")  # 2..4
    alice.invite(gid, [ids[2]])  # 5: the invite notice is the first thing carol sees
    carol = Device(node, "carol")
    alice.send(gid, "late")  # 6
    seen = [m.server_msg_id for m in carol.history(gid).msg_list]
    assert seen == [5, 6]
    assert carol.group_session(gid).unread_cnt == 2  # from the invite notice on
    rsp = carol.call(
        Cmd.MSG_GET_BY_MSG_ID_REQ, pb.CIMGetMsgByIdReq(session_type=2, session_id=gid, msg_id_list=["2", "5", "6"])
    )
    assert [m.server_msg_id for m in rsp.msg_list] == [5, 6]
    latest = carol.call(Cmd.MSG_GET_LATEST_MSG_ID_REQ, pb.CIMGetLatestMsgIdReq(session_type=2, session_id=gid))
    assert latest.latest_msg_id == "6"
    assert [m.server_msg_id for m in bob.history(gid).msg_list] == [1, 2, 3, 4, 5, 6]
    page = bob.history(gid, end=4, limit=2)
    assert [m.server_msg_id for m in page.msg_list] == [2, 3]
    statuses = {m.server_msg_id: m.msg_status for m in bob.history(gid).msg_list}
    assert statuses[6] == pb.kCIM_MSG_STATUS_UNREAD
    alice.kick(gid, [ids[2]])  # 7
    err = carol.history(gid)
    assert (err.error_code, err.cmd_id) == (ErrorCode.FORBIDDEN, Cmd.LIST_MSG_REQ)
    alice.send(gid, "while carol was out")  # 8
    alice.invite(gid, [ids[2]])  # 9: back, but only from here on
    assert [m.server_msg_id for m in carol.history(gid).msg_list] == [9]


# -- mentions


def test_mentions_flag_the_conversation_until_read_past(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david")]
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create(ids[1:3]).group_info.group_id
    for d in (bob, carol):
        d.pushes()
    ack = alice.send(gid, "@Bobby look", at_user_list=[ids[1], ids[3], ids[0], ids[1]])  # david is not in it
    assert ack.res_code == 1
    (pushed,) = bob.pushes(Cmd.MSG_DATA)
    assert list(pushed.at_user_list) == [ids[1]] and not pushed.at_all
    assert bob.group_session(gid).at_me and not carol.group_session(gid).at_me
    alice.send(gid, "more")
    bob.read(gid, ack.server_msg_id - 1)
    assert bob.group_session(gid).at_me
    bob.read(gid, ack.server_msg_id)
    assert not bob.group_session(gid).at_me
    refused = bob.send(gid, "@all!", at_all=True)
    assert (refused.res_code, refused.error_code) == (0, ErrorCode.FORBIDDEN)
    alice.set_admin(gid, [ids[1]])
    assert bob.send(gid, "@all now", at_all=True).res_code == 1
    (pushed,) = [m for m in carol.pushes(Cmd.MSG_DATA) if m.msg_type == 1][-1:]
    assert pushed.at_all
    assert carol.group_session(gid).at_me and alice.group_session(gid).at_me
    assert not bob.group_session(gid).at_me


# -- read counts


def test_read_count_is_answered_and_notified_coalesced(node):
    ids = [node.user(n) for n in ("alice", "bobby", "carol", "david", "erika")]
    alice, alice2 = Device(node, "alice"), Device(node, "alice")
    others = [Device(node, n) for n in ("bobby", "carol", "david", "erika")]
    gid = alice.create(ids[1:]).group_info.group_id
    seq = alice.send(gid, "did you read this?").server_msg_id
    rsp = alice.read_count(gid, seq)
    assert (rsp.result_code, rsp.msg_id, rsp.read_count, rsp.member_count) == (OK, seq, 0, 4)
    assert others[0].read_count(gid, seq).result_code == ErrorCode.FORBIDDEN  # not the sender
    assert alice.read_count(gid, seq + 5).result_code == ErrorCode.NOT_FOUND
    for device in others[:3]:
        device.read(gid, seq)
    for device in (alice, alice2):
        assert device.pushes(Cmd.GROUP_READ_COUNT_NOTIFY) == []  # not one frame per reader
    node.advance(2)
    for device in (alice, alice2):
        (note,) = device.pushes(Cmd.GROUP_READ_COUNT_NOTIFY)
        assert (note.group_id, note.msg_id, note.read_count, note.member_count) == (gid, seq, 3, 4)
    assert node.core.feature("group_reads").notifies == 1
    others[0].read(gid, seq)  # no change: nothing to say
    node.advance(2)
    assert alice.pushes(Cmd.GROUP_READ_COUNT_NOTIFY) == []
    others[3].send(gid, "read it")  # writing means having read
    node.advance(2)
    (note,) = alice.pushes(Cmd.GROUP_READ_COUNT_NOTIFY)
    assert (note.read_count, note.member_count) == (4, 4)
    alice.kick(gid, [ids[4]])
    node.advance(2)
    (note,) = alice.pushes(Cmd.GROUP_READ_COUNT_NOTIFY)
    assert (note.read_count, note.member_count) == (3, 3)
    assert len(node.core.feature("group_reads")) == 1
    for _ in range(21):  # watches end after 10 minutes
        node.advance(30)
        alice.call(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
        alice.pushes()
    alice.invite(gid, [ids[4]])
    node.advance(2)
    assert alice.pushes(Cmd.GROUP_READ_COUNT_NOTIFY) == []
    assert len(node.core.feature("group_reads")) == 0


# -- the store's in-transaction check


def test_group_message_racing_a_kick_is_refused_by_the_store(node):
    """The kick commits while the handler still believes the sender is a member (its cache is
    updated only once the kick's answer is back): the storing transaction refuses the message."""
    ids = [node.user(n) for n in ("alice", "bobby", "carol")]
    alice, bob, carol = Device(node, "alice"), Device(node, "bobby"), Device(node, "carol")
    gid = alice.create(ids[1:]).group_info.group_id
    carol.pushes()
    node.result(node.store.remove_members(gid, ids[0], GroupRole.ADMIN, [ids[1]], 0, GroupRole.OWNER))
    assert ids[1] in node.result(node.core.feature("groups").cache.get(gid)).members  # the handler has not heard yet
    ack = bob.send(gid, "sneaking in")
    assert (ack.res_code, ack.error_code) == (0, ErrorCode.FORBIDDEN)
    assert carol.pushes(Cmd.MSG_DATA) == []
    assert node.result(node.store.latest_seq(f"g:{gid}")) == 1
    node.result(node.store.update_group(gid, ids[0], GroupRole.ADMIN, {"mute_model": 1}, 0))
    ack = carol.send(gid, "muted meanwhile")
    assert ack.error_code == ErrorCode.FORBIDDEN
