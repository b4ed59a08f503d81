-- The group_tags feature's tables (coffeechat/features/group_tags.py; format: coffeechat/sql.py).

-- migration 1: a group's custom fields (JSON object text), whether anyone may find it by tag,
-- and who changed them when; its tags one row each, keyed (tag, group_id) for the search by tag
-- (an index range scan, paged by group id), indexed by group for reading a group's tags
CREATE TABLE group_tag_sets (
    group_id BIGINT NOT NULL PRIMARY KEY,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    discoverable BOOLEAN NOT NULL DEFAULT FALSE,
    updated_by BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE group_tags (
    tag TEXT NOT NULL,
    group_id BIGINT NOT NULL,
    position SMALLINT NOT NULL,
    PRIMARY KEY (tag, group_id)
) WITHOUT ROWID;
CREATE INDEX group_tags_group ON group_tags (group_id, position);

-- migration 1 postgres
CREATE TABLE group_tag_sets (
    group_id BIGINT NOT NULL PRIMARY KEY,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    discoverable BOOLEAN NOT NULL DEFAULT FALSE,
    updated_by BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE group_tags (
    tag TEXT COLLATE "C" NOT NULL,
    group_id BIGINT NOT NULL,
    position SMALLINT NOT NULL,
    PRIMARY KEY (tag, group_id)
);
CREATE INDEX group_tags_group ON group_tags (group_id, position);
