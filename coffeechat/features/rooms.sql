-- The rooms feature's tables (coffeechat/features/rooms.py; format: coffeechat/sql.py).

-- migration 1: rooms, their moderators, mutes and bans, and their messages
-- Nothing is kept per member: membership is per connection, in memory.  closed_at 0: open.
-- room_sanctions: kind 1 mute, 3 ban (CIMRoomAction), until 0: no end.  room_messages holds a
-- room's last [rooms] recent messages, or all of them when persist_history is set.
CREATE TABLE rooms (
    room_id {{identity}},
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    owner_id BIGINT NOT NULL,
    max_members INTEGER NOT NULL,
    persist_history BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX rooms_owner ON rooms (owner_id, closed_at);
CREATE TABLE room_roles (
    room_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    role SMALLINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
) {{without_rowid}};
CREATE TABLE room_sanctions (
    room_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    kind SMALLINT NOT NULL,
    until BIGINT NOT NULL,
    by_user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, kind)
) {{without_rowid}};
CREATE TABLE room_messages (
    room_id BIGINT NOT NULL,
    msg_id BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    sender_id BIGINT NOT NULL,
    nick TEXT NOT NULL,
    role SMALLINT NOT NULL,
    msg_type SMALLINT NOT NULL,
    data {{bytes}} NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, msg_id)
) {{without_rowid}};
