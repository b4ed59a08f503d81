"""Packaging for CoffeeChat: the core, its transports and backends, and the twistd plugin."""

from setuptools import setup

setup(
    name="coffeechat",
    version="0.2.0",
    description="Self-hosted instant-messaging server on Twisted, wire-compatible with CIM v1",
    python_requires=">=3.11",
    packages=[
        "coffeechat",
        "coffeechat.features",
        "coffeechat.schema",
        "coffeechat.testing",
        "coffeechat.protocols",
        "coffeechat.protocols.webclient",
        "coffeechat.backends",
        "coffeechat.backends.sql",
        "coffeechat.bench",
        "twisted.plugins",
    ],
    package_dir={
        "coffeechat.protocols": "protocols",
        "coffeechat.protocols.webclient": "protocols/webclient",
        "coffeechat.backends": "backends",
        "coffeechat.bench": "bench",
    },
    package_data={
        "twisted": ["plugins/coffeechat_plugin.py"],
        "coffeechat.schema": ["*.proto", "*.pyi"],
        "coffeechat.features": ["*.sql"],
        "coffeechat.protocols.webclient": ["*.html", "*.js", "*.css", "*.svg"],
        "coffeechat.backends.sql": ["*.sql"],
    },
    install_requires=[
        "twisted[tls]>=24.3",
        "zope.interface>=6",
        "protobuf>=7.35.1",
        "sqlite-utils>=3.36",
        "autobahn[twisted]>=23",
        "psycopg[binary]>=3.1",
        "txredisapi>=1.4.10",
        "hiredis>=2",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "ruff",
            "playwright",
        ],
        "dev": ["grpcio-tools>=1.62"],
    },
    entry_points={
        "console_scripts": [
            "coffeechat = coffeechat.admin:main",
            "coffeechat-bench = coffeechat.bench.cli:main",
        ],
        "coffeechat.storage": [
            "sqlite = coffeechat.backends.sqlite:create_store",
            "memory = coffeechat.backends.memory:create_store",
            "postgres = coffeechat.backends.postgres:create_store",
        ],
    },
)
