"""The composition root: `make_app` wires services into a Tornado Application, `serve` runs
the process (open pool, migrate, report disk/database integrity, start listener, listen,
graceful stop)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import tornado.locale
import tornado.web
from loguru import logger
from tornado.httpserver import HTTPServer

from handlers import auth, language, live, pages, upload
from handlers import gallery as gallery_routes
from handlers.pages import NotFoundHandler
from handlers.services import RenderedTiles, VerifiedCookies
from handlers.static import StaticFiles
from server import integrity, repository
from server.access import AccessPolicy
from server.config import Config
from server.db import make_pool, migrate, open_pool
from server.errors import ServiceUnavailable
from server.events import EventHub
from server.gallery import Gallery
from server.looplag import LoopLagMonitor
from server.storage import ImageStore, make_store
from server.workers import ImageWorkers

ROOT = Path(__file__).resolve().parent.parent
SHUTDOWN_GRACE_SECONDS = 10.0
WEBSOCKET_PING_SECONDS = 25  # below nginx's proxy_read_timeout for /ws
# Clients have nothing to say on /ws; Tornado would buffer messages of up to 10 MiB.
WEBSOCKET_MAX_MESSAGE_BYTES = 1024


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One access-log line per request."""
    status = handler.get_status()
    request = handler.request
    level = "INFO" if status < 400 else "WARNING" if status < 500 else "ERROR"
    logger.log(
        level,
        "{} {} {} {:.1f}ms {}",
        status,
        request.method,
        request.uri,
        request.request_time() * 1000,
        request.remote_ip,
    )


def make_app(
    config: Config,
    *,
    gallery: Gallery,
    hub: EventHub,
    cookie_secret: str,
    image_workers: ImageWorkers,
) -> tornado.web.Application:
    routes = [
        *pages.routes,
        *upload.routes,
        *gallery_routes.routes,
        *live.routes,
        *auth.routes,
        *language.routes,
    ]
    tornado.locale.load_translations(str(ROOT / "locale"))
    tornado.locale.set_default_locale("en_US")
    return tornado.web.Application(
        routes,
        gallery=gallery,
        hub=hub,
        image_workers=image_workers,
        rendered_tiles=RenderedTiles(),
        verified_cookies=VerifiedCookies(),
        access=AccessPolicy(
            config.admin_password,
            config.api_token,
            sessions_pool=gallery.pool if config.admin_password else None,
        ),
        allowed_hosts=config.allowed_hosts,
        worker_name=config.worker_name,
        template_path=str(ROOT / "templates"),
        static_path=str(ROOT / "static"),
        static_url_prefix="/static/",
        static_handler_class=StaticFiles,
        cookie_secret=cookie_secret,
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Lax"},
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        websocket_ping_interval=WEBSOCKET_PING_SECONDS,
        websocket_max_message_size=WEBSOCKET_MAX_MESSAGE_BYTES,
        autoescape="xhtml_escape",
    )


def watch_events(gallery: Gallery, hub: EventHub) -> None:
    """The gallery's page cache hears this process's events, and is used only while the
    listener is connected (it would miss changes otherwise)."""
    gallery.pages.live = hub.connected
    hub.subscribe(gallery.pages)


def http_server(app: tornado.web.Application, config: Config) -> HTTPServer:
    """The HTTP server for `app`, not yet listening: client addresses and scheme from nginx's
    X-Forwarded-* headers; bodies capped just above the upload limit, as nginx caps them."""
    return HTTPServer(app, xheaders=True, max_body_size=config.max_body_bytes)


async def _prepare_store(store: ImageStore, attempts: int = 30) -> None:
    """Create the folder or bucket, waiting for an object store that is still starting."""
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.to_thread(store.ensure)
            return
        except ServiceUnavailable:
            if attempt == attempts:
                raise
            logger.warning("image store {} not reachable yet; retrying", store.location)
            await asyncio.sleep(1)


async def serve(config: Config) -> None:
    store = make_store(config)
    await _prepare_store(store)
    pool = make_pool(config)
    await open_pool(pool)
    hub = EventHub(config.database_url)
    lag = LoopLagMonitor()
    lag.start()
    image_workers = ImageWorkers(config.image_workers)
    integrity_check: asyncio.Task[None] | None = None
    gallery: Gallery | None = None
    try:
        # Before taking requests, so the first upload does not pay the processes' start.
        await image_workers.start()
        await migrate(pool)
        # Report-only, in the background: a large gallery must not hold up the start.
        integrity_check = asyncio.create_task(
            integrity.report_at_start(pool, store), name="integrity-check"
        )
        secret = config.cookie_secret or await repository.shared_secret(pool, "cookie_secret")
        gallery = Gallery.from_config(config, pool, store, image_workers)
        await hub.start()
        watch_events(gallery, hub)
        # While the listener reports the database down, requests get their 503 at once.
        pool.database_up = hub.connected
        app = make_app(
            config, gallery=gallery, hub=hub, cookie_secret=secret, image_workers=image_workers
        )
        server = http_server(app, config)
        server.listen(config.port, config.host)
        logger.info("listening on http://{}:{}", config.host, config.port)

        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, lag.report)
        await stopping.wait()

        logger.info("shutting down")
        server.stop()  # stop accepting; requests in flight may finish
        await hub.stop()  # closes WebSockets with 1001 and the LISTEN connection
        try:
            await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            logger.warning("connections still open after {}s; closing", SHUTDOWN_GRACE_SECONDS)
    finally:
        if gallery is not None:
            # Thumbnails in the making: let them finish (a kill leaves them to the backfill).
            await gallery.settle(SHUTDOWN_GRACE_SECONDS)
        if integrity_check is not None:
            integrity_check.cancel()
            await asyncio.gather(integrity_check, return_exceptions=True)
        await hub.stop()
        await pool.close()
        await lag.stop()
        image_workers.shutdown()
    logger.info("stopped")
