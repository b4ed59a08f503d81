"""Moderation: a before-send callback to the app's server, and a built-in keyword filter.

Both are off by default, and then this feature registers nothing on the message path (its cost
is zero).  Configured, it adds one send check per conversation kind (``Messages.add_send_check``),
which runs after the other features' checks (blocks, friendship, mutes: moderation is last in
DEFAULT_FEATURES) and before the message is stored.  The rooms feature, when moderation is
enabled, runs the same check on room messages (``room_check``: the filter always, the callback
when ``[moderation] rooms`` is on):

1. the keyword filter (``[moderation] keywords`` / ``keywords_file``): TEXT messages and the text
   fields of CUSTOM (100) JSON, matched case-insensitively after NFKC + casefold by one
   Aho–Corasick automaton, replaced by a character or refused;
2. the callback (``[moderation] callback_url``): a POST signed per Standard Webhooks, answered
   allow / refuse (with a reason the sender sees) / rewrite (a new body, validated as a client's
   would be), within ``timeout``; a failure, a timeout, or more than ``max_in_flight`` calls at once
   follow ``on_failure`` ("allow": fail-open, "refuse": fail-closed with MODERATION_UNAVAILABLE).

A resend of the same client_msg_id is charged once: while its first copy's callback is pending
the resend waits for the same answer, and a recent verdict is remembered (bounded, for
``verdict_ttl``), so that the app's server is asked once and a stored message is never refused
on its resend.  docs/moderation.md is the guide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import Outgoing, check_content
from coffeechat.model import MsgType, SessionType, User
from coffeechat.modules import ModuleAPI
from coffeechat.ratelimit import SummaryLog
from coffeechat.schema import pb

log = Logger()

CUSTOM = pb.kCIM_MSG_TYPE_CUSTOM
_TEXT = int(MsgType.TEXT)
SESSION_KINDS = {"single": int(SessionType.SINGLE), "group": int(SessionType.GROUP)}
ROOM = 0  # the callback's session_type of a room message (rooms are not CIM sessions): kind "room"
KIND_NAMES = {int(SessionType.SINGLE): "single", int(SessionType.GROUP): "group", ROOM: "room"}
MSG_TYPE_NAMES = {
    "text": int(MsgType.TEXT),
    "file": int(MsgType.FILE),
    "image": int(MsgType.IMAGE),
    "audio": int(MsgType.AUDIO),
    "video": int(MsgType.VIDEO),
    "location": int(MsgType.LOCATION),
    "tips": int(MsgType.TIPS),
    "avchat": int(MsgType.AVCHAT),
    "custom": CUSTOM,
}
MAX_REASON_CHARS = 200  # of a refusal's reason, as the sender is shown it
MAX_ANSWER_BYTES = 256 * 1024  # of the callback's answer; more is a failure
MAX_KEYWORDS = 50_000
MAX_KEYWORD_CHARS = 100


@dataclass
class Config:
    """[moderation]: the before-send callback and the keyword filter (both off while empty)."""

    callback_url: str = ""  # http(s) URL of the app's server; "" = no callback
    secret: str = ""  # whsec_<base64>: the Standard Webhooks signing secret (required with a URL)
    timeout: float = 1.0  # seconds for the whole answer
    on_failure: str = "allow"  # "allow" (fail-open) or "refuse" (fail-closed: MODERATION_UNAVAILABLE)
    session_types: list[str] = field(default_factory=lambda: ["single", "group"])
    rooms: bool = True  # the callback is asked about room messages too (the keyword filter always is)
    msg_types: list[str] = field(default_factory=list)  # names ("text", "custom" ...) or numbers; [] = all
    max_in_flight: int = 200  # callbacks waiting for an answer at once; beyond: the failure policy
    max_connections: int = 20  # persistent (reused) connections to the app's server
    verdict_ttl: float = 600.0  # seconds a verdict is remembered for resends of the same client_msg_id
    verdict_cache: int = 50_000  # verdicts remembered at most
    keywords: list[str] = field(default_factory=list)
    keywords_file: str = ""  # UTF-8, one keyword per line; "#" starts a comment line
    keyword_action: str = "replace"  # "replace" or "refuse"
    replacement: str = "*"  # one character, repeated for each character of a match
    keyword_reason: str = "the message contains a blocked word"  # what the sender sees (refuse)
    custom_fields: list[str] = field(default_factory=list)  # CUSTOM JSON keys filtered; [] = every string

    def validate(self) -> None:
        if self.callback_url:
            if not self.callback_url.startswith(("http://", "https://")):
                raise ConfigError("moderation.callback_url must be an http:// or https:// URL")
            if not self.secret:
                raise ConfigError("moderation.secret is required with a callback_url (whsec_<base64>)")
        if self.secret:
            _signer(self.secret)
        if not 0 < self.timeout <= 30:
            raise ConfigError("moderation.timeout must be between 0 and 30 seconds")
        if self.on_failure not in ("allow", "refuse"):
            raise ConfigError("moderation.on_failure must be 'allow' or 'refuse'")
        for kind in self.session_types:
            if kind not in SESSION_KINDS:
                raise ConfigError(f"moderation.session_types: {kind!r} is not 'single' or 'group'")
        msg_type_numbers(self.msg_types)
        for name in ("max_in_flight", "max_connections", "verdict_cache"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"moderation.{name} must be > 0")
        if self.verdict_ttl < 0:
            raise ConfigError("moderation.verdict_ttl must be >= 0")
        if self.keyword_action not in ("replace", "refuse"):
            raise ConfigError("moderation.keyword_action must be 'replace' or 'refuse'")
        if len(self.replacement) != 1:
            raise ConfigError("moderation.replacement must be one character")
        if not self.keyword_reason or len(self.keyword_reason) > MAX_REASON_CHARS:
            raise ConfigError(f"moderation.keyword_reason must be 1 to {MAX_REASON_CHARS} characters")
        if self.keywords_file and not Path(self.keywords_file).is_file():
            raise ConfigError(f"moderation.keywords_file: {self.keywords_file} is not a file")

    @property
    def callback_on(self) -> bool:
        return bool(self.callback_url)


def msg_type_numbers(names: Iterable[str]) -> frozenset[int]:
    """The msg types named in the config (names or decimal numbers)."""
    out = set()
    for name in names:
        key = name.strip().lower()
        if key in MSG_TYPE_NAMES:
            out.add(MSG_TYPE_NAMES[key])
        elif key.isascii() and key.isdigit():
            out.add(int(key))
        else:
            raise ConfigError(f"moderation.msg_types: {name!r} is not a message type ({', '.join(MSG_TYPE_NAMES)})")
    return frozenset(out)


def _signer(secret: str) -> Any:
    from standardwebhooks import Webhook

    try:
        return Webhook(secret)
    except Exception:
        raise ConfigError("moderation.secret must be whsec_ followed by base64") from None


# -- the keyword filter


def fold(text: str) -> str:
    """What keywords are matched on: NFKC, casefolded (and NFKC again: casefolding can leave a
    string that is not NFKC)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


