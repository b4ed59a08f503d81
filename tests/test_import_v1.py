"""``coffeechat import coffeechat-v1``: the original server's MySQL database, brought over.

A real MariaDB (tests/mariadbserver.py, started on a free port) holds the original tables, made
and filled by the test as the Go server wrote them (docs/import-v1.md); the import runs as the
real ``coffeechat`` command in a subprocess, through PyMySQL, into a SQLite data dir (and a real
PostgreSQL where its binaries exist); then a node started on that data dir serves the imported
users over real CIM TCP: an old password logs in (and its verifier is re-hashed with scrypt),
history has the old server_msg_ids, and a new message gets the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import pytest_twisted

from coffeechat.auth import hash_password, is_legacy_hash, legacy_cim_v1_hash, verify_password
from coffeechat.ops.import_v1 import parse_mysql_dsn
from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd, pb
from tests.conftest import node_config, start_node, stop_node
from tests.mariadbserver import MariaDBServer, mariadb_server  # noqa: F401  (session fixture)
from tests.pgserver import free_port, pg_server  # noqa: F401  (session fixture)

REPO = Path(__file__).resolve().parent.parent
MAIN = "from coffeechat.admin import main; raise SystemExit(main())"
T0 = 1_600_000_000  # the old server's times, Unix seconds
SINGLE, GROUP = 1, 2
TEXT, NOTIFICATION = 1, 9

# The original server's tables, as its Go code created them (cim-v1 reference, "MySQL database").
V1_TABLES = [
    """CREATE TABLE im_user (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user_name VARCHAR(64) NOT NULL DEFAULT '',
        user_pwd_salt VARCHAR(64) NOT NULL DEFAULT '',
        user_pwd_hash VARCHAR(64) NOT NULL DEFAULT '',
        user_nick_name VARCHAR(32) NOT NULL DEFAULT '',
        user_token VARCHAR(128) NOT NULL DEFAULT '',
        user_attach VARCHAR(1024) NOT NULL DEFAULT '',
        created INT NOT NULL DEFAULT 0,
        updated INT NOT NULL DEFAULT 0,
        UNIQUE KEY ix_user_name (user_name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE im_session (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user_id BIGINT UNSIGNED NOT NULL,
        peer_id BIGINT UNSIGNED NOT NULL,
        session_type TINYINT NOT NULL DEFAULT 1,
        session_status TINYINT NOT NULL DEFAULT 1,
        is_robot_session TINYINT NOT NULL DEFAULT 0,
        created INT NOT NULL DEFAULT 0,
        updated INT NOT NULL DEFAULT 0,
        UNIQUE KEY ix_user_peer_type (user_id, peer_id, session_type)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE im_group (
        group_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        group_name VARCHAR(32) NOT NULL DEFAULT '',
        group_version INT NOT NULL DEFAULT 1,
        create_user_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
        owner BIGINT UNSIGNED NOT NULL DEFAULT 0,
        announcement VARCHAR(1024) NOT NULL DEFAULT '',
        intro VARCHAR(128) NOT NULL DEFAULT '',
        avatar VARCHAR(256) NOT NULL DEFAULT '',
        type TINYINT NOT NULL DEFAULT 1,
        join_model TINYINT NOT NULL DEFAULT 0,
        be_invite_model TINYINT NOT NULL DEFAULT 0,
        mute_model TINYINT NOT NULL DEFAULT 0,
        last_chat_time INT NOT NULL DEFAULT 0,
        user_cnt INT NOT NULL DEFAULT 0,
        created INT NOT NULL DEFAULT 0,
        updated INT NOT NULL DEFAULT 0,
        del_flag TINYINT NOT NULL DEFAULT 0
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE im_group_member (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        group_id BIGINT UNSIGNED NOT NULL,
        user_id BIGINT UNSIGNED NOT NULL,
        created INT NOT NULL DEFAULT 0,
        updated INT NOT NULL DEFAULT 0,
        del_flag TINYINT NOT NULL DEFAULT 0,
        KEY ix_group (group_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
] + [
    f"""CREATE TABLE im_message_{kind}_{shard} (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        msg_id BIGINT UNSIGNED NOT NULL,
        client_msg_id VARCHAR(64) NOT NULL DEFAULT '',
        from_id BIGINT UNSIGNED NOT NULL,
        to_id BIGINT UNSIGNED NOT NULL,
        group_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
        msg_type TINYINT NOT NULL DEFAULT 1,
        msg_content VARCHAR(2048) NOT NULL DEFAULT '',
        msg_res_code TINYINT NOT NULL DEFAULT 1,
        msg_feature TINYINT NOT NULL DEFAULT 0,
        msg_status TINYINT NOT NULL DEFAULT 0,
        created INT NOT NULL DEFAULT 0,
        updated INT NOT NULL DEFAULT 0,
        KEY ix_from_to (from_id, to_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
    for kind in ("send", "recv")
    for shard in range(4)
]


def md5hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def v1_verifier(password: str, salt: str) -> str:
    """What the original stored: md5hex(md5hex(P) + salt), P being the MD5 the client sends."""
    return md5hex(md5hex(md5hex(password)) + salt)


class OldServer:
    """Writes rows into a v1 database the way the original Go server did."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.cur = conn.cursor()
        for ddl in V1_TABLES:
            self.cur.execute(ddl)

    def user(self, uid: int, name: str, password: str | None, nick: str | None = None) -> None:
        salt = hashlib.sha256(f"salt-{uid}".encode()).hexdigest() if password is not None else ""
        verifier = v1_verifier(password, salt) if password is not None else ""
        self.cur.execute(
            "INSERT INTO im_user (id, user_name, user_pwd_salt, user_pwd_hash, user_nick_name, user_token, created, "
            "updated) VALUES (%s, %s, %s, %s, %s, '', %s, %s)",
            (uid, name, salt, verifier, name.title() if nick is None else nick, T0 + uid, T0 + uid),
        )

    def group(self, gid: int, name: str, owner: int, members: list[int], left: list[int] = (), **settings) -> None:
        row = {"announcement": "", "intro": "", "avatar": "", "type": 1, "join_model": 0, "be_invite_model": 0,
               "mute_model": 0, "del_flag": 0, "group_version": 3, **settings}  # fmt: skip
        self.cur.execute(
            "INSERT INTO im_group (group_id, group_name, group_version, create_user_id, owner, announcement, intro, "
            "avatar, type, join_model, be_invite_model, mute_model, user_cnt, created, updated, del_flag) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (gid, name, row["group_version"], owner, owner, row["announcement"], row["intro"], row["avatar"],
             row["type"], row["join_model"], row["be_invite_model"], row["mute_model"], len(members), T0 + 100,
             T0 + 200, row["del_flag"]),
        )  # fmt: skip
        for n, uid in enumerate([*members, *left]):
            self.cur.execute(
                "INSERT INTO im_group_member (group_id, user_id, created, updated, del_flag) "
                "VALUES (%s, %s, %s, %s, %s)",
                (gid, uid, T0 + 100 + n, T0 + 100 + n, int(uid in left)),
            )

    def session(self, user: int, peer: int, session_type: int = SINGLE, status: int = 1) -> None:
        self.cur.execute(
            "INSERT INTO im_session (user_id, peer_id, session_type, session_status, created, updated) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (user, peer, session_type, status, T0, T0),
        )

    def _row(self, table: str, msg_id: int, cmid: str, sender: int, to: int, gid: int, msg_type: int, text: str):
        self.cur.execute(
            f"INSERT INTO {table} (msg_id, client_msg_id, from_id, to_id, group_id, msg_type, msg_content, created, "
            "updated) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (msg_id, cmid, sender, to, gid, msg_type, text, T0 + 1000 + msg_id, T0 + 1000 + msg_id),
        )

    def direct(self, msg_id: int, sender: int, to: int, text: str, cmid: str | None = None) -> None:
        """A 1:1 message: in the sender's send shard and the recipient's recv shard."""
        cmid = f"cm-{sender}-{to}-{msg_id}" if cmid is None else cmid
        self._row(f"im_message_send_{sender % 4}", msg_id, cmid, sender, to, 0, TEXT, text)
        self._row(f"im_message_recv_{to % 4}", msg_id, cmid, sender, to, 0, TEXT, text)

    def grouped(self, msg_id: int, sender: int, gid: int, text: str, msg_type: int = TEXT, cmid: str | None = None):
        """A group message: the sender's send shard (not for notifications) and the group's recv shard."""
        cmid = f"cm-{sender}-g{gid}-{msg_id}" if cmid is None else cmid
        if msg_type != NOTIFICATION:
            self._row(f"im_message_send_{sender % 4}", msg_id, cmid, sender, gid, gid, msg_type, text)
        self._row(f"im_message_recv_{gid % 4}", msg_id, cmid, sender, gid, gid, msg_type, text)


def fill(old: OldServer) -> None:
    """A small deployment with the cases an import meets: gaps in ids, left members, a dismissed
    group, a user whose name is not valid here, a resend stored twice, a message without a
    client_msg_id (the old desktop client's), sessions without messages."""
    old.user(1, "alice", "secret")
    old.user(2, "bobby", "hunter22")
    old.user(3, "carol", "carol-pw")
    old.cur.execute('UPDATE im_user SET user_attach = \'{"title": "CTO"}\' WHERE id = 3')
    old.user(4, "x!", "short")  # not a valid name here
    old.user(5, "dave5", "dave-pw", nick="   ")  # a blank nick name
    old.user(8, "erin8", None)  # no verifier
    old.group(10, "team", 1, [1, 2, 3], left=[5], join_model=1, be_invite_model=1, mute_model=0,
              announcement="Friday demo", intro="the team", avatar="https://img.example/team.png")  # fmt: skip
    old.group(11, "gone", 2, [], left=[1, 2], del_flag=1)
    old.group(12, "orphans", 4, [4, 2, 3])  # its owner is the invalid user: bobby, the senior member, takes over
    old.group(13, "settings", 1, [1, 2], join_model=7)  # a setting the clients never knew
    # alice <-> bobby: msg_ids 1..5, one of them a resend the original stored twice
    old.direct(1, 1, 2, "hi bob")
    old.direct(2, 2, 1, "hi alice")
    old.direct(3, 1, 2, "lunch?")
    old.direct(4, 1, 2, "lunch?", cmid="cm-1-2-3")  # the resend: same client_msg_id, a new msg_id
    old.direct(5, 2, 1, "sure", cmid="")  # the desktop client sent no client_msg_id
    # alice <-> carol
    old.direct(1, 3, 1, "hello from carol")
    # to and from the user who cannot be imported
    old.direct(1, 4, 1, "from x")
    # group 10
    old.grouped(1, 1, 10, json.dumps({"notificationType": 1, "data": {"groupId": "10"}}), NOTIFICATION)
    old.grouped(2, 1, 10, "welcome")
    old.grouped(3, 2, 10, "thanks")
    old.grouped(4, 3, 10, "hey all")
    old.grouped(1, 2, 11, "in a dismissed group")
    old.grouped(1, 2, 12, "orphans unite")
    old.session(1, 2)
    old.session(2, 1)
    old.session(1, 3, status=2)  # alice had removed carol's chat from her list
    old.session(3, 1)
    old.session(1, 10, GROUP)
    old.session(2, 5)  # no messages between them: the entry is made alone
    old.session(1, 4)  # the invalid user


@pytest.fixture
def old_db(mariadb_server):  # noqa: F811
    """A filled v1 database; yields (dsn, OldServer) so a test can add rows."""
    name = mariadb_server.database()
    conn = mariadb_server.connect(name)
    old = OldServer(conn)
    fill(old)
    try:
        yield mariadb_server.dsn(name), old
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request, tmp_path):
    """``deployment(key)``: the storage settings of a new, empty deployment (SQLite: none, the
    data dir's file; PostgreSQL: a database of its own on the session's server)."""
    if request.param == "sqlite":
        yield lambda key: {}
        return
    pg = request.getfixturevalue("pg_server")
    keys = []

    def make(key: str) -> dict:
        keys.append(tmp_path / key)
        return {"storage.backend": "postgres", "storage.dsn": pg.database(tmp_path / key)}

    yield make
    for key in keys:
        pg.release(key)


class Cli:
    """Runs the real ``coffeechat`` command (a subprocess) on one config and data dir."""

    def __init__(self, root: Path, settings: dict) -> None:
        self.root = root
        self.settings = {"server.data_dir": str(root / "data"), "auth.scrypt_n": 1024, **settings}
        storage = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("storage.")}
        text = "[auth]\nscrypt_n = 1024\n"
        if storage:
            text += "[storage]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in storage.items())
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "coffeechat.toml"
        self.config.write_text(text)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", MAIN, "--config", str(self.config), "--data-dir", str(self.root / "data"), *args]

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*args), cwd=self.root, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    def run_import(self, dsn: str, *more: str, status: int = 0) -> dict:
        """The import's JSON summary; the command must have ended with ``status``."""
        done = self("import", "coffeechat-v1", "--mysql", dsn, "--json", *more)
        assert done.returncode == status, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(tmp_path, deployment) -> Cli:
    return Cli(tmp_path, deployment("main"))


def refused(done: subprocess.CompletedProcess) -> str:
    """The one-line error of a command that must have been refused, without a traceback."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


TABLES = {
    "users": "user_id, name, nick_name, password_hash, disabled, created_at",
    "chat_groups": "group_id, name, group_type, owner_id, created_at, updated_at, version, join_model, "
    "be_invite_model, mute_model, intro, announcement, avatar, member_count, dismissed",
    "group_members": "group_id, user_id, role, joined_at, joined_seq",
    "conversations": "conv, session_type, last_seq",
    "messages": "conv, seq, session_type, sender_id, to_id, client_msg_id, msg_type, data, created_at",
    "user_conversations": "user_id, conv, session_type, session_id, read_seq, delivered_seq",
    "conversation_deletes": "user_id, conv, cleared_seq, removed_seq",
}


async def open_core(settings: dict):
    from twisted.internet import reactor

    from coffeechat.config import load_config
    from coffeechat.node import build_node

    core = build_node(load_config(None, settings), reactor)
    await core.open()
    return core


async def dump(settings: dict) -> dict[str, list[tuple]]:
    """Every row the import writes, by table, sorted: what two imports are compared by."""

    def read(txn):
        return {t: sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                          for r in txn.execute(f"SELECT {cols} FROM {t}"))
                for t, cols in TABLES.items()}  # fmt: skip

    core = await open_core(settings)
    try:
        return await core.store.run_read("test_dump", read)
    finally:
        await core.close()


def by_key(rows: list[tuple], width: int = 1) -> dict:
    return {r[:width] if width > 1 else r[0]: r for r in rows}


# -- pure parts


def test_dsn_is_parsed_and_checked():
    args = parse_mysql_dsn("mysql://im%40app:p%2Fw@db.example:3307/coffeechat?charset=utf8mb4&connect_timeout=5")
    assert args == {"host": "db.example", "port": 3307, "user": "im@app", "password": "p/w", "database": "coffeechat",
                    "charset": "utf8mb4", "connect_timeout": 5}  # fmt: skip
    assert parse_mysql_dsn("mariadb://root@localhost/im?unix_socket=/run/mysqld/mysqld.sock")["unix_socket"] == (
        "/run/mysqld/mysqld.sock"
    )
    for bad in ("postgres://u@h/db", "mysql://u@h", "mysql://u@h:99999/db", "mysql://u@h/db?sslmode=on"):
        with pytest.raises(ValueError):
            parse_mysql_dsn(bad)


def test_the_old_verifier_checks_what_a_cim_client_sends():
    salt = "ab" * 32
    stored = legacy_cim_v1_hash(salt, v1_verifier("secret", salt).upper())
    assert is_legacy_hash(stored) and not is_legacy_hash(hash_password(md5hex("secret"), n=1024))
    assert verify_password(md5hex("secret"), stored)
    assert not verify_password(md5hex("Secret"), stored)
    assert not verify_password(md5hex("secret"), legacy_cim_v1_hash("cd" * 32, v1_verifier("secret", salt)))
    for broken in ("cimv1$", "cimv1$$" + "0" * 32, "cimv1$salt$short", "cimv1$a$b$c"):
        assert not verify_password(md5hex("secret"), broken)


# -- the import, end to end


@pytest_twisted.ensureDeferred
async def test_an_import_brings_everything_and_old_clients_carry_on(old_db, cli):
    dsn, _ = old_db
    summary = cli.run_import(dsn)
    assert summary["complete"] and not summary["resumed"]
    assert {k: v["count"] for k, v in summary["problems"].items()} == {
        "bad_group_setting": 1,  # group 13's join_model 7
        "bad_user_name": 1,  # "x!"
        "duplicate_client_msg_id": 1,  # the resend alice's client made
        "nick_name_replaced": 1,  # dave's blank nick
        "no_password": 1,  # erin
        "orphan_member": 1,  # "x!" in group 12
        "owner_replaced": 1,  # group 12's owner was "x!"
        "unknown_group": 1,  # the message in dismissed group 11
        "unknown_user": 2,  # the message and the session of "x!"
        "user_attach_not_mapped": 1,  # carol's
    }
    assert summary["phases"]["users"] == {"new": 5, "existing": 0, "refused": 0}
    assert summary["phases"]["groups"] == {"new": 4, "existing": 0, "refused": 0}
    data = await dump(cli.settings)

    users = by_key(data["users"])
    assert sorted(users) == [1, 2, 3, 5, 8]  # ids kept, the gap too
    assert [users[u][1:3] for u in (1, 2, 5)] == [("alice", "Alice"), ("bobby", "Bobby"), ("dave5", "dave5")]
    assert all(is_legacy_hash(users[u][3]) for u in (1, 2, 3, 5)) and users[8][3] == ""
    assert users[1][5] == T0 + 1

    groups = by_key(data["chat_groups"])
    team = groups[10]
    assert team[1:4] == ("team", 1, 1) and team[6] == 3  # name, type, owner; version kept
    assert team[7:10] == (1, 1, 0)  # join_model, be_invite_model, mute_model
    assert team[10:14] == ("the team", "Friday demo", "https://img.example/team.png", 3) and not team[14]
    assert groups[11][14] and groups[11][13] == 0  # dismissed there, dismissed here
    assert groups[12][3] == 2 and groups[12][13] == 2  # bobby owns what is left of "orphans"
    assert groups[13][7] == 0
    members = by_key(data["group_members"], 2)
    assert sorted(u for g, u in members if g == 10) == [1, 2, 3]  # dave had left
    assert members[(10, 1)][2] == 3 and members[(10, 2)][2] == 1  # owner, member (GroupRole)
    assert members[(12, 2)][2] == 3

    messages = by_key(data["messages"], 2)
    pair = sorted((seq, sender, data_) for (conv, seq), (_, _, _, sender, _, _, _, data_, _) in messages.items()
                  if conv == "p:1:2")  # fmt: skip
    assert pair == [(1, 1, b"hi bob"), (2, 2, b"hi alice"), (3, 1, b"lunch?"), (4, 1, b"lunch?"), (5, 2, b"sure")]
    assert messages[("p:1:2", 4)][5] == "cm-1-2-3#4"  # the resend kept, under an id of its own
    assert messages[("p:1:2", 5)][5]  # one made for the desktop client's message
    assert sorted(seq for conv, seq in messages if conv == "g:10") == [1, 2, 3, 4]
    assert messages[("g:10", 1)][6] == NOTIFICATION
    assert messages[("p:1:3", 1)][3:5] == (3, 1)
    assert not [k for k in messages if k[0] in ("p:1:4", "g:11")]
    convs = by_key(data["conversations"])
    assert (convs["p:1:2"][2], convs["g:10"][2], convs["g:12"][2]) == (5, 4, 1)
    entries = by_key(data["user_conversations"], 2)
    assert entries[(1, "p:1:2")][3:] == (2, 5, 5)  # read: the old unread counts lived in Redis
    assert entries[(3, "g:10")][3:] == (10, 4, 4)
    assert entries[(2, "p:2:5")][3:] == (5, 0, 0)  # a session with no messages: listed all the same
    assert (5, "p:2:5") not in entries  # dave never had bobby in his list
    assert data["conversation_deletes"] == [(1, "p:1:3", 0, 1)]  # removed from alice's list, as it was
    assert summary["stats"]["sessions removed from the list"] == 1

    # The node on the imported data: alice's old client logs in with what it always sent.
    live = await start_node(node_config(cli.root, **{k: v for k, v in cli.settings.items() if k != "auth.scrypt_n"}))
    try:
        client = await live.connect()
        wrong = await client.login_password("alice", cim_client.md5_password("Secret"))
        assert wrong.result_code == pb.kCIM_ERR_LOGIN_INVALID_USER_OR_PWD
        rsp = await client.login_password("alice", cim_client.md5_password("secret"))
        assert rsp.result_code == pb.kCIM_ERR_SUCCESS and rsp.user_info.user_id == 1
        upgraded = (await live.core.store.user_by_id(1)).password_hash
        assert upgraded.startswith("scrypt$")  # re-hashed with our KDF at this first login
        again = await live.connect()
        assert (await again.login_password("alice", cim_client.md5_password("secret"))).result_code == 200
        assert (await live.core.store.user_by_id(1)).password_hash == upgraded
        bob = await live.login("bobby", "hunter22")
        assert (await (await live.connect()).login_password("erin8", md5hex(""))).result_code != 200

        history = await client.history(2)
        assert [m.server_msg_id for m in history.msg_list] == [1, 2, 3, 4, 5]
        assert [m.msg_data for m in history.msg_list][:2] == [b"hi bob", b"hi alice"]
        pushed_to_bob = bob.next_push(Cmd.MSG_DATA)
        ack = await client.send_message(2, "back on the new server")
        assert ack.server_msg_id == 6  # the next dense id of the conversation
        cmd, _, pushed = await pushed_to_bob
        assert (cmd, pushed.server_msg_id, pushed.msg_data) == (Cmd.MSG_DATA, 6, b"back on the new server")
        ack = await client.send_message(10, "still a team", session_type=GROUP)
        assert ack.server_msg_id == 5
        listed = {s.session_id for s in (await client.sessions()).contact_session_list}
        assert {2, 10} <= listed and 3 not in listed  # carol's chat stays off alice's list...
        ack = await client.send_message(3, "hi carol")
        assert ack.server_msg_id == 2
        assert 3 in {s.session_id for s in (await client.sessions()).contact_session_list}  # ...until a new one
        ack = await bob.send_message(12, "orphans again", session_type=GROUP)
        assert ack.server_msg_id == 2
        # New accounts and groups get ids past the imported ones.
        assert await live.register("grace") == 9
        created = await client.request(
            Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="new", member_id_list=[2])
        )
        assert created.result_code == 200 and created.group_info.group_id == 14
        latest = await bob.latest_msg_id(1)
        assert latest.latest_msg_id == "6"
        recent = await bob.sessions()
        peers = {s.session_id: s for s in recent.contact_session_list if s.session_type == SINGLE}
        assert peers[1].server_msg_id == 6 and 5 in peers  # dave's entry, imported from im_session
    finally:
        await stop_node(live)


def without(data: dict, table: str, key, column: int) -> dict:
    """``data`` with one cell blanked (a value a test expects to differ)."""
    rows = [r[:column] + (None,) + r[column + 1 :] if r[0] == key else r for r in data[table]]
    return {**data, table: rows}


@pytest_twisted.ensureDeferred
async def test_a_second_run_writes_nothing_twice_and_brings_what_was_added(old_db, cli):
    dsn, old = old_db
    first = cli.run_import(dsn)
    before = await dump(cli.settings)
    assert cli("user", "passwd", "bobby", "--password", "changed-since").returncode == 0

    second = cli.run_import(dsn)
    assert second["complete"] and not second["resumed"]
    assert all(phase["new"] == 0 for phase in second["phases"].values()), second["phases"]
    assert second["phases"]["users"]["existing"] == 5 and second["phases"]["groups"]["existing"] == 4
    assert second["problems"] == first["problems"]  # recorded once, not once per run
    after = await dump(cli.settings)
    assert without(after, "users", 2, 3) == without(before, "users", 2, 3)
    bobby = by_key(after["users"])[2][3]
    assert bobby.startswith("scrypt$") and verify_password(md5hex("changed-since"), bobby)  # not put back

    # The old server was still running: what it wrote since comes over with the next run.
    old.user(9, "frank9", "frank-pw")
    old.direct(6, 1, 2, "one more")
    old.group(14, "late", 9, [9, 1])
    old.grouped(1, 9, 14, "first in late")
    third = cli.run_import(dsn)
    assert third["phases"]["users"] == {"new": 1, "existing": 5, "refused": 0}
    assert third["phases"]["groups"] == {"new": 1, "existing": 4, "refused": 0}
    assert sum(p["new"] for name, p in third["phases"].items() if name.startswith("messages:")) == 2
    latest = await dump(cli.settings)
    assert len(latest["messages"]) == len(after["messages"]) + 2
    assert by_key(latest["conversations"])["p:1:2"][2] == 6
    assert by_key(latest["chat_groups"])[14][3] == 9


@pytest_twisted.ensureDeferred
async def test_an_interrupted_import_resumes_where_it_stopped(old_db, cli, deployment, tmp_path):
    dsn, _ = old_db
    stopped = cli.run_import(dsn, "--batch", "1", "--stop-after-messages", "3", status=3)
    assert not stopped["complete"]
    partial = await dump(cli.settings)
    assert len(partial["users"]) == 5 and len(partial["messages"]) == 3

    resumed = cli.run_import(dsn, "--batch", "1")
    assert resumed["complete"] and resumed["resumed"]
    straight = Cli(tmp_path / "straight", deployment("straight"))
    expected = straight.run_import(dsn)
    assert resumed["problems"] == expected["problems"]
    assert await dump(cli.settings) == await dump(straight.settings)


def progress_of(settings: dict) -> dict[str, int]:
    """The import's checkpoints, read beside the running command (SQLite read-only, or psycopg)."""
    sql = "SELECT phase, position FROM import_progress"
    try:
        if settings.get("storage.backend") == "postgres":
            import psycopg

            with psycopg.connect(settings["storage.dsn"], autocommit=True) as conn:
                return dict(conn.execute(sql).fetchall())
        import sqlite3

        path = Path(settings["server.data_dir"]) / "coffeechat.sqlite3"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(conn.execute(sql).fetchall())
        finally:
            conn.close()
    except Exception:  # not there yet (no database, no table)
        return {}


@pytest_twisted.ensureDeferred
async def test_an_import_killed_midway_resumes_and_ends_as_one_straight_run(old_db, cli, deployment, tmp_path):
    dsn, old = old_db
    old.cur.executemany(
        "INSERT INTO im_message_recv_2 (msg_id, client_msg_id, from_id, to_id, group_id, msg_type, msg_content, "
        "created, updated) VALUES (%s, %s, 1, 2, 0, 1, %s, %s, %s)",
        [(seq, f"bulk-{seq}", f"message {seq}", T0 + 5000 + seq, T0 + 5000 + seq) for seq in range(6, 3006)],
    )
    process = subprocess.Popen(
        cli.argv("import", "coffeechat-v1", "--mysql", dsn, "--batch", "5"), cwd=cli.root, env=cli.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(k.startswith("messages:") for k in progress_of(cli.settings)):
            assert process.poll() is None and time.monotonic() < deadline, "the import ended before it was killed"
            time.sleep(0.005)
    finally:
        process.kill()  # SIGKILL: no clean-up of any kind
        process.wait(30)
    at_kill = progress_of(cli.settings)
    assert "done" not in at_kill and any(k.startswith("messages:") for k in at_kill)

    resumed = cli.run_import(dsn, "--batch", "50")
    assert resumed["complete"] and resumed["resumed"]
    straight = Cli(tmp_path / "straight", deployment("straight"))
    straight.run_import(dsn)
    got = await dump(cli.settings)
    assert got == await dump(straight.settings)
    assert by_key(got["conversations"])["p:1:2"][2] == 3005


def test_losing_the_old_database_midway_is_a_one_line_error_and_keeps_what_was_done(mariadb_server, tmp_path):  # noqa: F811
    """The MySQL server goes away during the import (a server of this test's own, killed)."""
    own = MariaDBServer(mariadb_server.server, mariadb_server.install)
    try:
        own.start()
        name = own.database()
        conn = own.connect(name)
        old = OldServer(conn)
        fill(old)
        old.cur.executemany(
            "INSERT INTO im_message_recv_2 (msg_id, client_msg_id, from_id, to_id, group_id, msg_type, msg_content, "
            "created, updated) VALUES (%s, %s, 1, 2, 0, 1, %s, %s, %s)",
            [(seq, f"bulk-{seq}", f"message {seq}", T0 + seq, T0 + seq) for seq in range(6, 3006)],
        )
        conn.close()
        cli = Cli(tmp_path, {})
        process = subprocess.Popen(
            cli.argv("import", "coffeechat-v1", "--mysql", own.dsn(name), "--batch", "5"), cwd=cli.root, env=cli.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not any(k.startswith("messages:") for k in progress_of(cli.settings)):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.005)
        own.process.kill()  # the old database's server dies under the import
        out, err = process.communicate(timeout=120)
    finally:
        own.stop()
    assert process.returncode == 1, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "reading the MySQL database failed" in err, err
    assert "done" not in progress_of(cli.settings)  # what was committed stays, for the next run


def test_what_cannot_be_imported_is_refused_in_one_line(mariadb_server, old_db, tmp_path):  # noqa: F811
    dsn, _ = old_db
    cli = Cli(tmp_path, {})
    run = lambda *more: refused(cli("import", "coffeechat-v1", *more))  # noqa: E731
    assert "--mysql" in run("--mysql", "postgres://root@127.0.0.1/x")
    assert "--batch" in run("--mysql", dsn, "--batch", "0")
    assert "cannot connect to MySQL" in run("--mysql", f"mysql://root@127.0.0.1:{free_port()}/x")
    assert "cannot connect to MySQL" in run("--mysql", mariadb_server.dsn("no_such_database"))
    empty = mariadb_server.database()
    assert "not a CoffeeChat v1 database" in run("--mysql", mariadb_server.dsn(empty))
    in_memory = Cli(tmp_path / "memory", {"storage.backend": "memory"})
    assert '"memory"' in refused(in_memory("import", "coffeechat-v1", "--mysql", dsn))
    assert cli("user", "add", "someone", "--password", "pw").returncode == 0
    assert "accounts already" in run("--mysql", dsn)


def test_a_terminal_sees_a_progress_bar(old_db, tmp_path):
    dsn, _ = old_db
    cli = Cli(tmp_path, {})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the pty closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            cli.argv("import", "coffeechat-v1", "--mysql", dsn), cwd=cli.root, env=cli.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=slave, timeout=300,
        )  # fmt: skip
    finally:
        os.close(slave)
    reader.join(10)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0
    assert "users: 100%" in terminal and "messages:im_message_recv_2: 100%" in terminal, terminal
    assert "7/7" in terminal  # the rows of im_message_recv_2
    assert "\r" in terminal and "%" not in done.stdout.decode()  # redrawn in place, on stderr only
    summary = done.stdout.decode().splitlines()
    assert summary[0] == "import from coffeechat-v1: complete"
    assert "not mapped: bad_user_name (1)" in summary and "    4: 'x!' is not 5-32 of A-Z a-z 0-9 _ . @ -" in summary


def test_the_driver_stays_in_the_import_command():
    """PyMySQL is the operator tool's, loaded when an import runs: the server never imports it."""
    code = "import sys, coffeechat.admin, coffeechat.service, coffeechat.ops.import_v1; print('pymysql' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
    users = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "coffeechat").rglob("*.py"))
        if "pymysql" in path.read_text()
    ]
    assert users == ["coffeechat/ops/import_v1.py"]
