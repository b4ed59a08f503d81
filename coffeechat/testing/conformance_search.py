"""Conformance tests of the search feature's storage facet
(:class:`~coffeechat.features.search.ISearchStore`), for any backend: an SQL backend gets the
feature's own implementation (FTS5 on SQLite, tsvector + GIN on PostgreSQL), any other one
provides the facet from ``facet(ISearchStore)``.

Subclass :class:`SearchStoreConformanceTests` as ``Test<Something>`` and implement ``make_store``
as for :class:`~coffeechat.testing.conformance.StoreConformanceTests`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from zope.interface.verify import verifyObject

from coffeechat.model import MsgType, SessionType
from coffeechat.testing.conformance import T0, group_message, new_group, new_message


def _spec(user_id: int, query: str, limit: int = 20, **filters: Any) -> Any:
    from coffeechat.features.search import SearchSpec, parse_query

    return SearchSpec(user_id=user_id, parts=tuple(parse_query(query)), limit=limit, **filters)


class SearchStoreConformanceTests:
    """The search index: what is found, for whom, in which order, and how it follows recalls,
    deletes and the indexer's marks."""

    durable: bool = True

    def make_store(self, tmp_path: Any) -> Any:
        """Return a new, unstarted IStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of SearchStoreConformanceTests implement make_store")

    async def _open(self, tmp_path: Any) -> tuple[Any, Any]:
        from coffeechat.features.search import ISearchStore, SQLSearchStore
        from coffeechat.interfaces import ISQLDatabase
        from coffeechat.sql import load_migrations

        store = await defer.maybeDeferred(self.make_store, tmp_path)
        await store.start()
        provider = getattr(store, "facet", None)
        facet = provider(ISearchStore) if provider is not None else None
        if facet is None and ISQLDatabase.providedBy(store):
            await store.migrate("search", load_migrations(SQLSearchStore.migrations))
            facet = SQLSearchStore(store)
        assert facet is not None and verifyObject(ISearchStore, facet)
        return store, facet

    @pytest.fixture
    def stores(self, tmp_path: Any) -> Any:
        store, facet = pytest_twisted.blockon(defer.ensureDeferred(self._open(tmp_path)))
        yield store, facet
        pytest_twisted.blockon(defer.maybeDeferred(store.stop))

    async def _users(self, store: Any, *names: str) -> list[int]:
        return [(await store.create_user(name, name, "", T0)).user_id for name in names]

    async def _index_all(self, index: Any, limit: int = 1000) -> int:
        """What the indexer does: every conversation not fully indexed, until none is left."""
        written = 0
        while True:
            convs = await index.unindexed("", limit)
            if not convs:
                return written
            docs, marks, _ = await index.pending(convs, limit)
            await index.write(docs, marks)
            written += len(docs)

    async def _found(self, index: Any, user_id: int, query: str, **filters: Any) -> list[tuple[str, int]]:
        return [(m.conv, m.seq) for m in await index.search(_spec(user_id, query, **filters))]

    async def _texts(self, index: Any, user_id: int, query: str, **filters: Any) -> list[str]:
        return [m.data.decode() for m in await index.search(_spec(user_id, query, **filters))]

    @pytest_twisted.ensureDeferred
    async def test_words_are_found_casefolded_without_accents_and_by_prefix(self, stores):
        store, index = stores
        alice, bob = await self._users(store, "alice", "bobby")
        for i, text in enumerate(("Meeting at the Café tomorrow", "ｆｕｌｌ width ＡＢＣ", "nothing here", "Straße")):
            await store.append(new_message(alice, bob, f"w-{i}", data=text.encode(), at=T0 + i))
        assert await self._index_all(index) == 4
        for query in ("meeting", "MEET", "cafe", "CAFÉ", "tomorrow café", "full abc", "strasse"):
            assert len(await self._found(index, bob, query)) == 1, query
        assert await self._found(index, bob, "meeting nothing") == []  # every word must match
        assert await self._found(index, bob, "eeting") == []  # prefixes, not substrings
        assert await self._texts(index, alice, "here") == ["nothing here"]

    @pytest_twisted.ensureDeferred
    async def test_cjk_is_found_by_any_two_consecutive_characters_and_single_ones(self, stores):
        store, index = stores
        alice, bob = await self._users(store, "alice", "bobby")
        texts = ("我们明天开会吧", "今天天气很好", "会议室在三楼 room 301")
        texts += ("東京タワーに行きたい", "안녕하세요 여러분", "猫")
        for i, text in enumerate(texts):
            await store.append(new_message(alice, bob, f"c-{i}", data=text.encode(), at=T0 + i))
        await self._index_all(index)
        assert await self._texts(index, bob, "明天") == ["我们明天开会吧"]
        assert await self._texts(index, bob, "明天开会") == ["我们明天开会吧"]
        assert await self._texts(index, bob, "开明") == []  # the characters, but not together
        assert await self._texts(index, bob, "会议 301") == ["会议室在三楼 room 301"]
        assert await self._texts(index, bob, "タワー") == ["東京タワーに行きたい"]
        assert await self._texts(index, bob, "안녕") == ["안녕하세요 여러분"]
        assert await self._texts(index, bob, "猫") == ["猫"]  # a one-character run
        # one character: where it stands alone or starts a pair (天开, 天天, 天气; not the end of 明天)
        assert sorted(await self._texts(index, bob, "天")) == ["今天天气很好", "我们明天开会吧"]
        assert await self._texts(index, bob, "吧") == []

    @pytest_twisted.ensureDeferred
    async def test_what_is_indexed_texts_custom_descriptions_and_file_names(self, stores):
        store, index = stores
        alice, bob = await self._users(store, "alice", "bobby")
        bodies = [
            (MsgType.TEXT, b"plain words"),
            (100, json.dumps({"description": "red packet", "text": "lucky money", "amount": 88}).encode()),
            (MsgType.FILE, json.dumps({"url": "https://x/y", "name": "quarterly-report.pdf"}).encode()),
            (MsgType.IMAGE, json.dumps({"url": "https://x/words.png", "name": "words"}).encode()),
            (12, json.dumps({"title": "Chat history: Alice", "records": [{"content": "budget 2027"}]}).encode()),
        ]
        for i, (msg_type, data) in enumerate(bodies):
            await store.append(new_message(alice, bob, f"t-{i}", data=data, msg_type=msg_type, at=T0 + i))
        assert await self._index_all(index) == 4  # not the image
        assert await self._found(index, bob, "words") == [(f"p:{alice}:{bob}", 1)]
        assert [s for _, s in await self._found(index, bob, "lucky")] == [2]
        assert [s for _, s in await self._found(index, bob, "packet")] == [2]
        assert [s for _, s in await self._found(index, bob, "quarterly report")] == [3]
        assert [s for _, s in await self._found(index, bob, "pdf", msg_type=int(MsgType.FILE))] == [3]
        assert await self._found(index, bob, "88") == []  # only the description and text fields
        assert [s for _, s in await self._found(index, bob, "budget history")] == [5]  # a chat record

    @pytest_twisted.ensureDeferred
    async def test_only_conversations_the_user_may_read_and_groups_from_their_join(self, stores):
        store, index = stores
        alice, bob, carol, dave = await self._users(store, "alice", "bobby", "carol", "daveo")
        await store.append(new_message(alice, bob, "p-1", data=b"secret plan"))
        group = await new_group(store, alice, [bob])
        await store.append(group_message(alice, group.group_id, "g-1", data=b"group plan early", at=T0 + 1))
        await store.add_members(group.group_id, alice, 1, [carol], T0 + 2, 200, 0)
        await store.append(group_message(alice, group.group_id, "g-2", data=b"group plan late", at=T0 + 3))
        await self._index_all(index)
        assert await self._texts(index, bob, "plan") == ["group plan late", "group plan early", "secret plan"]
        assert await self._texts(index, carol, "plan") == ["group plan late"]  # joined after the first
        assert await self._texts(index, dave, "plan") == []
        await store.remove_members(group.group_id, bob, 0, [bob], T0 + 4)  # bob leaves
        assert await self._texts(index, bob, "plan") == ["secret plan"]
        await store.dismiss_group(group.group_id, alice, 3, T0 + 5)
        assert await self._texts(index, carol, "plan") == []

    @pytest_twisted.ensureDeferred
    async def test_recalled_messages_are_not_found(self, stores):
        from coffeechat.features.recall import IRecallStore, SQLRecallStore
        from coffeechat.sql import load_migrations

        store, index = stores
        provider = getattr(store, "facet", None)
        recalls = provider(IRecallStore) if provider is not None else None
        if recalls is None:
            await store.migrate("recall", load_migrations(SQLRecallStore.migrations))
            recalls = SQLRecallStore(store)
        alice, bob = await self._users(store, "alice", "bobby")
        first = (await store.append(new_message(alice, bob, "r-1", data=b"oops secret"))).message
        second = (await store.append(new_message(alice, bob, "r-2", data=b"another secret", at=T0 + 1))).message
        await self._index_all(index)
        await recalls.recall(first.conv, first.seq, alice, T0 - 60, T0 + 5)
        await index.remove(first.conv, [first.seq])
        assert await self._found(index, bob, "secret") == [(second.conv, second.seq)]
        # recalled after it was indexed and before the index heard of it: still never a hit
        await recalls.recall(second.conv, second.seq, alice, T0 - 60, T0 + 6)
        assert await self._found(index, bob, "secret") == []
        assert await self._index_all(index) == 0

    @pytest_twisted.ensureDeferred
    async def test_deleted_and_cleared_messages_are_left_out_for_that_user_only(self, stores):
        store, index = stores
        alice, bob = await self._users(store, "alice", "bobby")
        for i in range(1, 6):
            await store.append(new_message(alice, bob, f"d-{i}", data=f"note {i}".encode(), at=T0 + i))
        await self._index_all(index)
        conv = f"p:{alice}:{bob}"
        await index.hide(bob, conv, [5, 4, 4])
        assert [s for _, s in await self._found(index, bob, "note")] == [3, 2, 1]
        assert [s for _, s in await self._found(index, alice, "note")] == [5, 4, 3, 2, 1]
        await index.clear(bob, conv, 2)
        await index.clear(bob, conv, 1)  # a mark never moves back
        assert [s for _, s in await self._found(index, bob, "note")] == [3]
        await store.append(new_message(alice, bob, "d-6", data=b"note 6", at=T0 + 6))
        await self._index_all(index)
        assert [s for _, s in await self._found(index, bob, "note")] == [6, 3]

    @pytest_twisted.ensureDeferred
    async def test_forgetting_a_user_erases_what_they_hid_and_cleared_only(self, stores):
        store, index = stores
        alice, bob = await self._users(store, "alice", "bobby")
        for i in range(1, 5):
            await store.append(new_message(alice, bob, f"f-{i}", data=f"memo {i}".encode(), at=T0 + i))
        await self._index_all(index)
        conv = f"p:{alice}:{bob}"
        await index.hide(bob, conv, [4])
        await index.clear(bob, conv, 1)
        await index.hide(alice, conv, [2])
        await index.forget_user(bob)
        assert [s for _, s in await self._found(index, bob, "memo")] == [4, 3, 2, 1]
        assert [s for _, s in await self._found(index, alice, "memo")] == [4, 3, 1]  # hers stay
        await index.forget_user(bob)

    @pytest_twisted.ensureDeferred
    async def test_newest_first_filters_and_cursor_pages(self, stores):
        store, index = stores
        alice, bob, carol = await self._users(store, "alice", "bobby", "carol")
        await store.append(new_message(alice, bob, "o-1", data=b"status one", at=T0 + 10))
        await store.append(new_message(bob, alice, "o-2", data=b"status two", at=T0 + 20))
        await store.append(new_message(carol, bob, "o-3", data=b"status three", at=T0 + 20))
        await store.append(new_message(bob, carol, "o-4", data=b"status four", at=T0 + 30))
        await self._index_all(index)
        everything = await index.search(_spec(bob, "status"))
        assert [m.data for m in everything] == [b"status four", b"status three", b"status two", b"status one"]
        # the same second: conv then seq, descending, so pages never skip nor repeat
        pages, after = [], None
        while True:
            page = await index.search(_spec(bob, "status", limit=1, after=after))
            if not page:
                break
            pages.append(page[0].data)
            after = (page[0].created_at, page[0].conv, page[0].seq)
        assert pages == [m.data for m in everything]
        assert await self._texts(index, bob, "status", sender_id=alice) == ["status one"]
        assert await self._texts(index, bob, "status", start_time=T0 + 20, end_time=T0 + 30) == [
            "status three",
            "status two",
        ]
        conv = f"p:{alice}:{bob}"
        assert await self._texts(index, bob, "status", conv=conv) == ["status two", "status one"]
        assert await self._texts(index, bob, "status", conv=conv, first_seq=2) == ["status two"]
        assert await self._texts(index, bob, "status", session_type=int(SessionType.GROUP)) == []

    @pytest_twisted.ensureDeferred
    async def test_the_indexer_marks_resume_where_it_stopped_and_never_index_twice(self, stores):
        store, index = stores
        alice, bob, carol = await self._users(store, "alice", "bobby", "carol")
        for i in range(5):
            await store.append(new_message(alice, bob, f"m-{i}", data=f"word {i}".encode(), at=T0 + i))
        await store.append(new_message(alice, carol, "m-c", data=b"word c"))
        convs = await index.unindexed("", 10)
        assert convs == sorted([f"p:{alice}:{bob}", f"p:{alice}:{carol}"])
        assert await index.unindexed(convs[0], 10) == convs[1:]  # paged by key
        docs, marks, more = await index.pending(convs, 3)  # a budget of 3 messages
        assert [d.seq for d in docs] == [1, 2, 3] and marks == {convs[0]: 3} and more == convs
        await index.write(docs, marks)
        await index.write(docs, {convs[0]: 1})  # again, and an older mark: nothing changes
        docs, marks, more = await index.pending(convs, 10)
        assert [(d.conv, d.seq) for d in docs] == [(convs[0], 4), (convs[0], 5), (convs[1], 1)]
        assert more == []
        await index.write(docs, marks)
        assert await index.unindexed("", 10) == []
        assert len(await self._found(index, bob, "word")) == 5
        assert len(await self._found(index, carol, "word")) == 1

    @pytest_twisted.ensureDeferred
    async def test_the_index_and_its_marks_survive_a_restart(self, tmp_path):
        if not self.durable:
            pytest.skip("this backend keeps nothing across a restart")
        store, index = await self._open(tmp_path)
        try:
            alice, bob = await self._users(store, "alice", "bobby")
            await store.append(new_message(alice, bob, "k-1", data=b"kept"))
            await self._index_all(index)
            await store.append(new_message(alice, bob, "k-2", data=b"kept too", at=T0 + 1))
        finally:
            await store.stop()
        store, index = await self._open(tmp_path)
        try:
            assert len(await self._found(index, bob, "kept")) == 1
            assert await index.unindexed("", 10) == [f"p:{alice}:{bob}"]
            docs, _, _ = await index.pending([f"p:{alice}:{bob}"], 10)
            assert [d.seq for d in docs] == [2]
        finally:
            await store.stop()
