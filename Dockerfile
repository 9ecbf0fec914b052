# Rimay: slim image, non-root user, uvicorn with proxy headers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RIMAY_DATA_DIR=/data \
    RIMAY_MIGRATIONS_DIR=/srv/rimay/migrations

# espeak-ng and lame generate draft prompt audio offline; ffmpeg converts staff's voice answers to MP3.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng lame ffmpeg \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/rimay
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY voice_flows ./voice_flows
COPY audio ./audio
RUN pip install .

RUN useradd --system --create-home --uid 10001 rimay \
 && mkdir -p /data && chown rimay:rimay /data
USER rimay
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"

# Migrations are run separately (`docker run … rimay migrate`) so several replicas never race them.
# Audio is built at start into the data volume; existing, current files are left alone.
CMD ["sh", "-c", "rimay audio build && exec uvicorn --factory app.main:create_app --host 0.0.0.0 --port 8000 --proxy-headers --forwarded-allow-ips='*'"]
