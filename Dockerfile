# syntax=docker/dockerfile:1
# CoffeeChat in a container: docs/deployment.md#docker.
#
#   docker build -t coffeechat .
#   docker run -d --name chat -p 8000:8000 -p 8001:8001 -p 18080:18080 -v coffeechat:/var/lib/coffeechat coffeechat
#
# The first start writes /var/lib/coffeechat/coffeechat.toml with `coffeechat init` (fresh secrets);
# mount your own at /etc/coffeechat/coffeechat.toml (or set COFFEECHAT_CONFIG) to use it instead.
# Arguments starting with "-" go to twistd after the config (`docker run coffeechat --admin-token T`);
# anything else is run as a command (`docker exec chat coffeechat user list` also works).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a wheel of CoffeeChat and of everything it needs
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY setup.py pyproject.toml ./
COPY coffeechat coffeechat
COPY protocols protocols
COPY backends backends
COPY bench bench
COPY twisted twisted
COPY etc/coffeechat.toml etc/coffeechat.toml
RUN pip wheel --wheel-dir /wheels .

# -- runtime: the wheels installed, no compiler, no sources, not root
FROM ${PYTHON_IMAGE}
# ffmpeg makes voice and video posters and durations (docs/media-processing.md); build with
# --build-arg FFMPEG= for a smaller image without them (files.media.ffmpeg must then be "").
ARG FFMPEG=ffmpeg
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    COFFEECHAT_CONFIG=/etc/coffeechat/coffeechat.toml \
    COFFEECHAT_HEALTH_URL=http://127.0.0.1:18080/health
RUN if [ -n "$FFMPEG" ]; then \
        apt-get update && apt-get install -y --no-install-recommends $FFMPEG && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 coffeechat \
    && useradd --system --uid 10001 --gid coffeechat --home-dir /var/lib/coffeechat --no-create-home \
        --shell /usr/sbin/nologin coffeechat \
    && install -d -o coffeechat -g coffeechat -m 0700 /var/lib/coffeechat /var/lib/coffeechat/files \
    && install -d -m 0755 /etc/coffeechat
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels coffeechat \
    && python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
COPY --chmod=0755 etc/docker/entrypoint.sh /usr/local/bin/coffeechat-entrypoint

USER coffeechat:coffeechat
WORKDIR /var/lib/coffeechat
VOLUME ["/var/lib/coffeechat"]
# CIM v1 (TCP), CIM over WebSocket, HTTP (web client, API, /health, WebSocket at /ws)
EXPOSE 8000 8001 18080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(os.environ['COFFEECHAT_HEALTH_URL'], timeout=4)" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["coffeechat-entrypoint"]
CMD []
