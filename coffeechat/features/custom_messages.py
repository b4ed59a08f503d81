"""Custom messages: an application's own message type (dice, red packets, cards ...).

A message of type CUSTOM (100, the value CIM v1 reserved) carries a JSON object of the app's own
design, up to the text limit (``[limits] max_text_bytes``), stored and delivered as text is (1:1
and groups, every send check, recall, history).  The server validates only that: size, a JSON
object, and its optional top-level ``"description"``, a short string that previews and push
notifications show (bounded by ``[custom_messages] max_description_chars``).  docs/custom-messages.md
is the guide for app authors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.features.messages import json_object_body
from coffeechat.model import Message
from coffeechat.modules import ModuleAPI
from coffeechat.schema import pb

CUSTOM = pb.kCIM_MSG_TYPE_CUSTOM
DEFAULT_DESCRIPTION = "[Custom message]"


@dataclass
class Config:
    """[custom_messages]: how long the preview text of a custom message may be."""

    max_description_chars: int = 100

    def validate(self) -> None:
        if not 1 <= self.max_description_chars <= 1000:
            raise ConfigError("custom_messages.max_description_chars must be between 1 and 1000")


class CustomMessages:
    """Checks custom message bodies and gives their preview text."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def check(self, data: bytes, limits: Any, origin: str = "") -> None:
        """A JSON object of at most ``limits.max_text_bytes``; ``description``, when there, a string
        of at most ``max_description_chars``.  Nothing else of it is the server's business."""
        body = json_object_body(CUSTOM, data, limits.max_text_bytes)
        description = body.get("description")
        if description is None:
            return
        if not isinstance(description, str):
            raise ChatError(ErrorCode.INVALID_MSG, "a custom message's description must be a string")
        if len(description) > self.config.max_description_chars:
            raise ChatError(
                ErrorCode.INVALID_MSG,
                f"a custom message's description is limited to {self.config.max_description_chars} characters",
            )

    def description(self, message: Message | bytes) -> str:
        """The preview text of a custom message (for notifications and chat records): its
        description, else a generic one."""
        data = message.data if isinstance(message, Message) else message
        try:
            body = json.loads(data)
        except ValueError:
            return DEFAULT_DESCRIPTION
        description = body.get("description") if isinstance(body, dict) else None
        if isinstance(description, str) and description.strip():
            return description[: self.config.max_description_chars]
        return DEFAULT_DESCRIPTION


def setup(api: ModuleAPI) -> CustomMessages:
    """Accept msg_type CUSTOM in every conversation kind."""
    messages = api.depends("messages")
    custom = CustomMessages(api.config)
    messages.register_msg_type(CUSTOM, custom.check)
    return custom
