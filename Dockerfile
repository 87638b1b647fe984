# One image for every weatherpipe service in docker-compose.yml (producer, consumer, batch,
# dashboard). Kafka, AKHQ and PostgreSQL use their own official images.
FROM python:3.11-slim

# UV_NO_CACHE: uv's download cache would otherwise stay in the image (a third of its size).
ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app
# Dependencies first, from the lockfile, so code changes don't reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev

# The services run as an unprivileged user; /raw and /state are volumes.
RUN useradd --create-home --uid 10001 weatherpipe \
    && mkdir -p /raw /state /data \
    && chown weatherpipe /raw /state /data
USER weatherpipe
ENV STATE_DIR=/state RAW_DIR=/raw CSV_PATH=/data/weather_data.csv

ENTRYPOINT []
CMD ["weatherpipe", "--help"]
