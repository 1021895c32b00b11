# The backend image: Tornado app only; nginx and PostgreSQL come from their official images.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    IMAGES_DIR=/images

WORKDIR /app

# A fixed non-root uid; /images belongs to it, so a fresh named volume mounted there does too.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /images \
    && chown app:app /images

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY server/ server/
COPY handlers/ handlers/
COPY templates/ templates/
COPY static/ static/

USER 10001:10001
EXPOSE 8000
VOLUME ["/images"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

CMD ["python", "-m", "server"]
