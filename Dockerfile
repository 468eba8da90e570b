# syntax=docker/dockerfile:1
# canaryd's image for people with a container engine. It describes the image `python3 image/build.py`
# makes here without one (README, "Build the image"): Debian bookworm's python3 (3.11), curl, wget and
# ca-certificates; the wheels of image/requirements.lock installed with --require-hashes; canaryd; user
# 65532 (the uid of manifests/ too); entrypoint `canaryd`, and `/flagger` for Flagger's Deployments.
# Pin the base by digest where you build (no registry is reachable from canaryd's build machines, so no
# digest is written here): docker buildx imagetools inspect debian:bookworm-slim, then
#   docker build --build-arg BASE=debian:bookworm-slim@sha256:<digest> -t ghcr.io/canaryd/canaryd:0.1.0 .
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ARG SITE=/out/usr/local/lib/python3.11/dist-packages
COPY image/requirements.lock image/requirements.lock
RUN pip install --break-system-packages --no-cache-dir --no-compile --no-deps --require-hashes \
        --only-binary=:all: --target "$SITE" -r image/requirements.lock
COPY pyproject.toml README.md ./
COPY canaryd ./canaryd
RUN pip install --break-system-packages --no-cache-dir --no-compile --no-deps --target "$SITE" . \
    && rm -rf "$SITE/bin" "$SITE"/canaryd-*.dist-info/direct_url.json
COPY --chmod=755 image/canaryd /out/usr/local/bin/canaryd
COPY --chmod=755 image/flagger /out/flagger

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends python3 curl wget ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'nonroot:x:65532:65532:canaryd:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group
COPY --from=build /out/ /
# precompiled (unchecked-hash .pyc): with a read-only root filesystem nothing is written at run time
RUN python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash \
        /usr/lib/python3.11 /usr/local/lib/python3.11/dist-packages
USER 65532:65532
WORKDIR /
ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["canaryd"]
CMD ["run"]
