-- The analytics feature's tables (coffeechat/features/analytics.py; format: coffeechat/sql.py).
-- Days are UTC day numbers (unix seconds // 86400).

-- migration 1: daily rollups kept forever, one counter per (day, metric, dimension): what the
-- admin API and the CSV export read, a primary-key range per period; the all-time totals; the
-- messages of each group per day (indexed for the day's top groups); and which users were active
-- on which day, kept for 60 days only, so that a user is counted once per day and MAU exactly
CREATE TABLE analytics_daily (
    day INTEGER NOT NULL,
    metric TEXT NOT NULL,
    dim TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (day, metric, dim)
);
CREATE TABLE analytics_totals (
    metric TEXT NOT NULL,
    dim TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (metric, dim)
);
CREATE TABLE analytics_group_daily (
    day INTEGER NOT NULL,
    group_id BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    PRIMARY KEY (day, group_id)
);
CREATE INDEX analytics_group_daily_top ON analytics_group_daily (day, messages);
CREATE TABLE analytics_active (
    user_id BIGINT NOT NULL,
    day INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX analytics_active_day ON analytics_active (day);
