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
        "coffeechat.pushproviders",
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
        "twisted[tls,http2]>=24.3",
        "zope.interface>=6",
        "protobuf>=7.35.1",
        "sqlite-utils>=3.36",
        "autobahn[twisted]>=23",
        "psycopg[binary]>=3.1",
        "txredisapi>=1.4.10",
        "hiredis>=2",
        # outbound HTTP: webhooks, push, bots (treq on the reactor; httpx only for APNs' HTTP/2)
        "treq>=24",
        "standardwebhooks>=1.0",
        "httpx[http2]>=0.27",
        "PyJWT[crypto]>=2.8",
        "cryptography>=42",
        "py-vapid>=1.9",
        "pywebpush>=2.0",
        "http-ece>=1.2",
        # files and media
        "Pillow>=10",
        "blurhash-python>=1.2",
        "boto3>=1.34",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            # a hung test fails alone instead of running the suite into its CI time limit
            "pytest-timeout>=2.2",
            "hypothesis>=6.100",
            "ruff",
            "playwright",
            "moto[server]>=5",
            "tuspy>=1.0",
            # the local APNs stand-in in the push provider tests serves HTTP/2 (h2 + priority)
            "twisted[http2]>=24.3",
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
