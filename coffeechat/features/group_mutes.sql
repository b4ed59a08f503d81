-- The group_mutes feature's table (coffeechat/features/group_mutes.py; format: coffeechat/sql.py).

-- migration 1: who is muted in which group until when (unix seconds), by whom; a row whose
-- muted_until has passed is a mute that ended by itself (nobody sweeps it: it is overwritten by
-- the next mute, or dropped when the member leaves or the mute is lifted)
CREATE TABLE group_mutes (
    group_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    muted_until BIGINT NOT NULL,
    muted_by BIGINT NOT NULL,
    muted_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
