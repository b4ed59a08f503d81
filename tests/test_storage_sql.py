"""The pieces under the SQL backends, without a database: the dialect conversion, the splitting
of migration scripts, and the group rules."""

from __future__ import annotations

import pytest

from coffeechat import grouprules
from coffeechat.backends.sql.engine import PostgresTransaction, SQLiteTransaction, postgres_sql, sqlite_sql
from coffeechat.backends.sql.migrations import core_migrations, sqlite_statements
from coffeechat.interfaces import GroupForbidden, GroupFull, GroupNotFound, NotGroupMember, TooManyGroups
from coffeechat.model import Group, GroupMember, GroupRole, MuteModel
from coffeechat.testing.conformance import new_message


def test_placeholders_and_percent_signs_for_psycopg():
    assert postgres_sql("SELECT a FROM t WHERE b = ? AND c LIKE 'x%' LIMIT ?") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%' LIMIT %s"
    )
    # a ? inside a string, a quoted name or a comment is not a placeholder
    assert postgres_sql("SELECT '?', \"we?ird\" -- why?\nFROM t WHERE a = ?") == (
        "SELECT '?', \"we?ird\" -- why?\nFROM t WHERE a = %s"
    )
    assert postgres_sql("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', %s"


def test_greatest_least_and_for_update_for_sqlite():
    assert sqlite_sql("UPDATE t SET a = GREATEST(a, LEAST(?, b)) WHERE c = ?") == (
        "UPDATE t SET a = max(a, min(?, b)) WHERE c = ?"
    )
    assert sqlite_sql("SELECT greatest (a, b), 'GREATEST(' FROM t") == "SELECT max(a, b), 'GREATEST(' FROM t"
    assert sqlite_sql("SELECT k FROM t WHERE a <= ? LIMIT ? FOR UPDATE SKIP LOCKED)") == (
        "SELECT k FROM t WHERE a <= ? LIMIT ?)"
    )
    assert postgres_sql("SELECT GREATEST(a, ?) FROM t FOR UPDATE") == "SELECT GREATEST(a, %s) FROM t FOR UPDATE"


def test_conversions_are_cached_by_text():
    sql = "SELECT GREATEST(x, ?) FROM cached_t"
    assert sqlite_sql(sql) is sqlite_sql(sql)
    assert postgres_sql(sql) is postgres_sql(sql)


def test_in_list_is_one_parameter_whatever_the_length():
    for values in ([], [1], [1, 2, 3]):
        clause, params = SQLiteTransaction.in_list("user_id", values)
        assert clause == "user_id IN (SELECT value FROM json_each(?))" and len(params) == 1
        clause, params = PostgresTransaction.in_list("user_id", values)
        assert clause == "user_id = ANY(?)" and params == [values]
    assert SQLiteTransaction.in_list("h", ["a", "b"])[1] == ['["a", "b"]']


def test_sqlite_statements_split_safely():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT 'a;b');
    /* another; comment */
    CREATE TRIGGER a_t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 'c;d';
        SELECT 1;
    END;
    INSERT INTO a VALUES ('-- not a comment')
    """
    statements = sqlite_statements(script)
    assert len(statements) == 3
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert "SELECT 1;" in statements[1] and statements[1].endswith("END;")
    assert statements[2].startswith("INSERT INTO a VALUES ('-- not a comment')")
    assert sqlite_statements("-- nothing here\n") == ()
    with pytest.raises(ValueError, match="incomplete"):
        sqlite_statements("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;")


def test_core_migrations_keep_the_numbers_existing_databases_have():
    """Both engines' databases say 3: 1 and 2 meant different steps per engine."""
    steps = core_migrations()
    assert [m.version for m in steps] == [1, 2, 3]
    assert "chat_groups" not in steps[0].sql_for("sqlite") and "chat_groups" in steps[0].sql_for("postgres")
    assert "chat_groups" in steps[1].sql_for("sqlite") and "coffeechat_append" in steps[1].sql_for("postgres")
    assert steps[2].sql_for("sqlite") == steps[2].sql_for("postgres")


# ---- grouprules ---------------------------------------------------------------------------------


def _group(**changes) -> Group:
    fields = {"group_id": 5, "name": "g", "group_type": 1, "owner_id": 1, "created_at": 0, "updated_at": 0}
    fields["member_count"] = 3
    fields.update(changes)
    return Group(**fields)


def _member(user_id: int, role: int = GroupRole.MEMBER, join_no: int = 1) -> GroupMember:
    return GroupMember(5, user_id, int(role), 0, 1, join_no)


def test_founding_members_and_limits():
    assert grouprules.founding_members(1, [2, 1, 3, 2], 3) == [(1, 3), (2, 1), (3, 1)]
    with pytest.raises(GroupFull):
        grouprules.founding_members(1, [2, 3, 4], 3)
    with pytest.raises(GroupFull):
        grouprules.check_room(_group(member_count=3), 1, 3)
    grouprules.check_group_counts([1, 2], {1: 5}, 0)  # 0: no limit
    with pytest.raises(TooManyGroups) as refused:
        grouprules.check_group_counts([1, 2, 3], {1: 2, 3: 1}, 2)
    assert refused.value.user_ids == [1]


def test_acting_and_removing():
    with pytest.raises(GroupNotFound):
        grouprules.live_group(_group(dismissed=True), 5)
    with pytest.raises(GroupNotFound):
        grouprules.live_group(None, 5)
    with pytest.raises(NotGroupMember):
        grouprules.check_actor(None, 5, 9, GroupRole.MEMBER)
    with pytest.raises(GroupForbidden):
        grouprules.check_actor(_member(2), 5, 2, GroupRole.ADMIN)
    with pytest.raises(GroupForbidden):
        grouprules.check_removable([_member(2), _member(3, GroupRole.ADMIN)], GroupRole.ADMIN)
    grouprules.check_removable([_member(3, GroupRole.ADMIN)], 0)
    # the owner's hand-over goes to the longest-standing member, admins get no precedence
    heir = grouprules.successor([_member(4, GroupRole.ADMIN, join_no=7), _member(3, join_no=2)])
    assert (heir.user_id, heir.role, heir.join_no) == (3, GroupRole.OWNER, 2)
    assert grouprules.empties_group(_group(member_count=2), [_member(1), _member(2)])
    assert grouprules.owner_removed(_group(), [_member(1, GroupRole.OWNER)])
    changed = grouprules.role_changes([_member(1, GroupRole.OWNER), _member(2), _member(3, GroupRole.ADMIN)], 2)
    assert [(m.user_id, m.role) for m in changed] == [(2, 2)]
    joined = grouprules.new_members(5, [(7, 1), (8, 1)], 100, 41, 10)
    assert [(m.user_id, m.joined_seq, m.join_no) for m in joined] == [(7, 42, 10), (8, 42, 11)]


def test_who_may_send_to_a_group():
    def refusal(group, member, **kwargs):
        return grouprules.message_refusal(group, member, new_message(2, 5, "x", session_type=2, **kwargs))

    assert isinstance(refusal(None, None), GroupNotFound)
    assert isinstance(refusal(_group(dismissed=True), _member(2)), GroupNotFound)
    assert isinstance(refusal(_group(), None), NotGroupMember)
    assert isinstance(refusal(_group(mute_model=MuteModel.ALL), _member(2)), GroupForbidden)
    assert isinstance(refusal(_group(), _member(2), at_all=True), GroupForbidden)
    assert refusal(_group(mute_model=MuteModel.ALL), _member(2, GroupRole.ADMIN), at_all=True) is None
    assert refusal(_group(), _member(2), mentions=(3,)) is None
