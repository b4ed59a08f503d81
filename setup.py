"""Packaging for CoffeeChat: the core, its transports and backends, and the twistd plugin."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """Ships etc/coffeechat.toml as coffeechat/ops/coffeechat.toml: the sample `coffeechat init`
    writes.  Copied at build time, so the repository keeps one copy of it and no symlink."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, "coffeechat", "ops", "coffeechat.toml")
        self.mkpath(str(target.parent))
        self.copy_file(str(Path(__file__).parent / "etc" / "coffeechat.toml"), str(target))


setup(
    cmdclass={"build_py": BuildPy},
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
        "coffeechat.ops",
        "coffeechat.protocols",
        "coffeechat.protocols.webclient",
        "coffeechat.protocols.admin_console",
        "coffeechat.backends",
        "coffeechat.backends.sql",
        "coffeechat.bench",
        "twisted.plugins",
    ],
    package_dir={
        "coffeechat.protocols": "protocols",
        "coffeechat.protocols.webclient": "protocols/webclient",
        "coffeechat.protocols.admin_console": "protocols/admin_console",
        "coffeechat.backends": "backends",
        "coffeechat.bench": "bench",
    },
    package_data={
        "twisted": ["plugins/coffeechat_plugin.py"],
        "coffeechat.schema": ["*.proto", "*.pyi"],
        "coffeechat.features": ["*.sql"],
        "coffeechat.protocols.webclient": ["*.html", "*.js", "*.css", "*.svg"],
        # the admin console, with the bundled uPlot and its licence
        "coffeechat.protocols.admin_console": ["*.html", "*.js", "*.css", "uPlot-LICENSE"],
        "coffeechat.backends.sql": ["*.sql"],
        # the importers' tables (coffeechat/ops/import_store.py)
        "coffeechat.ops": ["*.sql"],
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
        # backup and restore: progress bars on a terminal
        "tqdm>=4.60",
        # GET /metrics (coffeechat/features/metrics.py)
        "prometheus-client>=0.17",
        # `coffeechat import coffeechat-v1` reads the original server's MySQL (imported only there)
        "PyMySQL>=1.1",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            # a hung test fails alone instead of running the suite into its CI time limit
            "pytest-timeout>=2.2",
            "hypothesis>=6.100",
            # tests/test_openapi.py runs it against the served admin OpenAPI document
            "schemathesis>=4.0",
            "ruff",
            "playwright",
            "moto[server]>=5",
            "tuspy>=1.0",
            # the compose files' test reads them
            "PyYAML>=6",
            # the packaging test builds a wheel offline (pip wheel --no-build-isolation)
            "wheel",
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