_FOLDED: dict[str, str] = {}  # cluster -> folded, for the slow path (bounded)
MAX_FOLD_CACHE = 20_000


def _folded_with_positions(text: str) -> tuple[str, tuple[list[int], list[int]] | None]:
    """``text`` folded, and for each folded character the original characters ``[start, end)``
    it came from (None: one to one).  Folded per cluster (a character with the combining marks
    after it), so that a match maps back onto whole original characters."""
    if text.isascii():
        return text.lower(), None
    if unicodedata.is_normalized("NFKC", text):
        folded = text.casefold()
        if len(folded) == len(text) and unicodedata.is_normalized("NFKC", folded):
            return folded, None
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    cache = _FOLDED
    if not any(map(unicodedata.combining, text)):  # no clusters: character by character
        for i, char in enumerate(text):
            piece = cache.get(char)
            if piece is None:
                if len(cache) >= MAX_FOLD_CACHE:
                    cache.clear()
                piece = cache[char] = fold(char)
            parts.append(piece)
            if len(piece) == 1:
                starts.append(i)
                ends.append(i + 1)
            else:
                starts.extend([i] * len(piece))
                ends.extend([i + 1] * len(piece))
        return "".join(parts), (starts, ends)
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        cluster = text[i:j]
        piece = _FOLDED.get(cluster)
        if piece is None:
            if len(_FOLDED) >= MAX_FOLD_CACHE:
                _FOLDED.clear()
            piece = _FOLDED[cluster] = fold(cluster)
        parts.append(piece)
        if len(piece) == j - i:
            starts.extend(range(i, j))
            ends.extend(range(i + 1, j + 1))
        else:  # the folded characters all stand for the whole cluster
            starts.extend([i] * len(piece))
            ends.extend([j] * len(piece))
        i = j
    return "".join(parts), (starts, ends)


