# syntax=docker/dockerfile:1
# Build stage: builds a wheel of canaryd and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY canaryd ./canaryd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Final stage: only the wheels installed, no compilers or pip caches; runs as a non-root user.
FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin canaryd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels canaryd && rm -rf /wheels
USER 10001:10001
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
ENTRYPOINT ["canaryd"]
CMD ["run"]
