"""Error codes the core answers with.  The values below 10000 are CIM v1's own; the others are
CoffeeChat extensions (documented in docs/protocol.md) and share the wire enum CIMErrorCode."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    SUCCESS = 200
    INTERNAL_ERROR = 201
    LOGIN_DB_VALIDATE_FAILED = 2000
    LOGIN_VERSION_TOO_OLD = 2001
    LOGIN_INVALID_USER_TOKEN = 2002
    LOGIN_INVALID_USER_OR_PWD = 2003
    USER_ALREADY_EXIST = 9000
    USER_INVALID_PARAMETER = 9001
    USER_NOT_EXIST = 9002
    # CoffeeChat extensions
    UNKNOWN_COMMAND = 10001
    MALFORMED_BODY = 10002
    NOT_LOGGED_IN = 10003
    FORBIDDEN = 10004
    MSG_TOO_LARGE = 10005
    INVALID_MSG = 10006
    RATE_LIMITED = 10007
    TOO_MANY_DEVICES = 10008
    NOT_FOUND = 10009
    USER_DISABLED = 10010
    INVALID_ARGUMENT = 10011
    NOT_SUPPORTED = 10012
    ALREADY_LOGGED_IN = 10013
    SESSION_REPLACED = 10014
    SERVER_SHUTDOWN = 10015
    IDLE_TIMEOUT = 10016
    LOGIN_TIMEOUT = 10017
    GROUP_FULL = 10018
    TOO_MANY_GROUPS = 10019


class ChatError(Exception):
    """A request the core refuses; transports turn it into an answer carrying ``code``."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message or code.name.lower().replace("_", " ")

    def __str__(self) -> str:
        return f"{self.code.name} ({int(self.code)}): {self.message}"