class KeywordFilter:
    """Many keywords, one pass over the text: an Aho–Corasick automaton of the folded keywords
    (a trie of dicts with failure links, in pure Python: measured faster here than pyahocorasick
    on keyword lists with many distinct first characters, such as Chinese ones; see
    docs/decisions.md).  Each state knows the longest keyword ending there, through its failure
    links too, which is all that covering the matched characters needs."""

    def __init__(self, keywords: Iterable[str], replacement: str = "*") -> None:
        self.replacement = replacement
        goto: list[dict[str, int]] = [{}]
        longest: list[int] = [0]
        seen: set[str] = set()
        for keyword in keywords:
            folded = fold(keyword.strip())
            if not folded or folded in seen:
                continue
            seen.add(folded)
            state = 0
            for char in folded:
                nxt = goto[state].get(char)
                if nxt is None:
                    nxt = len(goto)
                    goto.append({})
                    longest.append(0)
                    goto[state][char] = nxt
                state = nxt
            longest[state] = len(folded)
        self.count = len(seen)
        fail = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:  # breadth first: a state's failure link is set before its children's
            state = queue.popleft()
            for char, child in goto[state].items():
                queue.append(child)
                f = fail[state]
                while f and char not in goto[f]:
                    f = fail[f]
                target = goto[f].get(char, 0)
                fail[child] = target if target != child else 0
                if longest[fail[child]] > longest[child]:
                    longest[child] = longest[fail[child]]
        self._goto, self._fail, self._longest = goto, fail, longest

    def _matches(self, folded: str) -> Iterator[tuple[int, int]]:
        """``(start, end)`` in ``folded`` of the longest keyword ending at each position."""
        goto, fail, longest = self._goto, self._fail, self._longest
        root = goto[0]
        state = 0
        for i, char in enumerate(folded):
            while state and char not in goto[state]:
                state = fail[state]
            state = goto[state].get(char, 0) if state else root.get(char, 0)
            length = longest[state]
            if length:
                yield i + 1 - length, i + 1

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The original characters ``[start, end)`` that matches cover, merged, in order."""
        if not self.count:
            return []
        folded, where = _folded_with_positions(text)
        if where is None:
            found = sorted(self._matches(folded))
        else:
            found = sorted((where[0][start], where[1][end - 1]) for start, end in self._matches(folded))
        merged: list[tuple[int, int]] = []
        for start, end in found:
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

    def matches(self, text: str) -> bool:
        if not self.count:
            return False
        folded, _ = _folded_with_positions(text)
        return next(self._matches(folded), None) is not None

    def replace(self, text: str) -> str:
        """``text`` with every matched character replaced (the same length in characters)."""
        spans = self.spans(text)
        if not spans:
            return text
        out, last = [], 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(self.replacement * (end - start))
            last = end
        out.append(text[last:])
        return "".join(out)


def load_keywords(config: Config) -> list[str]:
    """The configured keywords: the list, then the file's lines (read once, at start)."""
    words = [w for w in config.keywords if w.strip()]
    if config.keywords_file:
        try:
            with open(config.keywords_file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"moderation.keywords_file: cannot read {config.keywords_file}: {e}") from None
        words.extend(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))
    if len(words) > MAX_KEYWORDS:
        raise ConfigError(f"moderation: at most {MAX_KEYWORDS} keywords")
    for word in words:
        if len(word) > MAX_KEYWORD_CHARS:
            raise ConfigError(f"moderation: a keyword is at most {MAX_KEYWORD_CHARS} characters: {word[:20]!r}...")
    return words


# -- the callback's verdicts

ALLOW = ("allow", None)


