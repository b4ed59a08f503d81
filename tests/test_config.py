"""Configuration: the sample file, defaults, and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffeechat.config import Config, ConfigError, load_config

SAMPLE = Path(__file__).resolve().parent.parent / "etc" / "coffeechat.toml"


def test_sample_file_documents_exactly_the_defaults():
    assert load_config(SAMPLE) == Config()


def test_sample_file_names_every_key():
    text = SAMPLE.read_text()
    config = Config()
    for name, section in config.all_sections().items():
        assert f"[{name}]" in text
        for key in config.keys_of(section):
            # a table-valued key ([files.storage]) is documented as its own sub-table
            named = f"\n{key} = " in text or f"\n[{name}.{key}]\n" in text
            assert named, f"{name}.{key} missing from etc/coffeechat.toml"


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[limits]\nfrobnicate = 1\n", "limits.frobnicate"),
        ("[nosuch]\nx = 1\n", "[nosuch]"),
        ("[limits]\nmax_devices = 'ten'\n", "limits.max_devices"),
        ("[limits]\nmax_devices = 0\n", "limits.max_devices"),
        ("[limits]\nmax_frame_bytes = 20000000\n", "limits.max_frame_bytes"),
        ("[listen]\ncim = ['8000']\n", "listen.cim"),
        ("[storage]\nsynchronous = 'sometimes'\n", "storage.synchronous"),
        ("[auth]\nscrypt_n = 1000\n", "auth.scrypt_n"),
        ("[groups]\nmax_normal_members = 1\n", "groups.max_normal_members"),
        ("[groups]\nmax_super_members = 100\n", "groups.max_super_members"),
        ("[groups]\nmax_groups_per_user = -1\n", "groups.max_groups_per_user"),
        ("[limits\n", "coffeechat.toml"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, toml, named):
    path = tmp_path / "coffeechat.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert named in str(err.value)


def test_overrides_win_and_are_checked(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[listen]\ncim = "tcp:9000"\n')
    config = load_config(path, {"listen.cim": ["tcp:9100"], "limits.max_devices": 3})
    assert config.listen.cim == ["tcp:9100"] and config.limits.max_devices == 3
    with pytest.raises(ConfigError):
        load_config(None, {"limits.max_devices": -1})
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")


def test_every_sample_config_loads():
    """etc/*.toml are what users copy: each must load as is."""
    samples = sorted(SAMPLE.parent.glob("*.toml"))
    assert len(samples) >= 4
    for path in samples:
        load_config(path)


def test_tcp_listeners_get_a_large_backlog_unless_they_name_one():
    from coffeechat.service import with_backlog

    assert with_backlog("tcp:8000") == "tcp:8000:backlog=4096"
    assert with_backlog("tcp6:8000:interface=\\:\\:") == "tcp6:8000:interface=\\:\\::backlog=4096"
    assert with_backlog("tcp:8000:backlog=10") == "tcp:8000:backlog=10"
    for untouched in ("unix:/run/c.sock", "systemd:domain=INET:index=0"):
        assert with_backlog(untouched) == untouched


def test_features_are_chosen_by_name_and_their_sections_follow(tmp_path):
    config = load_config(None, {"features.enabled": ["accounts", "messages"]})
    assert config.section("groups") is None and config.section("auth") is not None
    with pytest.raises(ConfigError, match=r"\[groups\]"):
        load_config(None, {"features.enabled": ["accounts", "messages"], "groups.max_normal_members": 5})
    with pytest.raises(ConfigError, match="unknown feature 'stickers'"):
        load_config(None, {"features.enabled": ["accounts", "stickers"]})
    path = tmp_path / "c.toml"
    path.write_text('[typing]\nttl = 9.0\n[features]\nenabled = ["accounts", "messages", "typing"]\n')
    assert load_config(path).typing.ttl == 9.0  # [features] is read first, wherever it stands


def test_a_feature_that_needs_a_disabled_one_stops_the_node():
    from twisted.internet.testing import MemoryReactorClock

    from coffeechat.backends.memory import MemoryStore
    from coffeechat.backends.presence_memory import MemoryPresence
    from coffeechat.node import ChatNode

    config = load_config(None, {"features.enabled": ["accounts", "typing"]})
    with pytest.raises(ConfigError, match="feature typing needs feature messages"):
        ChatNode(config, MemoryReactorClock(), MemoryStore(), MemoryPresence())


ISSUE_12_SECTIONS = (
    "dnd",
    "pins",
    "custom_messages",
    "forward",
    "group_requests",
    "friends",
    "online_status",
    "search",
    "deletes",
)


@pytest.mark.parametrize("name", ISSUE_12_SECTIONS)
def test_configuration_page_names_every_key_of_the_feature_sections(name):
    """docs/configuration.md lists each feature section with all its keys (the sample file is
    checked above; the page is where operators look first)."""
    text = (SAMPLE.parent.parent / "docs" / "configuration.md").read_text()
    config = Config()
    section = config.all_sections().get(name)
    if section is None:
        pytest.skip(f"[{name}] is not on this branch")
    assert f"`[{name}]`" in text, f"[{name}] missing from docs/configuration.md"
    for key in config.keys_of(section):
        assert f"`{key}`" in text, f"{name}.{key} missing from docs/configuration.md"
