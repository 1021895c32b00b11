# Two images from one build context, so that nginx serves exactly the static files whose
# hashes the backend puts in ?v= URLs (both are rebuilt by `docker compose up --build`):
#   nginx    the official nginx image with our nginx.conf, site template and static/
#   backend  the Tornado app (the last stage: what a plain `docker build .` makes)
# tests/test_compose_emulation.py reads this file to assemble both images' files.

FROM nginx:1.27-alpine AS nginx
COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY nginx/templates/ /etc/nginx/templates/
COPY --chmod=0755 nginx/trusted-proxies.sh /docker-entrypoint.d/15-trusted-proxies.sh
COPY --chmod=0755 nginx/upload-limit.envsh /docker-entrypoint.d/15-upload-limit.envsh
COPY static/ /srv/static/

FROM python:3.12-slim AS backend

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    IMAGES_DIR=/images

WORKDIR /app

# A fixed non-root uid, 10001: /images belongs to it, so a fresh named volume mounted there
# does too. A bind mount in its place must be writable by uid 10001 (README "Docker Compose").
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
COPY locale/ locale/

USER 10001:10001
EXPOSE 8000
VOLUME ["/images"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

CMD ["python", "-m", "server"]