def _reason(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        return "the message was refused"
    return text.strip()[:MAX_REASON_CHARS]


def parse_answer(code: int, body: bytes) -> tuple[str, Any]:
    """The verdict of the app's answer: ("allow", None), ("refuse", reason), ("rewrite", bytes),
    or ("failed", why) for anything else (a non-2xx status, not the JSON we document)."""
    if code == 204:
        return ALLOW
    if not 200 <= code < 300:
        return ("failed", f"HTTP {code}")
    try:
        answer = json.loads(body)
    except ValueError:
        return ("failed", "the answer is not JSON")
    if not isinstance(answer, dict):
        return ("failed", "the answer is not a JSON object")
    action = answer.get("action")
    if action == "allow":
        return ALLOW
    if action == "refuse":
        return ("refuse", _reason(answer.get("reason")))
    if action == "rewrite":
        new = answer.get("body")
        if not isinstance(new, str):
            return ("failed", "a rewrite needs a string body")
        try:
            return ("rewrite", new.encode("utf-8"))
        except UnicodeEncodeError:
            return ("failed", "a rewrite's body is not valid Unicode")
    return ("failed", f"unknown action {action!r}")


class _Pending:
    """A callback under way, and the resends waiting for its verdict."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[defer.Deferred] = []


class Moderation:
    """The send check, its callback client and its verdict memory."""

    def __init__(self, api: ModuleAPI, config: Config, messages: Any, http: Any = None) -> None:
        self.config = config
        self.clock = api.clock
        self.messages = messages
        self.limits = messages.limits
        self.keywords: KeywordFilter | None = None
        words = load_keywords(config)
        if words:
            self.keywords = KeywordFilter(words, config.replacement)
        self.signer = _signer(config.secret) if config.callback_on else None
        self.session_types = frozenset(SESSION_KINDS[k] for k in config.session_types)
        self.msg_types = msg_type_numbers(config.msg_types)  # empty: all
        self.http = http
        self.pool: Any = None
        self._pending: dict[tuple[int, str], _Pending] = {}
        self._verdicts: OrderedDict[tuple[int, str], tuple[float, tuple[str, Any]]] = OrderedDict()
        self.in_flight = 0
        self.calls = 0  # callbacks made (tests, metrics)
        self.failures = 0  # callbacks that failed or timed out, or were over max_in_flight
        self._failure_log = SummaryLog(api.clock, api.log)

    @property
    def active(self) -> bool:
        return self.keywords is not None or self.config.callback_on

    def make_http(self, reactor: Any) -> None:
        """treq over a connection pool of our own (connections to the app's server are reused; the
        pool is closed at stop).  Made through treq's public ``treq.api.default_pool`` rather than
        importing twisted.web.client: the core imports no twisted.web (tests/test_architecture.py).
        It hands out a non-persistent pool when asked for one of our own; ``persistent`` and
        ``maxPersistentPerHost`` are the pool's public attributes."""
        import treq
        import treq.api

        pool = treq.api.default_pool(reactor, None, False)  # a new pool, not treq's global one
        pool.persistent = True
        pool.maxPersistentPerHost = self.config.max_connections
        pool.retryAutomatically = False  # a POST's verdict is not to be asked twice by the pool
        self.pool = pool
        self.http = _TreqPost(treq, reactor, pool)

    def close(self) -> defer.Deferred | None:
        return self.pool.closeCachedConnections() if self.pool is not None else None

    # -- the send check

    def check_for(self, session_type: int, callback: bool) -> Callable[[User, Outgoing], defer.Deferred | None]:
        """The send check of one conversation kind: the keyword filter, then (``callback``) the
        app's server."""
        keywords = self.keywords
        msg_types = self.msg_types

        def check(sender: User, outgoing: Outgoing) -> defer.Deferred | None:
            if keywords is not None:
                self._filter(outgoing)
            if not callback or (msg_types and outgoing.msg_type not in msg_types):
                return None
            return self._ask(sender, outgoing, session_type)

        return check

    def _filter(self, outgoing: Outgoing) -> None:
        keywords = self.keywords
        assert keywords is not None
        if outgoing.msg_type == _TEXT:
            text = outgoing.data.decode("utf-8")  # checked UTF-8 by check_content already
            if self.config.keyword_action == "refuse":
                if keywords.matches(text):
                    raise ChatError(ErrorCode.MSG_REFUSED, self.config.keyword_reason)
                return
            new = keywords.replace(text)
            if new != text:
                self._rewrite(outgoing, new.encode("utf-8"))
        elif outgoing.msg_type == CUSTOM:
            body = json.loads(outgoing.data)  # checked a JSON object by its checker already
            changed = self._filter_json(body, set(self.config.custom_fields), 0)
            if changed:
                data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                self._rewrite(outgoing, data)

    def _filter_json(self, value: Any, only: set[str], depth: int) -> bool:
        """Filter the string values of a JSON value in place (those under keys in ``only`` when
        given); True when one changed.  Refuses (raises) for keyword_action "refuse"."""
        changed = False
        refuse = self.config.keyword_action == "refuse"
        keywords = self.keywords
        assert keywords is not None
        items: Iterable[tuple[Any, Any]]
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            return False
        for key, item in items:
            if isinstance(item, str):
                if only and (not isinstance(key, str) or key not in only):
                    continue
                if refuse:
                    if keywords.matches(item):
                        raise ChatError(ErrorCode.MSG_REFUSED, self.config.keyword_reason)
                    continue
                new = keywords.replace(item)
                if new != item:
                    value[key] = new
                    changed = True
            elif isinstance(item, dict | list) and depth < 32:
                # a list's strings are filtered when the list is under a filtered key (or all are)
                nested_only = set() if (only and isinstance(key, str) and key in only) else only
                if self._filter_json(item, nested_only, depth + 1):
                    changed = True
        return changed

    def _rewrite(self, outgoing: Outgoing, data: bytes) -> None:
        """A new body, checked as a client's would be (a rewrite cannot make a body the clients
        could not display)."""
        check_content(outgoing.msg_type, data, self.limits, self.messages.msg_types, outgoing.origin)
        outgoing.data = data

    def room_check(self) -> Callable[[User, Outgoing], defer.Deferred | None] | None:
        """The check of room messages, for the rooms feature (``outgoing.to_id`` is the room):
        the keyword filter, and the callback when ``rooms`` is on; None when neither applies, so
        that rooms then pay nothing."""
        callback = self.config.callback_on and self.config.rooms
        if self.keywords is None and not callback:
            return None
        return self.check_for(ROOM, callback)

    # -- the callback

    def _ask(self, sender: User, outgoing: Outgoing, session_type: int) -> defer.Deferred | None:
        key = (sender.user_id, outgoing.client_msg_id)
        remember = bool(outgoing.client_msg_id)
        if remember:
            known = self._verdicts.get(key)
            if known is not None:
                if known[0] >= self.clock.seconds():
                    self._apply(known[1], outgoing)
                    return None
                del self._verdicts[key]
            pending = self._pending.get(key)
            if pending is not None:  # a resend while its first copy is being decided: one call
                waiter: defer.Deferred = defer.Deferred()
                pending.waiters.append(waiter)
                return waiter.addCallback(self._apply, outgoing)
        if self.in_flight >= self.config.max_in_flight:
            self.failures += 1
            self._failure_log.event(
                "moderation callback: {count} message(s) over max_in_flight ({n}) since the last line",
                n=self.config.max_in_flight,
            )
            self._apply(self._failed_verdict(), outgoing)
            return None
        pending = _Pending()
        if remember:
            self._pending[key] = pending
        result: defer.Deferred = defer.Deferred()
        self.in_flight += 1
        self.calls += 1
        request = self._post(sender, outgoing, session_type)
        timer = self.clock.callLater(self.config.timeout, self._timed_out, request, result)

        def answered(verdict: tuple[str, Any]) -> None:
            if timer.active():
                timer.cancel()
            if not result.called:
                result.callback(verdict)

        def broken(failure: Any) -> None:
            if timer.active():
                timer.cancel()
            if not result.called:
                result.callback(("failed", failure.getErrorMessage() or failure.type.__name__))

        request.addCallbacks(answered, broken)
        result.addCallback(self._decided, key, pending, remember)
        return result.addCallback(self._apply, outgoing)

    def _timed_out(self, request: defer.Deferred, result: defer.Deferred) -> None:
        if not result.called:
            result.callback(("failed", f"no answer within {self.config.timeout} s"))
        request.cancel()

    def _decided(
        self, verdict: tuple[str, Any], key: tuple[int, str], pending: _Pending, remember: bool
    ) -> tuple[str, Any]:
        self.in_flight -= 1
        if verdict[0] == "failed":
            self.failures += 1
            self._failure_log.event(
                "moderation callback failed ({count} since the last line), the latest: {why}; on_failure = {policy}",
                why=verdict[1],
                policy=self.config.on_failure,
            )
            verdict = self._failed_verdict()
        if remember:
            if self._pending.get(key) is pending:
                del self._pending[key]
            # Remembered unless it is "try again" (fail-closed): a resend then asks anew.
            if verdict[0] != "unavailable" and self.config.verdict_ttl > 0:
                verdicts = self._verdicts
                verdicts[key] = (self.clock.seconds() + self.config.verdict_ttl, verdict)
                verdicts.move_to_end(key)
                while len(verdicts) > self.config.verdict_cache:
                    verdicts.popitem(last=False)
        for waiter in pending.waiters:
            waiter.callback(verdict)
        return verdict

    def _failed_verdict(self) -> tuple[str, Any]:
        return ALLOW if self.config.on_failure == "allow" else ("unavailable", None)

    def _apply(self, verdict: tuple[str, Any], outgoing: Outgoing) -> None:
        action, value = verdict
        if action == "allow":
            return
        if action == "refuse":
            raise ChatError(ErrorCode.MSG_REFUSED, value)
        if action == "unavailable":
            raise ChatError(ErrorCode.MODERATION_UNAVAILABLE, "message moderation is unavailable: try again")
        if action == "rewrite":
            if value == outgoing.data:
                return
            try:
                self._rewrite(outgoing, value)
            except ChatError as e:
                self.failures += 1
                log.warn("moderation callback: a rewrite was not a valid body ({e}); on_failure applies", e=e)
                self._apply(self._failed_verdict(), outgoing)
            return
        raise AssertionError(action)

    def request_body(self, sender: User, outgoing: Outgoing, session_type: int) -> bytes:
        """The JSON the app's server is sent (docs/moderation.md)."""
        body = {
            "type": "message.before_send",
            "sender": {"user_id": sender.user_id, "name": sender.name, "nick": sender.nick_name},
            "conversation": {
                "session_type": session_type,
                "kind": KIND_NAMES.get(session_type, "single"),
                "to_id": outgoing.to_id,
            },
            "msg_type": outgoing.msg_type,
            "body": outgoing.data.decode("utf-8", "replace"),
            "client_msg_id": outgoing.client_msg_id,
            "client_type": outgoing.client_type,
            "mentions": list(outgoing.mentions),
            "at_all": bool(outgoing.at_all),
            "forwarded": bool(outgoing.origin),
            "time": int(self.clock.seconds()),
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def webhook_id(self, sender: User, outgoing: Outgoing) -> str:
        """The Standard Webhooks ``webhook-id``: the same for every resend of one message (the
        idempotency key the app's server may dedupe on), unique otherwise."""
        if not outgoing.client_msg_id:  # no resend can be recognised: any unique id
            return "msg_" + uuid.uuid4().hex
        digest = hashlib.sha256(f"{sender.user_id}\0{outgoing.client_msg_id}".encode()).digest()
        return "msg_" + base64.b32encode(digest)[:26].decode().lower()

    def _post(self, sender: User, outgoing: Outgoing, session_type: int) -> defer.Deferred:
        data = self.request_body(sender, outgoing, session_type)
        msg_id = self.webhook_id(sender, outgoing)
        now = self.clock.seconds()
        signature = self.signer.sign(msg_id, datetime.fromtimestamp(int(now), UTC), data)
        headers = {
            "Content-Type": ["application/json"],
            "webhook-id": [msg_id],
            "webhook-timestamp": [str(int(now))],
            "webhook-signature": [signature],
            "User-Agent": ["CoffeeChat-moderation"],
        }
        d = defer.maybeDeferred(self.http.post, self.config.callback_url, data=data, headers=headers)

        def read(response: Any) -> defer.Deferred:
            length = getattr(response, "length", None)
            if isinstance(length, int) and length > MAX_ANSWER_BYTES:
                raise ValueError(f"an answer of {length} bytes")
            return response.content().addCallback(lambda body: parse_answer(response.code, body))

        return d.addCallback(read)


class _TreqPost:
    """``post(url, data=, headers=)`` through treq on a given reactor and pool."""

    def __init__(self, treq: Any, reactor: Any, pool: Any) -> None:
        self._treq = treq
        self._reactor = reactor
        self._pool = pool

    def post(self, url: str, **kwargs: Any) -> defer.Deferred:
        return self._treq.post(url, reactor=self._reactor, pool=self._pool, allow_redirects=False, **kwargs)


def setup(api: ModuleAPI) -> Moderation:
    """Add the send check to the configured kinds, only when the filter or the callback is on."""
    messages = api.depends("messages")
    config: Config = api.config
    moderation = Moderation(api, config, messages)
    if not moderation.active:
        return moderation
    if config.callback_on:
        moderation.make_http(api.clock)
        api.on_stop(moderation.close)
    for kind, session_type in SESSION_KINDS.items():
        keywords_here = moderation.keywords is not None
        callback_here = config.callback_on and kind in config.session_types
        if not (keywords_here or callback_here):
            continue
        messages.add_send_check(session_type, moderation.check_for(session_type, callback_here))
    return moderation
