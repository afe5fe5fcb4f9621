# One image for every enerbox service: `docker run enerbox run teleinfo`, `... run all`.
# Multi-arch (Raspberry Pi OS 64-bit and 32-bit, any amd64 box):
#   docker buildx build --platform linux/arm64,linux/arm/v7,linux/amd64 -t enerbox .
# No prebuilt wheel is assumed for the target: where PyPI has none (armv7 mostly), pip
# builds from source in the builder stage, which has the compilers; the runtime stage has
# none. To take Raspberry Pi wheels instead: --build-arg EXTRA_INDEX_URL=https://www.piwheels.org/simple
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libyaml-dev \
    && rm -rf /var/lib/apt/lists/*
ARG EXTRA_INDEX_URL=""
# A venv at the path it keeps in the runtime stage: its scripts' #! lines stay valid.
RUN python -m venv /opt/enerbox
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
# On ARM (a Raspberry Pi) with the `pi` extra: lgpio and gpiod for Pi 5 GPIO.
ARG TARGETARCH
RUN case "$TARGETARCH" in arm*) target=".[pi]" ;; *) target="." ;; esac \
    && /opt/enerbox/bin/pip install --no-cache-dir \
        ${EXTRA_INDEX_URL:+--extra-index-url "$EXTRA_INDEX_URL"} "$target" \
    && /opt/enerbox/bin/enerbox --help >/dev/null

FROM ${PYTHON_IMAGE}
# tzdata: the historian's ledger counts local days (zoneinfo); libyaml: PyYAML's C loader
# when it was built from source.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata libyaml-0-2 \
    && rm -rf /var/lib/apt/lists/*
# Devices are opened with the gid of their node on the host. dialout is 20 on every Debian
# (serial ports); gpio 997 and i2c 998 are what Raspberry Pi OS usually assigns: check with
# `getent group gpio i2c` on the Pi, docker-compose adds the host's gids (GPIO_GID, I2C_GID).
RUN groupadd --system --gid 997 gpio \
    && groupadd --system --gid 998 i2c \
    && useradd --uid 1000 --user-group --groups dialout,gpio,i2c \
        --home-dir /data --no-create-home --shell /usr/sbin/nologin enerbox \
    && mkdir -p /data /config \
    && chown enerbox:enerbox /data
COPY --from=builder /opt/enerbox /opt/enerbox
# The example configuration, so the image runs alone; docker-compose mounts ./config over it.
COPY config/enerbox.yaml /config/enerbox.yaml

ENV PATH=/opt/enerbox/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENERBOX_CONFIG=/config/enerbox.yaml \
    ENERBOX_GENERAL__DATA_DIR=/data
# A new named volume starts as a copy of this directory: owned by enerbox.
VOLUME /data
WORKDIR /data
USER enerbox
EXPOSE 8080

# Healthy = this container holds an established TCP connection to the broker's port: every
# service keeps one (its status topic and last will), and a service that lost its broker for
# 90 s while the broker is up is stuck. Read from /proc/net/tcp, which is this container's
# own network namespace: no MQTT login, nothing written. docker-compose gives the api a
# better one (GET /api/health). Docker does not restart an unhealthy container by itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys; port = ':%04X' % int(os.environ.get('ENERBOX_MQTT__PORT') or 1883); rows = [line.split() for name in ('/proc/net/tcp', '/proc/net/tcp6') if os.path.exists(name) for line in open(name).readlines()[1:]]; sys.exit(0 if any(r[2].endswith(port) and r[3] == '01' for r in rows) else 1)"]

ENTRYPOINT ["enerbox"]
CMD ["run", "all"]
